import ArgumentParser
import Dispatch
import Foundation
import Logging
import Sluice

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run pipelines (default: all) and their upstream dependencies in DAG order.",
        discussion: """
            Exit codes: 0 all succeeded, 1 a pipeline failed, 2 configuration error, 3 interrupted \
            (state is consistent; a re-run resumes).
            """
    )

    @OptionGroup var project: ProjectOptions

    @Argument(help: "Pipelines to run; their upstream dependencies run first.")
    var pipelines: [String] = []

    @Flag(help: "Print one JSON summary document on stdout.")
    var json = false

    @Flag(help: "Ignore saved positions and rebuild: files are read again and append tables are rebuilt.")
    var fullRefresh = false

    @Flag(help: "Only show what would be read; nothing is written.")
    var dryRun = false

    @Option(help: "Pipelines that may run at the same time.")
    var parallel = 2

    @Flag(help: "Print the DDL each sink would apply to take its source's current columns (create table, add or widen columns), and what schema.evolution would do instead; reads and writes no data.")
    var plan = false

    @Flag(help: "Keep streaming: change-data-capture sources wait for new changes (poll_interval) instead of stopping once caught up; stop with Ctrl-C or SIGTERM.")
    var follow = false

    func run() async throws {
        project.setUpLogging(quietOnTerminal: true)
        let config = try project.loadProject()
        for name in pipelines where config.pipeline(named: name) == nil {
            Terminal.printError("sluice run: unknown pipeline '\(name)' (defined: \(config.pipelines.map(\.name).joined(separator: ", ")))")
            throw ExitCode(2)
        }
        if plan {
            let selected = pipelines.isEmpty ? config.pipelines : config.pipelines.filter { pipelines.contains($0.name) }
            let entries = await SchemaPlan.make(project: config, pipelines: selected)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print("{\"plan\":" + String(decoding: try encoder.encode(entries), as: UTF8.self) + "}")
            } else {
                for e in entries {
                    print("\(e.pipeline) → \(e.sink): " + (e.statements.isEmpty ? "no DDL" : "\(e.statements.count) statement(s)"))
                    for statement in e.statements { print("  \(statement);") }
                    for note in e.notes { print("  note: \(note)") }
                }
            }
            return
        }
        var options = RunOptions()
        options.fullRefresh = fullRefresh
        options.dryRun = dryRun
        options.parallel = max(1, parallel)
        options.follow = follow
        let cancel = CancellationFlag()
        let signals = Signals.install(cancel)
        defer { _ = signals }
        let progress = RunProgress()
        let runner = ProjectRunner(project: config, options: options, cancel: cancel, progress: progress,
                                   logger: Logger(label: "sluice"))
        let display = Task { await Progress.show(progress) }
        let report: RunReport
        do {
            report = try await runner.run(pipelines)
        } catch {
            display.cancel()
            Terminal.printError("sluice run: \(config.masker.mask("\(error)"))")
            throw ExitCode(1)
        }
        display.cancel()
        await display.value
        if json {
            print(report.json)
        } else {
            print(Summary.table(report, dryRun: dryRun))
        }
        if report.interrupted { throw ExitCode(3) }
        if report.pipelines.contains(where: { $0.status != .succeeded }) { throw ExitCode(1) }
    }
}

/// SIGINT/SIGTERM: the first asks the run to drain (roll back the open unit, keep committed ones);
/// a second one exits at once.
enum Signals {
    static func install(_ cancel: CancellationFlag) -> [DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if cancel.isCancelled { exit(130) }
                Terminal.printError("\nsluice: stopping after rolling back the unit in progress (press Ctrl-C again to quit at once)")
                cancel.cancel()
            }
            source.resume()
            return source
        }
    }
}

enum Summary {
    static func table(_ report: RunReport, dryRun: Bool) -> String {
        let header = ["pipeline", "status", "read", "written", "rejected", "MB", "seconds"]
        var rows = report.pipelines.map { p in
            [p.pipeline, dryRun ? "dry-run (\(p.unitsDone) units)" : p.status.rawValue, "\(p.recordsRead)", "\(p.recordsWritten)",
             "\(p.recordsRejected)", String(format: "%.1f", Double(p.bytesRead) / 1e6), String(format: "%.2f", p.durationSeconds)]
        }
        rows.insert(header, at: 0)
        let widths = header.indices.map { c in rows.map { $0[c].count }.max() ?? 0 }
        var lines = rows.map { row in
            row.enumerated().map { c, cell in c == 0 || c == 1 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - cell.count) + cell }.joined(separator: "  ")
        }
        lines.insert(String(repeating: "-", count: lines[0].count), at: 1)
        for p in report.pipelines {
            if let e = p.error { lines.append(e.hasPrefix(p.pipeline + ":") ? e : "\(p.pipeline): \(e)") }
            for u in p.failedUnits.dropFirst() { lines.append("  failed unit \(u.unit): \(u.error)") }
            if let q = p.quarantineFile { lines.append("\(p.pipeline): \(p.recordsRejected) rejected record(s) in \(q)") }
            if let score = p.qualityScore {
                let failing = p.quality.filter { $0.failed > 0 }.map { r in
                    "\(r.rule)\(r.field.map { "(\($0))" } ?? "") \(r.failed)/\(r.evaluated)\(r.severity == "warn" ? " warn" : "")"
                }
                lines.append(String(format: "%@: quality score %.4f", p.pipeline, score) + (failing.isEmpty ? ", every rule passed" : "; failing: " + failing.joined(separator: ", ")))
            }
        }
        lines.append("run \(report.runID): \(report.interrupted ? "interrupted" : report.status)")
        return lines.joined(separator: "\n")
    }
}
