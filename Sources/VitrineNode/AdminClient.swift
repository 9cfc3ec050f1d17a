import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import VitrineProxy

/// A client of a node's admin API, for the operator commands (`vitrine purge`, `vitrine stats`):
/// one request per connection, the bearer token in `Authorization`, bounded by a timeout.
public struct AdminClient: Sendable {
    /// The admin API did not answer, or answered with an error (its status and body).
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    public let host: String
    public let port: Int
    private let token: String
    private let timeout: Duration

    /// - Parameter url: the admin API, `http://host:port` (the admin listener is plain HTTP on
    ///   loopback by default).
    public init(url: String, token: String, timeout: Duration = .seconds(10)) throws(Failure) {
        guard url.hasPrefix("http://") else { throw Failure(description: "'\(url)' is not an http://host:port URL") }
        var authority = url.dropFirst("http://".count)
        if let slash = authority.firstIndex(of: "/") { authority = authority[..<slash] }
        guard let colon = authority.lastIndex(of: ":"), let port = Int(authority[authority.index(after: colon)...]),
            (1...65535).contains(port), colon > authority.startIndex
        else { throw Failure(description: "'\(url)' has no host:port") }
        var host = String(authority[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout
    }

    /// `POST /purge`: the admin API's answer (JSON, what was purged).
    public func purge(tags: [String], keys: [String], prefixes: [String], soft: Bool, everything: Bool = false) async throws -> String {
        // The same encoding the purge fan-out publishes, which `POST /purge` reads.
        let request = PurgeRequest(tags: tags, keys: keys, prefixes: prefixes, soft: soft, everything: everything)
        return try await send(.POST, "/purge", body: String(decoding: try JSONEncoder().encode(request), as: UTF8.self))
    }

    /// `GET /stats`: the node's counters (JSON).
    public func stats() async throws -> String {
        try await send(.GET, "/stats", body: nil)
    }

    private func send(_ method: HTTPMethod, _ path: String, body: String?) async throws -> String {
        let promise = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: (status: Int, body: String).self)
        let limit = TimeAmount.nanoseconds(Int64(timeout.nanosecondsClamped))
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(limit)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(AnswerCollector(promise: promise))
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(host: host, port: port).get()
        } catch {
            let failure = Failure(description: "cannot reach the admin API at \(host):\(port): \(error)")
            promise.fail(failure)  // never handed to a channel: completed here
            throw failure
        }
        let timeout = self.timeout
        let timer = channel.eventLoop.scheduleTask(in: limit) {
            channel.pipeline.fireUserInboundEventTriggered(AnswerCollector.TimedOut(limit: timeout))
        }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: port == 80 ? host : "\(host):\(port)")
        headers.add(name: "Authorization", value: "Bearer \(token)")
        headers.add(name: "Connection", value: "close")
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
        }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let answer: (status: Int, body: String)
        do {
            answer = try await promise.futureResult.get()
        } catch {
            timer.cancel()
            throw error
        }
        timer.cancel()
        guard (200..<300).contains(answer.status) else {
            throw Failure(description: "the admin API answered \(answer.status): \(answer.body)")
        }
        return answer.body
    }
}

/// Collects one response and completes the promise with it (or with why there is none).
private final class AnswerCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<(status: Int, body: String)>
    private var status = 0
    private var body = ByteBuffer()
    private var done = false

    init(promise: EventLoopPromise<(status: Int, body: String)>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(var part):
            // The admin API's answers are small; a runaway one is cut short, not kept.
            if body.readableBytes < 16 << 20 { body.writeBuffer(&part) }
        case .end:
            finish(.success((status, String(buffer: body))))
            context.close(promise: nil)
        }
    }

    /// Sent by the caller's timer: no answer in time.
    struct TimedOut: Sendable {
        let limit: Duration
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let timedOut = event as? TimedOut {
            finish(.failure(AdminClient.Failure(description: "no answer from the admin API within \(timedOut.limit)")))
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(AdminClient.Failure(description: "the admin API connection failed: \(error)")))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(AdminClient.Failure(description: "the admin API closed the connection without an answer")))
        context.fireChannelInactive()
    }

    private func finish(_ result: Result<(status: Int, body: String), any Error>) {
        guard !done else { return }
        done = true
        promise.completeWith(result)
    }
}
