import SluiceCore

public enum PipelineStatus: String, Sendable, Codable { case succeeded, failed, skipped, interrupted }

/// A unit that failed in a run, and why.
public struct FailedUnit: Sendable, Codable {
    public var unit: String
    public var error: String
}

/// What one pipeline did in one run; stored in the run history and printed in summaries.
public struct PipelineRunRecord: Sendable {
    public var runID: String
    public var pipeline: String
    public var status: PipelineStatus = .succeeded
    public var startedAt: Int64 = Temporal.nowMicros()
    public var durationSeconds = 0.0
    public var recordsRead = 0
    public var recordsWritten = 0
    public var recordsRejected = 0
    public var bytesRead = 0
    public var unitsDone = 0
    public var qualityScore: Double?
    /// Per rule: evaluated and failed counts, samples.
    public var quality: [RuleResult] = []
    public var error: String?
    public var failedUnits: [FailedUnit] = []
    /// The pipeline went through all its units and only some failed (the others are committed).
    public var finishedWithFailedUnits = false
    public var quarantineFile: String?

    public init(runID: String, pipeline: String) {
        self.runID = runID
        self.pipeline = pipeline
    }
}

/// The outcome of `sluice run`: every pipeline's record plus the overall status.
public struct RunReport: Sendable {
    public var runID: String
    public var pipelines: [PipelineRunRecord]
    public var interrupted = false

    /// `succeeded` when every pipeline did, `failed` when nothing was committed, else `partial`
    /// (some pipelines, or some units of a pipeline, were).
    public var status: String {
        if pipelines.allSatisfy({ $0.status == .succeeded }) { return "succeeded" }
        if pipelines.contains(where: { $0.status == .succeeded || $0.finishedWithFailedUnits && $0.unitsDone > 0 }) { return "partial" }
        return "failed"
    }

    /// The `--json` document of `spec/cli.md`.
    public var json: String {
        func esc(_ s: String) -> String { JSONText.quoted(s) }
        let items = pipelines.map { p -> String in
            let status = p.status == .interrupted ? "failed" : p.status.rawValue
            return "{\"name\":\(esc(p.pipeline)),\"status\":\(esc(status)),\"records_read\":\(p.recordsRead),"
                + "\"records_written\":\(p.recordsWritten),\"records_rejected\":\(p.recordsRejected),\"bytes_read\":\(p.bytesRead),"
                + "\"duration_s\":\(Value.formatDouble((p.durationSeconds * 1000).rounded() / 1000)),"
                + "\"quality_score\":\(p.qualityScore.map { Value.formatDouble($0) } ?? "null"),"
                + "\"quality\":[\(p.quality.map(\.json).joined(separator: ","))],"
                + "\"error\":\(p.error.map(esc) ?? "null"),"
                + "\"failed_units\":[\(p.failedUnits.map { "{\"unit\":\(esc($0.unit)),\"error\":\(esc($0.error))}" }.joined(separator: ","))],"
                + "\"quarantine\":\(p.quarantineFile.map(esc) ?? "null")}"
        }
        return "{\"run_id\":\(esc(runID)),\"status\":\(esc(status)),\"pipelines\":[\(items.joined(separator: ","))]}"
    }
}


extension RuleResult {
    /// `{"rule", "field", "severity", "evaluated", "failed", "samples"}`; samples are records (JSON) or a finding (text).
    var json: String {
        let samples = self.samples.prefix(100).map { $0.hasPrefix("{") ? $0 : JSONText.quoted($0) }.joined(separator: ",")
        return "{\"rule\":\(JSONText.quoted(rule)),\"field\":\(field.map(JSONText.quoted) ?? "null"),\"severity\":\(JSONText.quoted(severity)),"
            + "\"evaluated\":\(evaluated),\"failed\":\(failed),\"samples\":[\(samples)]}"
    }
}
