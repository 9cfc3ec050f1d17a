/// When an origin exchange happened, in wall-clock seconds, for age calculation.
public struct ResponseTiming: Sendable, Equatable {
    /// When the response head arrived (wall clock, for comparing with `Date`).
    public var responseTime: Int
    /// Whole seconds between sending the request and the response head, measured on a monotonic
    /// clock: whole wall-clock seconds would age a 1 ms fetch that crosses a second by a second.
    public var responseDelay: Int

    public init(responseTime: Int, responseDelay: Int) {
        self.responseTime = responseTime
        self.responseDelay = max(0, responseDelay)
    }

    public init(requestTime: Int, responseTime: Int) {
        self.init(responseTime: responseTime, responseDelay: responseTime - requestTime)
    }

    /// RFC 9111 §4.2.3: the larger of the apparent age (from `Date`) and the `Age` value
    /// corrected by the time the request spent in flight.
    public func correctedInitialAge(ageValue: Int, dateValue: Int?) -> Int {
        let apparentAge = max(0, responseTime - (dateValue ?? responseTime))
        return max(apparentAge, ageValue + responseDelay)
    }
}
