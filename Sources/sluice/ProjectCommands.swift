import ArgumentParser
import Foundation
import Sluice

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check the project file: keys, types, connector options, depends_on cycles, cron syntax.",
        discussion: "Problems print as FILE:LINE:COL: message. Exit code 2 when there are any."
    )

    @OptionGroup var project: ProjectOptions

    func run() async throws {
        let config = try project.loadProject()
        print("\(config.file): ok, \(config.pipelines.count) pipeline(s)")
        for p in config.pipelines {
            let source: String = switch p.source {
            case .files(let f): "files \(f.path) (\(f.format.rawValue))"
            case .postgres(let c) where c.mode == .cdc: "postgres cdc \(c.tables.joined(separator: ", ")) (slot \(c.slot ?? "?"))"
            case .postgres(let c): "postgres \(c.table ?? "query") (\(c.mode.rawValue))"
            case .http(let h): "http \(h.method) \(h.url) (\(h.pagination.type.rawValue) pagination)"
            case .webhook(let w): "webhook POST \(w.path)" + (w.auth == nil ? " (no auth)" : "")
            }
            let sink: String = switch p.sink {
            case .sqlite(let s): "sqlite \(s.path) table \(s.table) (\(s.mode.rawValue))"
            case .files(let f): "files \(f.path) (\(f.format.rawValue))"
            case .postgres(let c): "postgres \(c.table) (\(c.mode.rawValue))"
            }
            let deps = p.dependsOn.isEmpty ? "" : " after \(p.dependsOn.joined(separator: ", "))"
            print(config.masker.mask("  \(p.name)\(deps): \(source) → \(sink)"))
        }
    }
}

struct StateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "state",
        abstract: "Show or reset saved positions (processed-file manifests, cursors).",
        subcommands: [Show.self, Reset.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the saved positions of one or all pipelines.")
        @OptionGroup var project: ProjectOptions
        @Argument(help: "Pipeline (default: all).") var pipeline: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let config = try project.loadProject()
            let pipelines = try selected(config, pipeline)
            var out: [String] = []
            var jsonItems: [String] = []
            for p in pipelines {
                let entries = try await StateAdmin.show(project: config, pipeline: p)
                out.append("\(p.name): \(entries.count) entr\(entries.count == 1 ? "y" : "ies")")
                for e in entries { out.append("  \(e.key) = \(e.value)") }
                jsonItems.append("{\"pipeline\":\(JSONText.quoted(p.name)),\"entries\":{"
                                 + entries.map { "\(JSONText.quoted($0.key)):\(JSONText.quoted($0.value))" }.joined(separator: ",") + "}}")
            }
            print(json ? "{\"state\":[\(jsonItems.joined(separator: ","))]}" : out.joined(separator: "\n"))
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget a pipeline's positions: the next run reads everything again.")
        @OptionGroup var project: ProjectOptions
        @Argument(help: "Pipeline.") var pipeline: String
        @Option(help: "Change data capture: read only this table again from a new snapshot (its replica is replaced); the stream goes on where it was.")
        var table: String?

        func run() async throws {
            let config = try project.loadProject()
            let p = try selected(config, pipeline)[0]
            guard let table else {
                let n = try await StateAdmin.reset(project: config, pipeline: p)
                print("\(p.name): removed \(n) saved position(s); the next run starts from scratch")
                return
            }
            switch StateAdmin.snapshotKey(pipeline: p, table: table) {
            case .failure(let e):
                Terminal.printError("sluice state reset: \(e.description)")
                throw ExitCode(2)
            case .success(let key):
                _ = try await StateAdmin.reset(project: config, pipeline: p, keys: [key])
                print("\(p.name): the next run reads \(key.dropFirst(PostgresChangeSource.snapshotPrefix.count)) again from a new snapshot")
            }
        }
    }
}

func selected(_ config: ProjectConfig, _ name: String?) throws -> [PipelineConfig] {
    guard let name else { return config.pipelines }
    guard let p = config.pipeline(named: name) else {
        Terminal.printError("unknown pipeline '\(name)' (defined: \(config.pipelines.map(\.name).joined(separator: ", ")))")
        throw ExitCode(2)
    }
    return [p]
}

struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "Show run history: status, start, duration, records read/written/rejected, quality score."
    )

    @OptionGroup var project: ProjectOptions
    @Argument(help: "Pipeline (default: all).") var pipeline: String?
    @Option(help: "Most recent runs to show.") var limit = 20
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let config = try project.loadProject()
        if let pipeline { _ = try selected(config, pipeline) }
        let runs = try ProjectRunner(project: config).openStore().runs(pipeline: pipeline, limit: limit)
        if json {
            let items = runs.map { r in
                "{\"run_id\":\(JSONText.quoted(r.runID)),\"pipeline\":\(JSONText.quoted(r.pipeline)),\"status\":\(JSONText.quoted(r.status.rawValue)),"
                    + "\"started_at\":\(JSONText.quoted(Temporal.formatTimestamp(r.startedAt))),\"duration_s\":\(Value.formatDouble(r.durationSeconds)),"
                    + "\"records_read\":\(r.recordsRead),\"records_written\":\(r.recordsWritten),\"records_rejected\":\(r.recordsRejected),"
                    + "\"quality_score\":\(r.qualityScore.map { Value.formatDouble($0) } ?? "null"),\"error\":\(r.error.map(JSONText.quoted) ?? "null"),"
                    + "\"failed_units\":[\(r.failedUnits.map { "{\"unit\":\(JSONText.quoted($0.unit)),\"error\":\(JSONText.quoted($0.error))}" }.joined(separator: ","))]}"
            }
            print("{\"runs\":[\(items.joined(separator: ","))]}")
            return
        }
        if runs.isEmpty { print("no runs yet"); return }
        for r in runs {
            let started = Temporal.formatTimestamp(r.startedAt / 1_000_000 * 1_000_000)
            print("\(r.runID)  \(r.pipeline)  \(r.status.rawValue)  \(started)  \(String(format: "%.2fs", r.durationSeconds))  "
                  + "read \(r.recordsRead)  written \(r.recordsWritten)  rejected \(r.recordsRejected)"
                  + (r.qualityScore.map { String(format: "  quality %.4f", $0) } ?? ""))
            if let e = r.error { print("    \(e)") }
            for u in r.failedUnits { print("    failed unit \(u.unit): \(u.error)") }
        }
    }
}
