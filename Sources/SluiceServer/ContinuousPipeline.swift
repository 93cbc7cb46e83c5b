import Foundation
import Logging
import Metrics
import ServiceLifecycle
import SluiceConfig
import SluiceConnectors
import SluiceCore
import SluiceRuntime

/// A pipeline that runs for as long as the server does: a webhook spool's delivery, or a CDC
/// stream (`--follow`). A run that fails (the sink is down) is started again after a backoff
/// of 1 s doubling to 30 s; what it committed stays committed, so the next run goes on from there.
///
/// On graceful shutdown a webhook delivery finishes what is spooled (the HTTP server has stopped
/// taking requests by then) and a stream stops at its next batch; past `drainTimeout` the run is
/// interrupted, and what is left is delivered after the restart.
final class ContinuousPipeline: Service, @unchecked Sendable {
    let pipeline: PipelineConfig
    let project: ProjectConfig
    let store: StateStore
    let logger: Logger
    let drainTimeout: Double
    /// The webhook spool's delivery, when this is a webhook pipeline.
    let spoolSource: SpoolSource?
    let endpoint: WebhookEndpoint?

    private let cancel = CancellationFlag()
    private let lock = NSLock()
    private var stopping = false
    private var healthy = true
    private var lastError: String?

    init(pipeline: PipelineConfig, project: ProjectConfig, store: StateStore, logger: Logger, drainTimeout: Double,
         endpoint: WebhookEndpoint? = nil) {
        self.pipeline = pipeline
        self.project = project
        self.store = store
        self.logger = logger
        self.drainTimeout = drainTimeout
        self.endpoint = endpoint
        if let endpoint, case .webhook(let c) = pipeline.source {
            spoolSource = SpoolSource(config: c, schema: pipeline.schema, spool: endpoint.spool)
        } else {
            spoolSource = nil
        }
        spoolSource?.onDeliveryStarted = { [weak self] in
            guard let self else { return }
            self.lock.withLock { self.healthy = true; self.lastError = nil }
            self.endpoint?.isSinkHealthy = true
        }
    }

    /// Whether the last run is going (or ended) well, and the last failure.
    var health: (ok: Bool, error: String?) { lock.withLock { (healthy, lastError) } }
    private var isStopping: Bool { lock.withLock { stopping } }

    func run() async throws {
        await withGracefulShutdownHandler {
            var options = RunOptions()
            options.follow = true
            let runner = ProjectRunner(project: project, options: options, cancel: cancel, logger: logger)
            var backoff = 1.0
            while true {
                let record = await runner.runPipeline(pipeline, source: spoolSource, store: store)
                let failed = record.status == .failed
                lock.withLock {
                    healthy = !failed
                    lastError = failed ? record.error : nil
                }
                if failed {
                    endpoint?.isSinkHealthy = false
                    logger.error("Pipeline run failed; starting it again.", metadata: [
                        "pipeline": "\(pipeline.name)", "retry_in": "\(Int(backoff)) s", "error": "\(record.error ?? "")"])
                }
                if cancel.isCancelled { break }
                // Shutting down: done once a run ended well, or nothing is left to deliver;
                // otherwise it tries again until the drain timeout interrupts it.
                if isStopping, !failed || (spoolSource.map { $0.backlog.bytes == 0 } ?? true) { break }
                if failed {
                    let until = Date().addingTimeInterval(backoff)
                    while Date() < until, !cancel.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
                    backoff = min(30, backoff * 2)
                } else {
                    backoff = 1
                }
            }
        } onGracefulShutdown: { [self] in
            lock.withLock { stopping = true }
            if let spoolSource {
                spoolSource.stop()
            } else {
                cancel.cancel()
            }
            let cancel = self.cancel, timeout = drainTimeout
            Task {
                try? await Task.sleep(for: .seconds(timeout))
                cancel.cancel()
            }
        }
    }
}
