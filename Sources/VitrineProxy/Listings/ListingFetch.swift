import VitrineCore

/// What a listing fetch gives: the stored 200, or why there is none.
struct ListingFetchError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }

    /// The response a listing fetch stored, if it is a 200.
    static func result(of outcome: FetchOutcome) -> Result<CachedResponse, ListingFetchError> {
        switch outcome {
        case .stored(let response) where response.status == .ok:
            return .success(response)
        case .failed(let error):
            return .failure(ListingFetchError(reason: "\(error)"))
        case .passed(let status) where status >= 400, .purgedDuringFetch(let status) where status >= 400:
            return .failure(ListingFetchError(reason: "origin answered \(status)"))
        case .purgedDuringFetch:
            return .failure(ListingFetchError(reason: "the origin's answer was purged while it was fetched"))
        case .stored, .passed, .abandoned:
            return .failure(ListingFetchError(reason: "the origin's answer was not stored (uncacheable)"))
        }
    }
}
