import Foundation
import Sluice
import Testing

/// The project's own test API (`sluice-test-api`), started on a free port for one test.
final class TestAPI {
    let process: Process
    let base: String

    init(records: Int = 1000, tokenTTL: Int = 1000) throws {
        let p = Process()
        p.executableURL = SluiceProcess.packageRoot.appendingPathComponent(".build/debug/sluice-test-api")
        p.arguments = ["--records", "\(records)", "--token-ttl", "\(tokenTTL)"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        var line = Data()
        while !line.contains(10) {
            let chunk = out.fileHandleForReading.availableData
            guard !chunk.isEmpty else { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "listening on ") else {
            p.terminate()
            throw SluiceError(.internal, "sluice-test-api did not start: \(text)")
        }
        process = p
        base = "http://" + text[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit {
        process.terminate()
        process.waitUntilExit()
    }

    func stats() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(try shell("curl -s \(base)/_stats").utf8)) as! [String: Any]
    }
}

@Suite struct HTTPSourceTests {
    func project(_ body: String, in dir: String) throws {
        try write("version: 1\n" + body, to: dir + "/sluice.yaml")
    }

    func counts(_ db: String, _ table: String) throws -> [String] {
        try query(db, "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM \(table)")[0]
    }

    @Test func everyPaginationAndAuthStyleLoadsEachRecordOnce() throws {
        let api = try TestAPI(records: 1000)
        let dir = try makeTemporaryDirectory("http-styles")
        let u = api.base
        try project("""
            pipelines:
              total_pages:
                source: { type: http, url: "\(u)/items?per_page=50", records_path: data,
                          pagination: { type: page_number, total_pages_path: meta.total_pages } }
                sink: { type: sqlite, path: out.db, table: total_pages }
              has_more:
                source: { type: http, url: "\(u)/items?auth=bearer", records_path: data,
                          pagination: { type: page_number, size_param: per_page, page_size: 64, has_more_path: meta.has_more },
                          auth: { type: bearer, token: secret-token } }
                sink: { type: sqlite, path: out.db, table: has_more }
              empty_page:
                source: { type: http, url: "\(u)/items?per_page=300", records_path: data, pagination: { type: page_number } }
                sink: { type: sqlite, path: out.db, table: empty_page }
              offset:
                source: { type: http, url: "\(u)/items?style=offset&auth=basic", records_path: results,
                          pagination: { type: offset, page_size: 128, total_path: total }, auth: { type: basic, username: sluice, password: pa55 } }
                sink: { type: sqlite, path: out.db, table: offset }
              cursor:
                source: { type: http, url: "\(u)/items?style=cursor&auth=api_key", records_path: items,
                          pagination: { type: cursor, cursor: { cursor_path: next_cursor }, size_param: limit, page_size: 70 },
                          auth: { type: api_key, header: X-API-Key, value: k1 } }
                sink: { type: sqlite, path: out.db, table: cursor }
              link_header:
                source: { type: http, url: "\(u)/items?style=link_header&per_page=99&auth=oauth", records_path: "", pagination: { type: link_header },
                          auth: { type: oauth2_client_credentials, token_url: "\(u)/oauth/token", client_id: sluice, client_secret: s3cret } }
                sink: { type: sqlite, path: out.db, table: link_header }
              next_url:
                source: { type: http, url: "\(u)/items?style=next_url&per_page=300&auth=api_key", records_path: data,
                          pagination: { type: next_url, next_url: { next_url_path: links.next } }, auth: { type: api_key, query: api_key, value: k1 } }
                sink: { type: sqlite, path: out.db, table: next_url }
            """, in: dir)
        let run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        for table in ["total_pages", "has_more", "empty_page", "offset", "cursor", "link_header", "next_url"] {
            #expect(try counts(dir + "/out.db", table) == ["1000", "1000", "1", "1000"], "\(table)")
        }
        // Nested objects are kept as JSON; the API key in the query never reaches the output.
        #expect(try query(dir + "/out.db", "SELECT meta FROM next_url WHERE id = 7") == [["{\"source\":\"test-api\",\"n\":7}"]])
        #expect(!run.stderr.contains("k1") && !run.stdout.contains("k1"))
        let byPath = try api.stats()["by_path"] as! [String: Int]
        #expect(byPath["/oauth/token"] == 1, "one token, cached")
    }

    @Test func failuresAndRateLimitsLoadEveryRecordOnceWithinTheRate() throws {
        let api = try TestAPI(records: 2000)
        let dir = try makeTemporaryDirectory("http-flaky")
        // 30% of requests fail with 500/503; the server answers 429 + Retry-After past 25 req/s.
        try project("""
            pipelines:
              flaky:
                source: { type: http, url: "\(api.base)/items?per_page=40&fail_rate=0.3&rate=25", records_path: data,
                          pagination: { type: page_number, total_pages_path: meta.total_pages },
                          rate_limit: { requests_per_second: 20, burst: 2 } }
                schema: { columns: { id: { type: int64, primary_key: true } } }
                retry: { attempts: 12, initial: 20ms, max: 200ms }
                sink: { type: sqlite, path: out.db, table: items, mode: merge }
            """, in: dir)
        let run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try counts(dir + "/out.db", "items") == ["2000", "2000", "1", "2000"])
        let stats = try api.stats()
        #expect((stats["max_per_second"] as! Int) <= 22, "the server saw \(stats["max_per_second"]!) requests in one second")
        #expect((stats["requests"] as! Int) > 50, "failed requests were retried")
        #expect(run.stderr.contains("Request failed, retrying"), "retries are logged")
    }

    @Test func badResponsesGiveClearErrorsNamingTheRequest() throws {
        let api = try TestAPI(records: 300)
        let dir = try makeTemporaryDirectory("http-bad")
        let u = api.base
        try project("""
            pipelines:
              not_found:
                source: { type: http, url: "\(u)/status/404", records_path: data }
                sink: { type: sqlite, path: out.db, table: a }
              unauthorized:
                source: { type: http, url: "\(u)/items?auth=bearer", records_path: data, auth: { type: bearer, token: wrong } }
                sink: { type: sqlite, path: out.db, table: b }
              malformed:
                source: { type: http, url: "\(u)/items?per_page=100&malformed_page=2", records_path: data, pagination: { type: page_number } }
                sink: { type: sqlite, path: out.db, table: c }
              looping:
                source: { type: http, url: "\(u)/items?style=cursor&limit=10&loop=1", records_path: items,
                          pagination: { type: cursor, cursor: { cursor_path: next_cursor } } }
                sink: { type: sqlite, path: out.db, table: d }
              dropped:
                source: { type: http, url: "\(u)/items?per_page=100&drop_page=2", records_path: data, pagination: { type: page_number } }
                retry: { attempts: 2, initial: 10ms, max: 10ms }
                sink: { type: sqlite, path: out.db, table: e }
              html:
                source: { type: http, url: "\(u)/html", records_path: data }
                sink: { type: sqlite, path: out.db, table: g }
              huge:
                source: { type: http, url: "\(u)/items?per_page=5000&total=5000", records_path: data, max_response: 256KiB }
                sink: { type: sqlite, path: out.db, table: h }
              expiring:
                source: { type: http, url: "\(u)/items?per_page=20&auth=oauth", records_path: data, pagination: { type: page_number },
                          auth: { type: oauth2_client_credentials, token_url: "\(u)/oauth/token", client_id: sluice, client_secret: s3cret } }
                sink: { type: sqlite, path: out.db, table: f }
            """, in: dir)
        let run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(run.status == 1)
        let summary = try RunSummary.parse(run.stdout)
        func error(_ name: String) -> String { summary.pipeline(name)?.error ?? "" }
        #expect(error("not_found").contains("HTTP 404") && error("not_found").contains("/status/404"), "\(error("not_found"))")
        #expect(error("unauthorized").contains("HTTP 401") && error("unauthorized").contains("source.auth"), "\(error("unauthorized"))")
        #expect(error("malformed").contains("page 2"), "\(error("malformed"))")
        #expect(error("looping").contains("loops"), "\(error("looping"))")
        #expect(summary.pipeline("dropped")?.status == "failed", "a body cut off mid-page fails its unit")
        #expect(error("html").contains("/html"), "an HTML page instead of JSON names the request: \(error("html"))")
        #expect(error("huge").contains("larger than 262144 bytes") && error("huge").contains("page_size"), "\(error("huge"))")
        // 404 and 401 are not retried.
        let byPath = try api.stats()["by_path"] as! [String: Int]
        #expect(byPath["/status/404"] == 1)
        // A token that stops working is replaced, and every page loads.
        #expect(summary.pipeline("expiring")?.status == "succeeded", "\(error("expiring"))")
        #expect(try counts(dir + "/out.db", "f") == ["300", "300", "1", "300"])
    }

    @Test func incrementalCursorIsSentBackAndKillNineLeavesEachRecordOnce() throws {
        let api = try TestAPI(records: 3000)
        let dir = try makeTemporaryDirectory("http-incr")
        func write(total: Int, slow: Int) throws {
            try project("""
                pipelines:
                  items:
                    source: { type: http, url: "\(api.base)/items?per_page=25&total=\(total)&slow_ms=\(slow)", records_path: data,
                              pagination: { type: page_number, total_pages_path: meta.total_pages },
                              incremental: { cursor_field: updated_at, param: since } }
                    schema: { columns: { id: { type: int64, primary_key: true } } }
                    sink: { type: sqlite, path: out.db, table: items, mode: merge }
                """, in: dir)
        }
        // A long load (120 pages, 15 ms each) killed at random moments, then run to the end.
        try write(total: 3000, slow: 15)
        var rng = SeededRandom(seed: 0x4177)
        var killed = 0
        for _ in 0..<8 {
            let process = try SluiceProcess.start(["run"], in: dir)
            usleep(UInt32(Double.random(in: 0.2...1.5, using: &rng) * 1_000_000))
            if process.isRunning { kill(process.processIdentifier, SIGKILL); killed += 1 }
            process.waitUntilExit()
        }
        #expect(killed >= 5)
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        #expect(try counts(dir + "/out.db", "items") == ["3000", "3000", "1", "3000"])
        // The saved cursor goes out as `since`: nothing new, nothing read.
        var run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(try RunSummary.parse(run.stdout).pipeline("items")?.records_read == 0)
        try write(total: 3300, slow: 0)
        run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(try RunSummary.parse(run.stdout).pipeline("items")?.records_read == 300, "\(run.stderr)")
        #expect(try counts(dir + "/out.db", "items") == ["3300", "3300", "1", "3300"])
    }
}
