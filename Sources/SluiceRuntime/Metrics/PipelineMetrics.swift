import Foundation
import Metrics

/// A pipeline's metrics (swift-metrics; `sluice serve` exports them in Prometheus text format at
/// `/metrics`). Handlers are made once per pipeline and shared by all its runs.
final class PipelineMetrics: Sendable {
    let read: Counter
    let written: Counter
    let rejected: Counter
    let batchSize: Recorder
    let writeDuration: Metrics.Timer
    let commitDuration: Metrics.Timer
    let runDuration: Metrics.Timer
    let lag: Gauge
    private let pipeline: String

    private static let lock = NSLock()
    nonisolated(unsafe) private static var made: [String: PipelineMetrics] = [:]

    static func of(_ pipeline: String, source: String) -> PipelineMetrics {
        lock.lock(); defer { lock.unlock() }
        if let m = made[pipeline] { return m }
        let m = PipelineMetrics(pipeline, source: source)
        made[pipeline] = m
        return m
    }

    private init(_ pipeline: String, source: String) {
        self.pipeline = pipeline
        func records(_ status: String) -> Counter {
            Counter(label: "sluice_records_processed_total", dimensions: [("pipeline", pipeline), ("source", source), ("status", status)])
        }
        read = records("read")
        written = records("written")
        rejected = records("rejected")
        batchSize = Recorder(label: "sluice_batch_size", dimensions: [("pipeline", pipeline)], aggregate: true)
        func stage(_ name: String) -> Metrics.Timer {
            Metrics.Timer(label: "sluice_processing_duration_seconds", dimensions: [("pipeline", pipeline), ("stage", name)])
        }
        writeDuration = stage("write")
        commitDuration = stage("commit")
        runDuration = stage("run")
        lag = Gauge(label: "sluice_pipeline_lag_seconds", dimensions: [("pipeline", pipeline)])
        // Present from the start, so a scrape before the first run ends shows the families at 0.
        for status in ["succeeded", "failed"] {
            Counter(label: "sluice_pipeline_runs_total", dimensions: [("pipeline", pipeline), ("status", status)]).increment(by: 0)
        }
        for c in [read, written, rejected] { c.increment(by: 0) }
    }

    /// A run ended: its status, its error kind, its duration and its quality scores.
    func finished(_ record: PipelineRunRecord, errorType: String?) {
        Counter(label: "sluice_pipeline_runs_total", dimensions: [("pipeline", pipeline), ("status", record.status.rawValue)]).increment()
        if let errorType {
            Counter(label: "sluice_errors_total", dimensions: [("pipeline", pipeline), ("error_type", errorType)]).increment()
        }
        runDuration.recordSeconds(max(0, record.durationSeconds))
        for result in record.quality {
            let score = result.evaluated == 0 ? 1 : 1 - Double(result.failed) / Double(result.evaluated)
            Gauge(label: "sluice_data_quality_score", dimensions: [("pipeline", pipeline), ("rule", result.rule)]).record(score)
        }
        if let score = record.qualityScore {
            Gauge(label: "sluice_data_quality_score", dimensions: [("pipeline", pipeline), ("rule", "all")]).record(score)
        }
    }
}
