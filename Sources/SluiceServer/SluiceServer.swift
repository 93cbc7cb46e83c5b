import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import SluiceConfig
import SluiceConnectors
import SluiceCore
import SluiceRuntime

/// Options of `sluice serve`.
public struct ServeOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// How long SIGTERM waits for the spools to reach their sinks before exiting anyway.
    public var drainTimeout = 30.0
    /// A connection with no request for this long is closed (also bounds slow request headers).
    public var idleTimeout = 30.0
    /// Log every request (method, path, status, duration) at info level.
    public var accessLog = true
    public init() {}
}

/// `sluice serve`: the webhook endpoints of the project, `/metrics`, `/healthz` and `/readyz` on
/// Hummingbird; the delivery of every webhook spool and every CDC stream without a schedule, for
/// as long as the server runs; and the scheduled pipelines. SIGTERM (or SIGINT) stops taking
/// requests, finishes those in flight, delivers what is spooled (up to the drain timeout) and
/// returns.
public enum SluiceServer {
    /// Makes swift-metrics report into a Prometheus registry (once per process), which `/metrics` serves.
    public static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultValueHistogramBuckets = [1, 10, 100, 1000, 4096, 16_384, 65_536]
        MetricsSystem.bootstrap(factory)
        return registry
    }

    public static func run(project: ProjectConfig, options: ServeOptions, registry: PrometheusCollectorRegistry, logger: Logger,
                           onListening: @escaping @Sendable (String, Int) -> Void) async throws {
        let store = try ProjectRunner(project: project).openStore()
        var endpoints: [WebhookEndpoint] = []
        var continuous: [ContinuousPipeline] = []
        for p in project.pipelines {
            switch p.source {
            case .webhook(let c):
                let context = RunContext(pipeline: p.name, runID: "serve", baseDirectory: project.baseDirectory)
                let spool = try SpoolSource.open(c, pipeline: p.name, context: context)
                for notice in spool.notices { logger.warning("\(notice)", metadata: ["pipeline": "\(p.name)"]) }
                let endpoint = WebhookEndpoint(pipeline: p, config: c, spool: spool)
                endpoints.append(endpoint)
                continuous.append(ContinuousPipeline(pipeline: p, project: project, store: store, logger: logger,
                                                     drainTimeout: options.drainTimeout, endpoint: endpoint))
                logger.info("Webhook endpoint.", metadata: ["pipeline": "\(p.name)", "path": "POST \(c.path)", "spool": "\(spool.directory)"])
            case .postgres(let c) where c.mode == .cdc && p.schedule == nil:
                continuous.append(ContinuousPipeline(pipeline: p, project: project, store: store, logger: logger, drainTimeout: options.drainTimeout))
                logger.info("Change stream followed.", metadata: ["pipeline": "\(p.name)", "tables": "\(c.tables.joined(separator: ","))"])
            default:
                break
            }
        }
        let health = Health(endpoints: endpoints, continuous: continuous)
        let router = Router()
        router.add(middleware: AccessLogMiddleware(logger: logger, enabled: options.accessLog))
        router.get("/healthz") { _, _ in Response.json(200, Array("{\"status\":\"ok\"}".utf8)) }
        router.get("/readyz") { _, _ in
            let (ready, body) = health.readiness()
            return Response.json(ready ? 200 : 503, body)
        }
        router.get("/metrics") { _, _ in
            health.updateGauges()
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        for endpoint in endpoints {
            router.post(RouterPath(endpoint.config.path)) { request, _ in try await WebhookRoute.handle(request, endpoint) }
        }
        let requestTimeout = endpoints.map(\.config.bodyTimeout).max() ?? 30
        let server = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestDeadlineHandler(timeout: .milliseconds(Int64(requestTimeout * 1000)))],
            idleTimeout: .milliseconds(Int64(options.idleTimeout * 1000)))
        let app = Application(router: router, server: .http1(configuration: server),
                              configuration: .init(address: .hostname(options.host, port: options.port), serverName: "sluice"),
                              onServerRunning: { channel in onListening(options.host, channel.localAddress?.port ?? options.port) },
                              logger: logger)
        let scheduler = Scheduler(project: project, logger: logger)
        // Shut down in reverse: the HTTP server first (no new records), then the schedule, then
        // the deliveries, which finish what the server accepted.
        var services: [any Service] = continuous
        if !scheduler.isEmpty { services.append(scheduler) }
        services.append(GaugeTicker(health: health))
        services.append(app)
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) },
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        for endpoint in endpoints { endpoint.spool.close() }
    }
}

extension Response {
    static func json(_ status: Int, _ body: [UInt8], retryAfter: Int? = nil) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
