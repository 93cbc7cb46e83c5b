import ArgumentParser
import Foundation
import Logging
import Sluice

@main
struct SluiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice",
        abstract: "Moves data from files, APIs, PostgreSQL and webhooks into SQLite, PostgreSQL and file lakes, incrementally, with no loss and no duplicates.",
        discussion: "Projects are described in sluice.yaml; start with `sluice init`.",
        version: sluiceVersion,
        subcommands: [InitCommand.self, ValidateCommand.self, RunCommand.self, ServeCommand.self, StateCommand.self, RunsCommand.self, InspectCommand.self, ProfileCommand.self, ReplayCommand.self, SchemaCommand.self, DoctorCommand.self]
    )
}

/// Options every project command shares.
struct ProjectOptions: ParsableArguments {
    @Option(name: [.short, .customLong("config")], help: "The project file.")
    var config = "sluice.yaml"

    @Option(help: "Log format on stderr: text or json.")
    var logFormat: LogFormat = .text

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String?

    enum LogFormat: String, ExpressibleByArgument { case text, json }

    func setUpLogging(quietOnTerminal: Bool = false) {
        let level = logLevel.flatMap(Logger.Level.init(rawValue:)) ?? (quietOnTerminal && Terminal.stderrIsTTY ? .warning : .info)
        let json = logFormat == .json
        LoggingSystem.bootstrap { label in
            var handler = StderrLogHandler(label: label, json: json)
            handler.logLevel = level
            return handler
        }
    }

    /// Loads the project; configuration problems print as FILE:LINE:COL and exit with code 2.
    func loadProject() throws -> ProjectConfig {
        do {
            return try ConfigLoader.load(file: config)
        } catch let e as ConfigErrors {
            Terminal.printError(e.description)
            throw ExitCode(2)
        }
    }
}

enum Terminal {
    static var stderrIsTTY: Bool { isatty(2) == 1 }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    static func stderr(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
