import NIOCore
import NIOHTTP1
import VitrineCore

extension ForwardExchange {
    /// The request as the origin sees it. The proxy frames it itself: the client's
    /// `Content-Length` and `Transfer-Encoding` are never copied, but written anew from how
    /// `RequestDecoder` framed the body. `Host` is the origin's own unless the route keys on the
    /// client's (then that validated host, and `X-Forwarded-Host`). A fetch whose answer may be
    /// stored forwards only what its key describes: the normalised target (dropped parameters
    /// dropped), `Accept-Encoding` reduced to gzip or nothing, the route's `forward_headers` and
    /// the stale entry's validators. Passed requests and writes forward every end-to-end field.
    func originRequestHead() -> HTTPRequestHead {
        let tokens = HopByHop.connectionTokens(request.headers)
        var headers = HTTPHeaders()
        var stale: CachedResponse?
        let keyed: Bool
        if case .miss(let fetch) = mode {
            keyed = true
            stale = request.method == .GET ? fetch.stale?.value : nil
        } else {
            keyed = false
        }
        for (name, value) in request.headers {
            let lower = name.lowercased()
            if HopByHop.isHopByHop(lowercased: lower, connectionTokens: tokens) { continue }
            switch lower {
            case "host", "content-length", "transfer-encoding", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-for", "x-request-id":
                continue  // written below (what a trusted proxy said is in `forwarding`)
            case "expect":
                continue  // answered by the proxy (100 Continue) before it reads the body
            case "accept-encoding" where keyed, "if-none-match" where keyed, "if-modified-since" where keyed:
                continue  // written below
            case "accept-language" where keyed && route.vary.languages != nil:
                continue  // written below, as the key has it
            default:
                if keyed && !route.forwardHeaders.contains(lower) { continue }
                headers.add(name: name, value: value)
            }
        }
        // Forward what is keyed: the language the variant is stored under, not the client's list.
        if keyed, let languages = route.vary.languages, route.forwardHeaders.contains("accept-language") {
            headers.add(name: "Accept-Language", value: AcceptLanguage.best(request.headers["accept-language"], offered: languages))
        }
        if keyed, let encoding = AcceptEncoding.normalizedFieldValue(request.headers["accept-encoding"]) {
            headers.add(name: "Accept-Encoding", value: encoding)
        }
        if let stale {
            if let etag = stale.etag { headers.add(name: "If-None-Match", value: etag) }
            if let lastModified = stale.lastModified { headers.add(name: "If-Modified-Since", value: lastModified) }
        }
        headers.add(name: "X-Forwarded-For", value: forwarding.forwardedFor)
        headers.add(name: "X-Forwarded-Proto", value: forwarding.proto)
        if let requestID { headers.add(name: "X-Request-Id", value: requestID) }
        let clientHost = request.headers.first(name: "host")
        if route.normalizer.includeHost, let clientHost {
            let host = CacheKeyNormalizer.normalizedHost(clientHost)
            headers.add(name: "Host", value: host)
            headers.add(name: "X-Forwarded-Host", value: host)
        } else {
            headers.add(name: "Host", value: pool.settings.url.hostField)
        }
        // Framing: ours, from the decoder's.
        if request.headers.contains(name: "transfer-encoding") {
            headers.add(name: "Transfer-Encoding", value: "chunked")
        } else if let length = request.headers.first(name: "content-length").flatMap({ Int($0) }) {
            headers.add(name: "Content-Length", value: String(length))
        } else if request.method == .POST || request.method == .PUT || request.method == .PATCH {
            headers.add(name: "Content-Length", value: "0")
        }
        let target = keyed ? route.normalizer.normalizedTarget(request.uri) : request.uri
        return HTTPRequestHead(version: .http1_1, method: request.method, uri: pool.settings.url.basePath + target, headers: headers)
    }
}
