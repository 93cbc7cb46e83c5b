import ArgumentParser
import Foundation
import Logging
import Sluice
import SluiceServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the project's webhook endpoints, /metrics, /healthz and /readyz; follow CDC streams; run scheduled pipelines.",
        discussion: """
            Webhook pipelines (source type: webhook) answer POST on their path: 202 once the records are on disk in the
            pipeline's spool, 422 with the invalid records listed, 401/403 for bad credentials, 413 past max_body,
            429/503 with Retry-After when the spool is full. The spool is delivered to the sink continuously.
            CDC pipelines without a schedule are followed; pipelines with a schedule run at its times.
            SIGTERM or SIGINT: stop taking requests, finish those in flight, deliver the spool (up to --drain-timeout), exit 0.
            """)

    @OptionGroup var project: ProjectOptions

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port; the chosen one is printed).")
    var port = 8080

    @Option(help: "Seconds SIGTERM waits for spooled records to reach their sinks.")
    var drainTimeout = 30.0

    @Flag(help: "Do not log a line per request.")
    var noAccessLog = false

    func run() async throws {
        project.setUpLogging()
        let registry = SluiceServer.bootstrapMetrics()
        let config = try project.loadProject()
        var options = ServeOptions()
        options.host = host
        options.port = port
        options.drainTimeout = drainTimeout
        options.accessLog = !noAccessLog
        let logger = Logger(label: "sluice")
        do {
            try await SluiceServer.run(project: config, options: options, registry: registry, logger: logger) { host, port in
                // Unbuffered, so whoever waits for it sees it at once.
                FileHandle.standardOutput.write(Data("sluice serve: listening on http://\(host):\(port)\n".utf8))
            }
        } catch let e as SluiceError {
            Terminal.printError(config.masker.mask(e.description))
            throw ExitCode(1)
        }
        FileHandle.standardOutput.write(Data("sluice serve: stopped\n".utf8))
    }
}
