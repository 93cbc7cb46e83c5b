import Foundation
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// `sluice run --plan`: for each pipeline, the DDL its sink would apply to take the source's
/// current columns — or, under `schema.evolution` other than evolve, what would happen instead —
/// without reading or writing any data.
public struct SchemaPlan: Sendable {
    public struct Entry: Sendable, Codable {
        public var pipeline: String
        public var sink: String
        /// Statements the sink would run, in order.
        public var statements: [String]
        /// What else the user should know (columns known only once read, policies that refuse).
        public var notes: [String]
    }

    public static func make(project: ProjectConfig, pipelines: [PipelineConfig]) async -> [Entry] {
        var out: [Entry] = []
        for p in pipelines {
            var context = RunContext(pipeline: p.name, runID: "plan", baseDirectory: project.baseDirectory)
            context.dryRun = true
            var entry = Entry(pipeline: p.name, sink: describe(p.sink), statements: [], notes: [])
            do {
                let source = try PipelineRunner.makeSource(p)
                let described = try await source.describe(context: context)
                var schema = described ?? p.schema.declared
                for f in p.schema.declared.fields where schema[f.name] == nil { schema.append(f) }
                if described == nil {
                    entry.notes.append("the source's other columns are known only once it is read; planned from the declared schema")
                }
                if schema.count > 0 {
                    let sink = try PipelineRunner.makeSink(p, fullRefresh: false)
                    let statements = try await sink.plannedStatements(for: schema, context: context)
                    let evolving = statements.filter { $0.hasPrefix("ALTER TABLE") }
                    if p.schema.evolution == .evolve || evolving.isEmpty {
                        entry.statements = statements
                    } else {
                        entry.statements = statements.filter { !$0.hasPrefix("ALTER TABLE") }
                        let what = evolving.joined(separator: "; ")
                        let note = switch p.schema.evolution {
                        case .freeze: "the source has changed and schema.evolution is freeze: the run would fail rather than \(what)"
                        case .discard_column: "schema.evolution is discard_column: new columns would be dropped from the records instead of \(what)"
                        default: "schema.evolution is discard_row: records with new columns would go to quarantine instead of \(what)"
                        }
                        entry.notes.append(note)
                    }
                }
            } catch {
                entry.notes.append(project.masker.mask(SluiceError.wrap(error, kind: .internal, pipeline: p.name).description))
            }
            out.append(entry)
        }
        return out
    }

    static func describe(_ sink: SinkConfig) -> String {
        switch sink {
        case .sqlite(let c): "sink sqlite \(c.path) \(c.table)"
        case .postgres(let c): "sink postgres \(c.table)"
        case .files(let c): "sink files \(c.path)"
        }
    }
}
