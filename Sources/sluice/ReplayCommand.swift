import ArgumentParser
import Foundation
import Logging
import Sluice

struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Send the records a run quarantined through the pipeline again (after the rule or the data was fixed).",
        discussion: """
            The records go through the pipeline's schema, quality rules and sink (not its transforms: they were \
            quarantined after them). A run is replayed once: its records are committed with a marker, and a second \
            replay of the same run loads nothing. Records that fail again are quarantined under the replay's run.
            """
    )

    @OptionGroup var project: ProjectOptions
    @Argument(help: "The pipeline.") var pipeline: String
    @Option(help: "The run whose quarantined records to replay (see `sluice runs`).") var run: String
    @Flag(help: "Print the run summary as JSON.") var json = false

    func run() async throws {
        project.setUpLogging(quietOnTerminal: true)
        let config = try project.loadProject()
        let cancel = CancellationFlag()
        let signals = Signals.install(cancel)
        defer { _ = signals }
        let runner = ProjectRunner(project: config, cancel: cancel, logger: Logger(label: "sluice"))
        let report: RunReport
        do {
            report = try await runner.replay(pipeline: pipeline, run: run)
        } catch let e as SluiceError {
            Terminal.printError("sluice replay: \(config.masker.mask(e.description))")
            throw ExitCode(e.kind == .config ? 2 : 1)
        }
        print(json ? report.json : Summary.table(report, dryRun: false))
        if report.interrupted { throw ExitCode(3) }
        if report.pipelines.contains(where: { $0.status != .succeeded }) { throw ExitCode(1) }
    }
}
