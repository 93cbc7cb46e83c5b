import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import NIOHTTPTypes
import SluiceRuntime

/// HTTP framing of a webhook request: the body limit (413 before reading when Content-Length
/// says so, or as soon as the body passes it), then `WebhookEndpoint` decides the answer.
enum WebhookRoute {
    static func handle(_ request: Request, _ endpoint: WebhookEndpoint) async throws -> Response {
        let limit = endpoint.config.maxBody
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            return tooLarge(limit)
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            return tooLarge(limit)
        }
        let body = Array(buffer: buffer)
        let answer = await endpoint.handle(body: body, contentType: request.headers[.contentType]) { name in
            HTTPField.Name(name).flatMap { request.headers[$0] }
        }
        var response = Response.json(answer.status, answer.body, retryAfter: answer.retryAfter)
        if answer.replayed { response.headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
        return response
    }

    static func tooLarge(_ limit: Int) -> Response {
        Response.json(413, Array("{\"error\":\"the body is larger than max_body (\(limit) bytes)\"}".utf8))
    }
}

/// Closes a connection whose request has not fully arrived `timeout` after its head did: a
/// slow-loris body cannot hold a connection (and a concurrency slot) for ever. Slow headers are
/// bounded by the server's idle timeout, which runs until a request's head is complete.
final class RequestDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    private let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            deadline?.cancel()
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            deadline = context.eventLoop.scheduleTask(in: timeout) { bound.value.close(promise: nil) }
        case .end:
            deadline?.cancel()
            deadline = nil
        case .body:
            break
        }
        context.fireChannelRead(data)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }
}

/// One structured log line per request (method, path, status, duration, bytes) and the HTTP
/// request metrics.
struct AccessLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger
    let enabled: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPResponseError {
            record(request, status: Int(error.status.code), started: started)
            throw error
        } catch {
            record(request, status: 500, started: started)
            throw error
        }
        record(request, status: response.status.code, started: started)
        return response
    }

    private func record(_ request: Request, status: Int, started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let path = request.uri.path
        let (counter, timer) = HTTPMetrics.shared.handlers(path: path, method: request.method.rawValue, status: status)
        counter.increment()
        timer.record(duration: elapsed)
        guard enabled else { return }
        let ms = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
        logger.info("request", metadata: ["method": "\(request.method.rawValue)", "path": "\(path)", "status": "\(status)",
                                          "ms": "\(String(format: "%.2f", ms))",
                                          "length": "\(request.headers[.contentLength] ?? "-")"])
    }
}

/// The HTTP metric handlers, made once per path, method and status: looking them up in the
/// Prometheus registry on every request would cost more than the request's own work.
final class HTTPMetrics: @unchecked Sendable {
    static let shared = HTTPMetrics()
    private let lock = NSLock()
    private var counters: [String: Counter] = [:]
    private var timers: [String: Metrics.Timer] = [:]

    func handlers(path: String, method: String, status: Int) -> (Counter, Metrics.Timer) {
        let key = "\(method) \(status) \(path)"
        return lock.withLock {
            let counter = counters[key] ?? {
                let c = Counter(label: "sluice_http_requests_total", dimensions: [("path", path), ("method", method), ("status", String(status))])
                counters[key] = c
                return c
            }()
            let timer = timers[path] ?? {
                let t = Metrics.Timer(label: "sluice_http_request_duration_seconds", dimensions: [("path", path)])
                timers[path] = t
                return t
            }()
            return (counter, timer)
        }
    }
}
