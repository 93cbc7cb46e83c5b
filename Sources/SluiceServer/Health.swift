import Foundation
import Metrics
import ServiceLifecycle
import SluiceConfig
import SluiceCore
import SluiceRuntime

/// What `/readyz` and the gauges of `/metrics` report: whether every continuous pipeline's sink
/// takes records and every spool is below its limit; spool sizes, lag, and CDC slot lag.
final class Health: Sendable {
    let endpoints: [WebhookEndpoint]
    let continuous: [ContinuousPipeline]

    init(endpoints: [WebhookEndpoint], continuous: [ContinuousPipeline]) {
        self.endpoints = endpoints
        self.continuous = continuous
    }

    func readiness() -> (Bool, [UInt8]) {
        var ready = true
        var parts: [String] = []
        for c in continuous {
            var ok = c.health.ok
            var reason = c.health.error.map { "the last run failed: \($0)" }
            if let e = c.endpoint {
                let backlog = e.spool.backlog
                if backlog.bytes >= e.spool.maxBytes * 9 / 10 {
                    ok = false
                    reason = "spool at \(backlog.bytes) of \(e.spool.maxBytes) bytes"
                }
            }
            ready = ready && ok
            parts.append("{\"pipeline\":\(JSONText.quoted(c.pipeline.name)),\"ok\":\(ok)" + (reason.map { ",\"reason\":\(JSONText.quoted($0))" } ?? "") + "}")
        }
        return (ready, Array("{\"ready\":\(ready),\"pipelines\":[\(parts.joined(separator: ","))]}".utf8))
    }

    /// Spool sizes and webhook lag; cheap, done on every scrape and every second.
    func updateGauges() {
        for c in continuous {
            guard let e = c.endpoint, let source = c.spoolSource else { continue }
            let backlog = e.spool.backlog
            Gauge(label: "sluice_spool_bytes", dimensions: [("pipeline", c.pipeline.name)]).record(backlog.bytes)
            Gauge(label: "sluice_spool_records", dimensions: [("pipeline", c.pipeline.name)]).record(backlog.records)
            Gauge(label: "sluice_pipeline_lag_seconds", dimensions: [("pipeline", c.pipeline.name)]).record(backlog.bytes == 0 ? 0 : source.lastLag)
        }
    }

    /// Replication slot lag of the followed CDC pipelines (a query each; every 10 s).
    func updateSlotGauges() async {
        for c in continuous {
            guard case .postgres(let config) = c.pipeline.source, let status = await Doctor.slotStatus(pipeline: c.pipeline.name, config) else { continue }
            let labels = [("pipeline", c.pipeline.name), ("slot", config.slot ?? "sluice_\(c.pipeline.name)")]
            Gauge(label: "sluice_cdc_slot_lag_bytes", dimensions: labels).record(status.lagBytes)
            Gauge(label: "sluice_cdc_wal_retained_bytes", dimensions: labels).record(status.retainedBytes)
            Gauge(label: "sluice_cdc_slot_active", dimensions: labels).record(status.active ? 1 : 0)
            if let seconds = status.lagSeconds {
                Gauge(label: "sluice_cdc_slot_lag_seconds", dimensions: labels).record(seconds)
                Gauge(label: "sluice_pipeline_lag_seconds", dimensions: [("pipeline", c.pipeline.name)]).record(seconds)
            }
        }
    }
}

/// Refreshes the gauges once a second until shutdown.
struct GaugeTicker: Service {
    let health: Health

    func run() async throws {
        var tick = 0
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            health.updateGauges()
            if tick % 10 == 0 { await health.updateSlotGauges() }
            tick += 1
            for _ in 0..<10 where !Task.isShuttingDownGracefully { try? await Task.sleep(for: .milliseconds(100)) }
        }
    }
}
