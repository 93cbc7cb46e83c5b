import Foundation
import Hummingbird
import Logging
import NIOCore

/// A small REST API that serves deterministic records in every pagination style Sluice reads and
/// misbehaves on demand: the http source is tested (and benchmarked) against it.
///
///     sluice-test-api [--port N] [--records N] [--token-ttl N]
///
/// Prints `listening on 127.0.0.1:PORT` once it accepts connections. See `TestAPI.routes` for the
/// endpoints and the query parameters that make it fail.
@main
struct TestAPIServer {
    static func main() async throws {
        var port = 0, records = 1000, tokenTTL = 1000
        var args = CommandLine.arguments.dropFirst()
        while let a = args.popFirst() {
            switch a {
            case "--port": port = Int(args.popFirst() ?? "") ?? 0
            case "--records": records = Int(args.popFirst() ?? "") ?? records
            case "--token-ttl": tokenTTL = Int(args.popFirst() ?? "") ?? tokenTTL
            default:
                FileHandle.standardError.write(Data("usage: sluice-test-api [--port N] [--records N] [--token-ttl N]\n".utf8))
                exit(2)
            }
        }
        let api = TestAPI(records: records, tokenTTL: tokenTTL)
        let router = Router()
        api.routes(router)
        var logger = Logger(label: "sluice-test-api")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "sluice-test-api"),
                              onServerRunning: { channel in
                                  // Unbuffered, so a test waiting for the line sees it at once.
                                  FileHandle.standardOutput.write(Data("listening on 127.0.0.1:\(channel.localAddress?.port ?? 0)\n".utf8))
                              }, logger: logger)
        try await app.runService()
    }
}
