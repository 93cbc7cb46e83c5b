import Foundation
import SluiceConnectors
import SluiceCore
import SluiceFormats

/// Writes rejected records as JSON lines (`spec/pipeline-config.md`, "Rejected records"). The file
/// is created on the first rejection and synced before the unit's position is committed, so a
/// record the source no longer offers is always in the sink or here.
final class QuarantineWriter {
    let path: String
    private let pipeline: String
    private let runID: String
    private var writer: FileWriter?
    private var buffer: [UInt8] = []
    private(set) var count = 0

    init(template: String, context: RunContext) {
        let p = template.replacingOccurrences(of: "{pipeline}", with: context.pipeline)
            .replacingOccurrences(of: "{run_id}", with: context.runID)
        path = context.resolve(p)
        pipeline = context.pipeline
        runID = context.runID
    }

    func add(_ r: Rejection, unit: WorkUnit, sourceKind: String) {
        var line = "{\"pipeline\":\(JSONText.quoted(pipeline)),\"run_id\":\(JSONText.quoted(runID)),"
        line += "\"source\":{\"\(sourceKind)\":\(JSONText.quoted(unit.location))"
        if let origin = r.origin { line += ",\"line\":\(origin)" }
        line += "},\"reason\":\(JSONText.quoted(r.reason.rawValue))"
        line += ",\"rule\":\(r.rule.map(JSONText.quoted) ?? "null"),\"field\":\(r.field.map(JSONText.quoted) ?? "null")"
        line += ",\"message\":\(JSONText.quoted(r.message))"
        if let record = r.record {
            line += ",\"record\":{" + record.map { JSONText.quoted($0.0) + ":" + $0.1.jsonText }.joined(separator: ",") + "}"
        } else {
            line += ",\"raw\":\(JSONText.quoted(r.raw ?? ""))"
        }
        line += "}\n"
        buffer.append(contentsOf: line.utf8)
        count += 1
    }

    /// Makes everything added so far durable. The file only ever grows, so a crash leaves whole lines.
    func sync() throws {
        guard !buffer.isEmpty else { return }
        if writer == nil {
            try FileSystem.createDirectory(forFile: path)
            writer = try FileWriter(path: path, compression: .none)
        }
        try writer?.write(buffer)
        buffer.removeAll(keepingCapacity: true)
        try writer?.sync()
    }

    func close() throws {
        try sync()
        try writer?.finish()
        writer = nil
    }
}
