import ArgumentParser
import Foundation
import Sluice

struct ProfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Profile a data file or what a pipeline's source reads: per column type, null %, distinct (approx.), min/max, mean/stddev, top values, histogram.",
        discussion: """
            One streaming pass with bounded memory. A name that is a pipeline of the project file (-c) profiles \
            that pipeline's source through its transforms, writing nothing; anything else is read as a file \
            (csv, jsonl, json or parquet, optionally .gz/.zst).
            """
    )

    @OptionGroup var project: ProjectOptions
    @Argument(help: "A data file, or a pipeline name.") var target: String
    @Flag(help: "Print the profile as JSON.") var json = false
    @Option(help: "Also write a self-contained HTML report (inline SVG charts, no network) to this file.") var html: String?

    func run() async throws {
        project.setUpLogging(quietOnTerminal: true)
        let report: ProfileReport
        do {
            if !FileManager.default.fileExists(atPath: target), FileManager.default.fileExists(atPath: project.config) {
                let config = try project.loadProject()
                guard let pipeline = config.pipeline(named: target) else {
                    Terminal.printError("sluice profile: \(target) is neither a file nor a pipeline of \(project.config) (pipelines: \(config.pipelines.map(\.name).joined(separator: ", ")))")
                    throw ExitCode(2)
                }
                report = try await Profiler.profile(pipeline: pipeline, project: config)
            } else {
                report = try await Profiler.profile(file: target)
            }
        } catch let e as SluiceError {
            Terminal.printError("sluice profile: \(e)")
            throw ExitCode(e.kind == .config ? 2 : 1)
        }
        if let html {
            do {
                try report.html.write(toFile: html, atomically: true, encoding: .utf8)
            } catch {
                Terminal.printError("sluice profile: cannot write \(html): \(error.localizedDescription)")
                throw ExitCode(1)
            }
        }
        print(json ? report.json : report.text)
    }
}
