import Foundation
import Sluice
import Testing
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The real `sluice serve` process over HTTP: answers, body limits, slow bodies, metrics parsed by
/// prometheus_client, graceful shutdown, kill -9 durability under load, and a PostgreSQL sink
/// outage under load.
@Suite struct ServeTests {
    /// A running `sluice serve`, its port, and its output files.
    final class Server {
        let dir: String
        let port: Int
        private(set) var process: Process

        init(dir: String, port: Int? = nil, arguments: [String] = []) throws {
            self.dir = dir
            self.port = try port ?? Self.freePort()
            process = Process()
            process = try start(arguments)
        }

        static func freePort() throws -> Int {
            let out = try shell("python3 -c 'import socket; s=socket.socket(); s.bind((\"127.0.0.1\",0)); print(s.getsockname()[1])'")
            return Int(out.trimmingCharacters(in: .whitespacesAndNewlines))!
        }

        private func start(_ arguments: [String]) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: SluiceProcess.binary)
            p.arguments = ["serve", "--port", String(port), "--no-access-log"] + arguments
            p.currentDirectoryURL = URL(fileURLWithPath: dir)
            FileManager.default.createFile(atPath: dir + "/serve.out", contents: nil)
            let log = FileHandle(forWritingAtPath: dir + "/serve.log") ?? {
                FileManager.default.createFile(atPath: dir + "/serve.log", contents: nil)
                return FileHandle(forWritingAtPath: dir + "/serve.log")!
            }()
            log.seekToEndOfFile()
            p.standardOutput = FileHandle(forWritingAtPath: dir + "/serve.out")
            p.standardError = log
            try p.run()
            // Ready when it answers /healthz.
            let deadline = Date().addingTimeInterval(30)
            while Date() < deadline {
                if p.isRunning == false { throw SluiceError(.internal, "sluice serve exited: \(self.log)") }
                if (try? Self.get(port, "/healthz").status) == 200 { return p }
                usleep(50_000)
            }
            throw SluiceError(.internal, "sluice serve did not start: \(self.log)")
        }

        func restart(_ arguments: [String] = []) throws { process = try start(arguments) }

        var log: String { (try? String(contentsOfFile: dir + "/serve.log", encoding: .utf8)) ?? "" }

        /// SIGTERM, then the exit status.
        func stop() -> Int32 {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
            return process.terminationStatus
        }

        func kill9() {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        static func get(_ port: Int, _ path: String) throws -> (status: Int, body: String, headers: [String: String]) {
            try request(port, "GET", path, body: nil, headers: [:])
        }

        func post(_ path: String, _ body: String, headers: [String: String] = [:]) throws -> (status: Int, body: String, headers: [String: String]) {
            try Self.request(port, "POST", path, body: Data(body.utf8), headers: headers)
        }

        /// One request over a fresh connection (curl), status, body and headers.
        static func request(_ port: Int, _ method: String, _ path: String, body: Data?, headers: [String: String]) throws
            -> (status: Int, body: String, headers: [String: String]) {
            let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("req-\(UUID().uuidString)").path
            defer { for s in ["", ".h", ".b"] { try? FileManager.default.removeItem(atPath: tmp + s) } }
            var command = "curl -s -m 10 -o '\(tmp).b' -D '\(tmp).h' -X \(method)"
            for (k, v) in headers { command += " -H '\(k): \(v)'" }
            if let body {
                try body.write(to: URL(fileURLWithPath: tmp))
                command += " --data-binary @'\(tmp)'"
            }
            command += " 'http://127.0.0.1:\(port)\(path)'"
            _ = try? shell(command)
            let head = (try? String(contentsOfFile: tmp + ".h", encoding: .utf8)) ?? ""
            let lines = head.split(separator: "\r\n")
            guard let statusLine = lines.last(where: { $0.hasPrefix("HTTP/") }), let status = Int(statusLine.split(separator: " ")[1]) else {
                throw SluiceError(.internal, "no answer from 127.0.0.1:\(port)\(path)")
            }
            var fields: [String: String] = [:]
            for l in lines where l.contains(":") {
                let parts = l.split(separator: ":", maxSplits: 1)
                fields[parts[0].lowercased()] = parts[1].trimmingCharacters(in: .whitespaces)
            }
            return (status, (try? String(contentsOfFile: tmp + ".b", encoding: .utf8)) ?? "", fields)
        }
    }

    static let schemaYAML = """
        schema:
          columns:
            order_id: { type: int64, nullable: false }
            email: { type: string }
            amount: { type: "decimal(12,2)" }
            status: { type: string }
        quality:
          - accepted_values: { field: status, values: [new, paid, shipped] }
        """

    static func project(sink: String = "sink: { type: sqlite, path: out.db, table: orders, mode: append }", source extra: String = "") throws -> String {
        let dir = try makeTemporaryDirectory("serve")
        try write("""
            version: 1
            pipelines:
              orders_hook:
                source:
                  type: webhook
                  path: /v1/orders
                  auth: { type: api_key, keys: ["good-key", "next-key"] }
                  max_body: 64KiB
                  body_timeout: 1s
            \(extra.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
            \(schemaYAML.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
                \(sink)
            """, to: dir + "/sluice.yaml")
        return dir
    }

    static let key = ["X-API-Key": "good-key"]

    /// Tests/load/webhook_load.py sending `total` records in batches to the server, its
    /// acknowledged batches in DIR/acked.txt; `finish` waits for it and returns its JSON summary.
    final class Load {
        let process = Process()
        private let summary = Pipe()

        init(_ server: Server, total: Int, batch: Int, connections: Int) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [SluiceProcess.packageRoot.appendingPathComponent("Tests/load/webhook_load.py").path, String(server.port),
                                 "/v1/orders", String(total), String(batch), String(connections), server.dir + "/acked.txt", "240",
                                 "--key=X-API-Key=good-key"]
            process.standardOutput = summary
            try process.run()
        }

        var isRunning: Bool { process.isRunning }

        func finish() -> String {
            process.waitUntilExit()
            return String(decoding: summary.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
    }

    /// Records in the batches the load generator saw acknowledged ("first last status" lines).
    static func acknowledgedRecords(_ path: String) throws -> Int {
        var n = 0
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: " ").compactMap { Int($0) }
            if fields.count >= 2 { n += fields[1] - fields[0] + 1 }
        }
        return n
    }

    @Test func answersEachKindOfRequest() throws {
        let dir = try Self.project()
        let server = try Server(dir: dir)
        let one = try server.post("/v1/orders", #"{"order_id": 1, "status": "new", "amount": "9.99"}"#, headers: Self.key.merging(["Content-Type": "application/json"]) { a, _ in a })
        #expect(one.status == 202, "\(one.body)")
        #expect(one.body.contains(#""accepted":1"#))
        let ndjson = "{\"order_id\": 2, \"status\": \"paid\"}\n{\"order_id\": \"three\"}\n{\"order_id\": 4, \"status\": \"lost\"}\n{\"order_id\": 5}\n"
        let partial = try server.post("/v1/orders", ndjson, headers: ["X-API-Key": "next-key", "Content-Type": "application/x-ndjson"])
        #expect(partial.status == 422)
        #expect(partial.body.contains(#""status":"partial","accepted":2,"rejected":2"#), "\(partial.body)")
        #expect(partial.body.contains(#""index":1,"line":2,"field":"order_id","rule":"type","expected":"int64","got":"\"three\"""#), "\(partial.body)")
        #expect(partial.body.contains(#""field":"status","rule":"accepted_values""#))
        #expect(try server.post("/v1/orders", #"{"order_id": 6}"#).status == 401)
        let forbidden = try server.post("/v1/orders", #"{"order_id": 6}"#, headers: ["X-API-Key": "wrong"])
        #expect(forbidden.status == 403)
        #expect(forbidden.body == #"{"error":"forbidden"}"#)
        #expect(try server.post("/v1/orders", "[{\"order_id\": 7}", headers: Self.key).status == 400)
        let big = "[" + (0..<2000).map { "{\"order_id\": \($0), \"email\": \"someone@example.com\"}" }.joined(separator: ",") + "]"
        let tooLarge = try server.post("/v1/orders", big, headers: Self.key)
        #expect(tooLarge.status == 413, "\(tooLarge.body)")
        #expect(try server.post("/v1/other", "{}", headers: Self.key).status == 404)
        #expect(try Server.get(server.port, "/readyz").status == 200)
        #expect(server.stop() == 0, "\(server.log)")
        // Delivered on the way out: the accepted records, nothing refused.
        #expect(try query(dir + "/out.db", "SELECT order_id FROM orders ORDER BY order_id") == [["1"], ["2"], ["5"]])
    }

    /// A body that trickles in is cut off after body_timeout, and the server goes on serving.
    @Test func slowBodyIsCutOff() throws {
        let dir = try Self.project()
        let server = try Server(dir: dir)
        let started = Date()
        // Promises 100 bytes, sends 10, then waits: the server closes the connection.
        let out = try shell("""
            python3 -c '
            import socket, time
            s = socket.create_connection(("127.0.0.1", \(server.port)))
            s.sendall(b"POST /v1/orders HTTP/1.1\\r\\nHost: x\\r\\nX-API-Key: good-key\\r\\nContent-Length: 100\\r\\n\\r\\n{\\"order_id")
            s.settimeout(10)
            try:
                data = s.recv(1000)
                print("closed" if not data else "answered " + data.decode(errors="replace").split("\\r\\n")[0])
            except Exception as e:
                print("error", e)
            '
            """)
        #expect(out.contains("closed") || out.contains("answered HTTP/1.1 408"), "\(out)")
        #expect(Date().timeIntervalSince(started) < 6)
        #expect(try Server.get(server.port, "/healthz").status == 200)
        #expect(server.stop() == 0)
    }

    /// `/metrics` in Prometheus text format, read by prometheus_client's parser during a run.
    @Test func metricsParseAsPrometheusText() throws {
        let dir = try Self.project()
        let server = try Server(dir: dir)
        for i in 1...20 {
            _ = try server.post("/v1/orders", "{\"order_id\": \(i), \"status\": \"\(i % 5 == 0 ? "bogus" : "new")\"}", headers: Self.key)
        }
        usleep(1_500_000)   // delivery commits, and the gauges refresh
        let metrics = try Server.get(server.port, "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.headers["content-type"]?.hasPrefix("text/plain") == true)
        try metrics.body.write(toFile: dir + "/metrics.txt", atomically: true, encoding: .utf8)
        let python = SluiceProcess.packageRoot.appendingPathComponent(".venv-test/bin/python").path
        let parsed = try shell("""
            '\(python)' -c '
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                out[family.name] = {"type": family.type, "samples": [[s.name, s.labels, s.value] for s in family.samples]}
            print(json.dumps(out))
            ' '\(dir)/metrics.txt'
            """)
        let families = try JSONSerialization.jsonObject(with: Data(parsed.utf8)) as! [String: [String: Any]]
        for name in ["sluice_records_processed", "sluice_pipeline_runs", "sluice_processing_duration_seconds", "sluice_batch_size",
                     "sluice_data_quality_score", "sluice_pipeline_lag_seconds", "sluice_spool_bytes", "sluice_http_requests",
                     "sluice_http_request_duration_seconds", "sluice_webhook_records"] {
            #expect(families[name] != nil, "missing \(name) in \(families.keys.sorted())")
        }
        #expect(families["sluice_processing_duration_seconds"]?["type"] as? String == "histogram")
        func sample(_ family: String, _ name: String, _ labels: [String: String]) -> Double? {
            let samples = families[family]?["samples"] as? [[Any]] ?? []
            for s in samples {
                guard s[0] as? String == name, let have = s[1] as? [String: String] else { continue }
                if labels.allSatisfy({ have[$0.key] == $0.value }) { return s[2] as? Double }
            }
            return nil
        }
        #expect(sample("sluice_records_processed", "sluice_records_processed_total", ["pipeline": "orders_hook", "status": "written"]) == 16)
        #expect(sample("sluice_webhook_records", "sluice_webhook_records_total", ["status": "rejected"]) == 4)
        #expect(sample("sluice_data_quality_score", "sluice_data_quality_score", ["rule": "accepted_values"]) == 0.8)
        #expect(sample("sluice_http_requests", "sluice_http_requests_total", ["path": "/v1/orders", "status": "202"]) == 16)
        #expect(server.stop() == 0)
    }

    /// Records acknowledged while the server is killed again and again: every one lands once.
    @Test func acknowledgedRecordsSurviveKill9() throws {
        let dir = try Self.project()
        let server = try Server(dir: dir)
        let total = 60_000
        let load = try Load(server, total: total, batch: 10, connections: 16)
        var rng = SeededRandom(seed: 8)
        var kills = 0
        while load.isRunning, kills < 6 {
            usleep(UInt32(Double.random(in: 0.2...0.6, using: &rng) * 1_000_000))
            guard load.isRunning else { break }
            server.kill9()
            kills += 1
            try server.restart()
        }
        let report = load.finish()
        #expect(kills >= 4, "only \(kills) kills before the load finished: \(report)")
        #expect(server.stop() == 0, "\(server.log.suffix(2000))")
        #expect(try Self.acknowledgedRecords(dir + "/acked.txt") == total, "\(report)")
        let counts = try query(dir + "/out.db", "SELECT count(*), count(DISTINCT order_id), min(order_id), max(order_id) FROM orders")
        #expect(counts == [[String(total), String(total), "1", String(total)]], "\(report)")
    }

    /// The schedule `sluice serve` runs pipelines on: minutes, hours, days and weekdays as cron has them.
    @Test func cronExpressionsMatchTheirMinutes() throws {
        func at(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }
        let quarter = try CronExpression("*/15 * * * *")
        #expect(quarter.matches(at("2026-12-02T10:45:00Z")))
        #expect(!quarter.matches(at("2026-12-02T10:46:00Z")))
        let weekdays = try CronExpression("30 6 * * mon-fri")
        #expect(weekdays.matches(at("2026-12-02T06:30:59Z")))      // a Wednesday
        #expect(!weekdays.matches(at("2026-12-05T06:30:00Z")))     // a Saturday
        // Both day fields restricted: either one fires (the 1st, or any Sunday).
        let either = try CronExpression("0 0 1 * sun")
        #expect(either.matches(at("2026-12-01T00:00:00Z")) && either.matches(at("2026-12-06T00:00:00Z")))
        #expect(!either.matches(at("2026-12-02T00:00:00Z")))
        // Read in the pipeline's time zone.
        let berlin = TimeZone(identifier: "Europe/Berlin")!
        #expect(try CronExpression("0 9 * * *").matches(at("2026-12-02T08:00:00Z"), in: berlin))
    }

    /// examples/webhook runs as its comment says.
    @Test func webhookExampleRuns() throws {
        let dir = try makeTemporaryDirectory("webhook-example")
        try copyDirectory(SluiceProcess.packageRoot.appendingPathComponent("examples/webhook").path, to: dir + "/ex")
        setenv("HOOK_KEY", "secret", 1)
        let server = try Server(dir: dir + "/ex")
        let body = try String(contentsOfFile: dir + "/ex/orders.ndjson", encoding: .utf8)
        let answer = try server.post("/v1/orders", body, headers: ["X-API-Key": "secret", "Content-Type": "application/x-ndjson"])
        #expect(answer.status == 422)
        #expect(answer.body.contains(#""status":"partial","accepted":4,"rejected":2"#), "\(answer.body)")
        #expect(server.stop() == 0)
        #expect(try query(dir + "/ex/orders.db", "SELECT order_id, status, amount, _received_by FROM orders ORDER BY order_id")
                == [["1", "paid", "19.9", "webhook"], ["2", "new", "5", "webhook"], ["5", "shipped", "7.25", "webhook"], ["6", "cancelled", "0.99", "webhook"]])
    }

    /// 600 random and hostile bodies over HTTP (binary noise, 60,000 nested brackets, 5,000-digit
    /// numbers, invalid UTF-8, NUL bytes, SQL in strings, 60 KB strings, mangled NDJSON): every one
    /// answered 202, 400, 413 or 422, none dropped, none a 5xx; the server still serves afterwards.
    @Test func hostileBodiesOverHTTPGetClearAnswers() throws {
        let dir = try Self.project()
        let server = try Server(dir: dir)
        let out = try shell("python3 '\(SluiceProcess.packageRoot.appendingPathComponent("Tests/load/webhook_fuzz.py").path)' \(server.port) /v1/orders good-key 600 11")
        let statuses = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Int] ?? [:]
        #expect(Set(statuses.keys).isSubset(of: ["202", "400", "413", "422"]), "\(out)")
        #expect(statuses.values.reduce(0, +) == 600, "\(out)")
        #expect(try Server.get(server.port, "/healthz").status == 200)
        #expect(server.stop() == 0, "\(server.log.suffix(1500))")
        // What was accepted was delivered, and only valid records.
        #expect(try query(dir + "/out.db", "SELECT count(*) FROM orders WHERE order_id IS NULL") == [["0"]])
    }
}
