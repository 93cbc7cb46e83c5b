import Foundation
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// `sluice schema diff PIPELINE`: the table schema the history last recorded against what the next
/// run would make of it — the source's catalog, or the first batch of the input the next run would
/// read — with what each compatibility level says of the change and the DDL the sink would run.
/// Nothing is written. The table keeps its columns, so the change is what the source adds or widens.
public struct SchemaDiff: Sendable {
    public var pipeline: String
    /// The latest recorded version (nil: the pipeline never ran).
    public var version: Int?
    public var recorded: Schema
    public var current: Schema
    public var change: SchemaChange
    public var statements: [String]
    public var compatibility: Compatibility

    struct FirstBatch: Error { var schema: Schema }

    public static func make(project: ProjectConfig, pipeline p: PipelineConfig, store: StateStore) async throws -> SchemaDiff {
        var context = RunContext(pipeline: p.name, runID: "diff", baseDirectory: project.baseDirectory, batchRows: 1024)
        context.dryRun = true
        let source = try PipelineRunner.makeSource(p)
        let sink = try PipelineRunner.makeSink(p, fullRefresh: false)
        var seen = try await source.describe(context: context)
        // What the next run would read (new files, rows past the cursor).
        if seen == nil {
            let state = try await PipelineRunner.savedState(p, sink: sink, store: store, context: context)
            seen = try await firstBatchSchema(source, p, state: state, context)
        }
        // Declared columns are what they are declared as.
        let declared = p.schema.declared
        var current = Schema((seen ?? Schema()).fields.map { declared[$0.name] ?? $0 })
        for f in declared.fields where current[f.name] == nil { current.append(f) }
        await source.close()
        let last = try store.schemaVersions(pipeline: p.name).last
        let recorded = last?.schema ?? Schema()
        // The table keeps its columns: what it would become is the recorded schema widened by the
        // current one. The change (and what compatibility says of it) is what the source
        // presents now, so a recorded column it no longer has shows as removed — when there is
        // something to read: with nothing new, only new declarations change anything.
        let next = recorded.merged(with: current)
        let statements = (try? await sink.plannedStatements(for: next, context: context)) ?? []
        return SchemaDiff(pipeline: p.name, version: last?.version, recorded: recorded, current: current,
                          change: SchemaChange(from: recorded, to: seen == nil ? next : current), statements: statements, compatibility: p.schema.compatibility)
    }

    /// The schema of the first batch the source reads (through the pipeline's transforms).
    static func firstBatchSchema(_ source: any Source, _ p: PipelineConfig, state: [String: String], _ context: RunContext) async throws -> Schema? {
        guard let unit = try await source.plan(state: state, context: context).first else { return nil }
        let transforms = Transforms.make(p.transforms)
        do {
            _ = try await source.read(unit, context: context) { batch in
                var b = batch.batch
                for t in transforms { b = try t.apply(b, context: context).0 }
                throw FirstBatch(schema: b.schema)
            }
        } catch let first as FirstBatch {
            return first.schema
        }
        return nil
    }

    /// What each level says of the change (empty: allowed).
    public var verdicts: [(level: Compatibility, problems: [String])] {
        Compatibility.allCases.filter { $0 != .none }.map { ($0, change.violations(of: $0.rawValue)) }
    }

    public var text: String {
        var lines = ["\(pipeline): " + (version.map { "schema version \($0) → the source now" } ?? "never ran; the source now")]
        lines += change.isEmpty ? ["  no change"] : change.lines.map { "  \($0)" }
        if !change.isEmpty {
            for v in verdicts {
                let mark = v.level == compatibility ? " (configured)" : ""
                lines.append("  \(v.level.rawValue)\(mark): " + (v.problems.isEmpty ? "compatible" : "incompatible — " + v.problems.joined(separator: "; ")))
            }
        }
        lines += statements.map { "  \($0);" }
        return lines.joined(separator: "\n")
    }

    public var json: String {
        func fields(_ s: [Field]) -> String { "[" + s.map { "{\"name\":\(JSONText.quoted($0.name)),\"type\":\(JSONText.quoted($0.type.description))}" }.joined(separator: ",") + "]" }
        let retyped = "[" + change.retyped.map { "{\"name\":\(JSONText.quoted($0.0.name)),\"from\":\(JSONText.quoted($0.0.type.description)),\"to\":\(JSONText.quoted($0.1.type.description))}" }.joined(separator: ",") + "]"
        let levels = verdicts.map { "\(JSONText.quoted($0.level.rawValue)):[\($0.problems.map(JSONText.quoted).joined(separator: ","))]" }.joined(separator: ",")
        return "{\"pipeline\":\(JSONText.quoted(pipeline)),\"version\":\(version.map(String.init) ?? "null"),\"added\":\(fields(change.added)),"
            + "\"removed\":\(fields(change.removed)),\"retyped\":\(retyped),\"compatibility\":\(JSONText.quoted(compatibility.rawValue)),"
            + "\"violations\":{\(levels)},\"ddl\":[\(statements.map(JSONText.quoted).joined(separator: ","))]}"
    }
}
