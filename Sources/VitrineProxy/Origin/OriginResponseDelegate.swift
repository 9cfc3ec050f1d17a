import NIOCore
import NIOHTTP1

/// Receives one origin response, on the event loop of the origin connection (which is also the
/// client connection's loop: pools are per loop, so no hop is ever needed).
protocol OriginResponseDelegate: AnyObject {
    /// An interim (1xx) response before the final one: `103 Early Hints` and the like.
    func originInterimResponse(_ head: HTTPResponseHead)
    func originResponseHead(_ head: HTTPResponseHead)
    func originResponseBody(_ buffer: ByteBuffer)
    func originResponseEnd()
    func originFailed(_ failure: OriginFailure)
    /// Whether the origin may be read further now; false pauses it until `resumeReading()`
    /// (the client's socket is full).
    var originMayContinue: Bool { get }
    /// The origin is not read further until `resumeReading()` (`originMayContinue` said no).
    func originPaused()
}

extension OriginResponseDelegate {
    func originInterimResponse(_ head: HTTPResponseHead) {}
    func originPaused() {}
}
