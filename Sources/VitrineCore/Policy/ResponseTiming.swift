/// When an origin exchange happened, in wall-clock seconds, for age calculation.
public struct ResponseTiming: Sendable, Equatable {
    /// When the request was sent.
    public var requestTime: Int
    /// When the response head arrived.
    public var responseTime: Int

    public init(requestTime: Int, responseTime: Int) {
        self.requestTime = requestTime
        self.responseTime = responseTime
    }

    /// RFC 9111 §4.2.3: the larger of the apparent age (from `Date`) and the `Age` value
    /// corrected by the time the request spent in flight.
    public func correctedInitialAge(ageValue: Int, dateValue: Int?) -> Int {
        let apparentAge = max(0, responseTime - (dateValue ?? responseTime))
        let responseDelay = max(0, responseTime - requestTime)
        return max(apparentAge, ageValue + responseDelay)
    }
}
