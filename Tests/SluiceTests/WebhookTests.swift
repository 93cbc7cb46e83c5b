import Foundation
import Sluice
import SluiceServer
import Testing

/// Webhook ingestion in process: the checks a pushed body goes through, authentication, the
/// endpoint's answers, the spool on disk, delivery from the spool into a sink, and a fuzzed
/// validator.
@Suite struct WebhookTests {
    // MARK: Helpers

    static let columns = "columns: { id: { type: int64, nullable: false }, name: { type: string }, amount: { type: double } }"

    /// A one-pipeline project with a webhook source; `source` is appended inside the source's
    /// flow mapping (", on_invalid: reject_all"), `schema` is the schema mapping's content.
    static func yaml(source: String = "", schema: String = columns, quality: String = "") -> String {
        var text = """
            version: 1
            pipelines:
              hook:
                source: { type: webhook, path: /v1/events\(source) }
                schema: { \(schema) }

            """
        if !quality.isEmpty { text += "    quality: [\(quality)]\n" }
        text += "    sink: { type: sqlite, path: out.db, table: events, mode: append }\n"
        return text
    }

    struct Setup {
        var project: ProjectConfig
        var pipeline: PipelineConfig
        var webhook: WebhookSourceConfig
    }

    static func setup(source: String = "", schema: String = columns, quality: String = "",
                      file: String = "/nonexistent/sluice.yaml") throws -> Setup {
        let project = try ConfigLoader.parse(yaml(source: source, schema: schema, quality: quality), file: file)
        let pipeline = try #require(project.pipeline(named: "hook"))
        guard case .webhook(let webhook) = pipeline.source else { throw SluiceError(.config, "not a webhook pipeline") }
        return Setup(project: project, pipeline: pipeline, webhook: webhook)
    }

    static func intake(source: String = "", schema: String = columns, quality: String = "") throws -> WebhookIntake {
        let s = try setup(source: source, schema: schema, quality: quality)
        return WebhookIntake(pipeline: s.pipeline, config: s.webhook)
    }

    /// The ways several records can be sent.
    enum Shape: String, CaseIterable, Sendable {
        case array, ndjson
        func body(_ records: [String]) -> (body: [UInt8], contentType: String) {
            switch self {
            case .array: (Array(("[" + records.joined(separator: ",") + "]").utf8), "application/json")
            case .ndjson: (Array((records.joined(separator: "\n") + "\n").utf8), "application/x-ndjson")
            }
        }
        /// The `line` a problem of the record at `index` carries.
        func line(_ index: Int) -> Int? { self == .ndjson ? index + 1 : nil }
    }

    /// Every shape for these records, plus a bare object when there is one record.
    static func shapes(_ records: [String]) -> [(name: String, body: [UInt8], contentType: String, lines: Bool)] {
        var out = Shape.allCases.map { s in
            let b = s.body(records)
            return (s.rawValue, b.body, b.contentType, s == .ndjson)
        }
        if records.count == 1 { out.append(("object", Array(records[0].utf8), "application/json", false)) }
        return out
    }

    static func headers(_ h: [String: String]) -> @Sendable (String) -> String? {
        let lower = Dictionary(h.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        return { lower[$0.lowercased()] }
    }

    static func json(_ bytes: [UInt8]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any], "\(String(decoding: bytes, as: UTF8.self))")
    }

    static func errors(_ bytes: [UInt8]) throws -> [[String: Any]] {
        try json(bytes)["errors"] as? [[String: Any]] ?? []
    }

    static func segmentPath(_ dir: String, _ number: Int) -> String {
        let digits = String(number)
        return dir + "/" + String(repeating: "0", count: 20 - digits.count) + digits + ".seg"
    }

    static func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? -1
    }

    static func segmentFiles(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".seg") }.sorted()
    }

    static func frame(_ body: String, records: Int = 1, key: String? = nil, format: SpoolFrame.BodyFormat = .ndjson) -> SpoolFrame {
        let bytes = Array(body.utf8)
        return SpoolFrame(format: format, receivedAt: Temporal.nowMicros(), recordCount: records, idempotencyKey: key,
                          bodyDigest: WebhookIntake.digest(bytes), responseStatus: 202,
                          responseBody: Array("{\"status\":\"accepted\",\"accepted\":\(records),\"rejected\":0}".utf8),
                          rejectedOrigins: [], body: bytes)
    }

    /// Opens a spool on a directory a closed spool used. The closed spool's writer thread lets go
    /// of it (and so of its lock) just after `close()` returns, hence the short wait.
    static func reopen(_ dir: String, maxBytes: Int64 = 1 << 30, segmentBytes: Int64 = 64 << 20) throws -> Spool {
        for _ in 0..<400 {
            if let s = try? Spool(directory: dir, maxBytes: maxBytes, segmentBytes: segmentBytes) { return s }
            usleep(5_000)
        }
        return try Spool(directory: dir, maxBytes: maxBytes, segmentBytes: segmentBytes)
    }

    /// Everything from the oldest segment on.
    static func readAll(_ spool: Spool) throws -> (frames: [SpoolFrame], next: SpoolPosition) {
        try spool.read(from: spool.resume(after: nil), maxBytes: .max)
    }

    static func overwrite(_ path: String, at offset: Int64, with bytes: [UInt8]) throws {
        let h = try #require(FileHandle(forUpdatingAtPath: path))
        defer { try? h.close() }
        try h.seek(toOffset: UInt64(offset))
        try h.write(contentsOf: Data(bytes))
    }

    static func appendBytes(_ path: String, _ bytes: [UInt8]) throws {
        let h = try #require(FileHandle(forUpdatingAtPath: path))
        defer { try? h.close() }
        try h.seekToEnd()
        try h.write(contentsOf: Data(bytes))
    }

    static func byte(_ path: String, at offset: Int64) throws -> UInt8 {
        let data = try #require(FileManager.default.contents(atPath: path))
        return data[Int(offset)]
    }

    // MARK: Configuration

    @Test func webhookSourceIsReadFromTheProjectFile() throws {
        let s = try Self.setup(source: """
            , max_body: 256KiB, max_concurrency: 8, body_timeout: 2s, on_invalid: reject_all, \
            auth: { type: api_key, header: X-Hook-Key, keys: ["k1", "", "k2"] }, \
            spool: { path: spool/here, max_bytes: 10MiB, max_records: 500, segment_bytes: 1KiB }, \
            idempotency: { header: X-Request-Id, retention: 1h }
            """)
        let w = s.webhook
        #expect(w.path == "/v1/events")
        #expect(w.maxBody == 256 << 10)
        #expect(w.maxConcurrency == 8)
        #expect(w.bodyTimeout == 2)
        #expect(w.onInvalid == .reject_all)
        // The empty key (an unset `${VAR:-}`) is dropped so an empty header can never match.
        #expect(w.auth == .apiKey(header: "X-Hook-Key", keys: ["k1", "k2"]))
        #expect(w.spoolPath == "spool/here")
        #expect(w.spoolMaxBytes == 10 << 20)
        #expect(w.spoolMaxRecords == 500)
        #expect(w.segmentBytes == 64 << 10, "segment_bytes is at least 64 KiB")
        #expect(w.idempotencyHeader == "X-Request-Id")
        #expect(w.idempotencyRetention == 3600)

        let h = try Self.setup(source: ", auth: { type: hmac_sha256, secret: s3cret }").webhook
        #expect(h.auth == .hmacSHA256(secrets: ["s3cret"], signatureHeader: "X-Signature", timestampHeader: "X-Timestamp", tolerance: 300))
        #expect(h.onInvalid == .accept_valid)
        #expect(h.idempotencyHeader == "Idempotency-Key")
        #expect(h.spoolMaxBytes == 1 << 30)
    }

    @Test func badWebhookSourcesAreProblems() {
        func problems(_ source: String) -> [String] {
            do {
                _ = try ConfigLoader.parse(Self.yaml().replacingOccurrences(of: "path: /v1/events", with: source), file: "p.yaml")
                return []
            } catch let e as ConfigErrors {
                return e.problems.map(\.description)
            } catch {
                return ["\(error)"]
            }
        }
        #expect(problems("path: /healthz").contains { $0.contains("served by sluice serve itself") })
        #expect(problems("path: v1/events").contains { $0.contains("is not a URL path") })
        #expect(problems("path: /a, auth: { type: api_key, keys: [\"\"] }").contains { $0.contains("at least one non-empty key") })
        #expect(problems("path: /a, auth: { type: hmac }").contains { $0.contains("unknown webhook auth type 'hmac'") })
        #expect(problems("path: /a, on_invalid: drop").count == 1)
        #expect(problems("path: /a").isEmpty)
    }

    // MARK: Intake validation

    @Test func wrongTypeIsRefused() throws {
        let intake = try Self.intake()
        for s in Self.shapes([#"{"id":1,"name":"a"}"#, #"{"id":"x","name":"b"}"#, #"{"id":3}"#]) {
            let v = try intake.check(s.body, contentType: s.contentType)
            #expect(v.records == 3, "\(s.name)")
            #expect(v.accepted == 2, "\(s.name)")
            #expect(v.rejectedOrigins == [2], "\(s.name)")
            let p = try #require(v.problems.first, "\(s.name)")
            #expect(v.problems.count == 1)
            #expect(p.index == 1 && p.line == (s.lines ? 2 : nil), "\(s.name): \(p)")
            #expect(p.field == "id" && p.rule == "type" && p.expected == "int64" && p.got == "\"x\"", "\(s.name): \(p)")
            #expect(!p.message.isEmpty)
        }
        for s in Self.shapes([#"{"id":"x"}"#]) {
            let v = try intake.check(s.body, contentType: s.contentType)
            #expect(v.records == 1 && v.accepted == 0, "\(s.name)")
            #expect(v.problems.map(\.rule) == ["type"], "\(s.name)")
            #expect(v.problems.first?.index == 0 && v.problems.first?.got == "\"x\"", "\(s.name)")
        }
        // A double column refuses text too, and says what it expected.
        let amount = try intake.check(Array(#"{"id":1,"amount":"lots"}"#.utf8), contentType: "application/json")
        #expect(amount.problems.map { [$0.field, $0.rule, $0.expected, $0.got] } == [["amount", "type", "double", "\"lots\""]])
    }

    @Test func requiredFieldMissingOrNullIsRefused() throws {
        let intake = try Self.intake()
        // Absent from every record.
        for s in Self.shapes([#"{"name":"a"}"#, #"{"name":"b"}"#]) {
            let v = try intake.check(s.body, contentType: s.contentType)
            #expect(v.records == 2 && v.accepted == 0, "\(s.name)")
            #expect(v.problems.map(\.index) == [0, 1], "\(s.name)")
            #expect(v.problems.map(\.line) == (s.lines ? [1, 2] : [nil, nil]), "\(s.name)")
            #expect(v.problems.allSatisfy { $0.field == "id" && $0.rule == "required" && $0.expected == "int64" && $0.got == nil }, "\(v.problems)")
        }
        for s in Self.shapes([#"{"name":"a"}"#]) {
            let v = try intake.check(s.body, contentType: s.contentType)
            #expect(v.accepted == 0 && v.problems.map(\.rule) == ["required"], "\(s.name)")
        }
        // Absent from some records only, and present but null.
        for s in Self.shapes([#"{"id":1}"#, #"{"name":"b"}"#, #"{"id":null,"name":"c"}"#, #"{"id":4}"#]) {
            let v = try intake.check(s.body, contentType: s.contentType)
            #expect(v.records == 4 && v.accepted == 2, "\(s.name)")
            #expect(v.rejectedOrigins == [2, 3], "\(s.name)")
            #expect(v.problems.map(\.index) == [1, 2], "\(s.name)")
            #expect(v.problems.allSatisfy { $0.field == "id" && $0.rule == "required" && $0.expected == "int64" }, "\(s.name): \(v.problems)")
            #expect(v.problems.last?.got == "null" || v.problems.last?.got == nil, "\(v.problems)")
        }
        for s in Self.shapes([#"{"id":null}"#]) {
            let v = try intake.check(s.body, contentType: s.contentType)
            #expect(v.accepted == 0 && v.problems.map(\.rule) == ["required"] && v.problems.first?.field == "id", "\(s.name)")
        }
        // A nullable column may be missing or null.
        let fine = try intake.check(Array(#"[{"id":1,"name":null},{"id":2}]"#.utf8), contentType: "application/json")
        #expect(fine.accepted == 2 && fine.problems.isEmpty)
    }

    @Test(arguments: [Evolution.freeze, .discard_row])
    func unknownFieldIsRefusedWhenTheSchemaIsClosed(_ evolution: Evolution) throws {
        let intake = try Self.intake(schema: Self.columns + ", evolution: \(evolution)")
        for s in Self.shapes([#"{"id":1,"extra":"z"}"#, #"{"id":2,"extra":null}"#, #"{"id":3}"#, #"{"id":4,"other":5}"#]) {
            let v = try intake.check(s.body, contentType: s.contentType)
            #expect(v.records == 4 && v.accepted == 2, "\(s.name)")
            #expect(v.rejectedOrigins == [1, 4], "\(s.name)")
            #expect(v.problems.map(\.index) == [0, 3], "\(s.name)")
            #expect(v.problems.map(\.field) == ["extra", "other"], "\(s.name)")
            #expect(v.problems.allSatisfy { $0.rule == "unknown_field" && $0.expected == "only the declared fields" }, "\(v.problems)")
            #expect(v.problems.first?.got?.contains("z") == true, "\(v.problems)")
            #expect(v.problems.first?.message.contains("\(evolution)") == true, "\(v.problems)")
            #expect(v.problems.map(\.line) == (s.lines ? [1, 4] : [nil, nil]), "\(s.name)")
        }
        let one = try intake.check(Array(#"{"id":1,"extra":"z"}"#.utf8), contentType: "application/json")
        #expect(one.accepted == 0 && one.problems.map(\.rule) == ["unknown_field"])
    }

    @Test(arguments: [Evolution.evolve, .discard_column])
    func unknownFieldIsAcceptedWhenTheSchemaIsOpen(_ evolution: Evolution) throws {
        let intake = try Self.intake(schema: Self.columns + ", evolution: \(evolution)")
        for s in Self.shapes([#"{"id":1,"extra":"z"}"#, #"{"id":2,"other":[1,2]}"#]) {
            let v = try intake.check(s.body, contentType: s.contentType)
            #expect(v.records == 2 && v.accepted == 2 && v.problems.isEmpty && v.rejectedOrigins.isEmpty, "\(s.name): \(v.problems)")
        }
    }

    static let rules = """
        { not_null: { fields: [name], severity: SEV } }, { range: { field: amount, min: 0, max: 100, severity: SEV } }, \
        { pattern: { field: name, regex: "^[a-z]+$", severity: SEV } }, { accepted_values: { field: status, values: [new, paid], severity: SEV } }, \
        { expression: { name: positive_id, check: "id > 0", severity: SEV } }
        """
    static let qualitySchema = "columns: { id: { type: int64, nullable: false }, name: { type: string }, amount: { type: double }, status: { type: string } }"
    static let qualityRecords = [
        #"{"id":1,"name":"ann","amount":5,"status":"new"}"#,
        #"{"id":2,"name":null,"amount":5,"status":"new"}"#,
        #"{"id":3,"name":"bob","amount":500,"status":"paid"}"#,
        #"{"id":4,"name":"Bob9","amount":1,"status":"paid"}"#,
        #"{"id":5,"name":"cy","amount":1,"status":"gone"}"#,
        #"{"id":-6,"name":"dee","amount":1,"status":"new"}"#,
        #"{"id":7,"name":"eve","amount":-0.5,"status":"paid"}"#,
    ]

    @Test func qualityRulesWithSeverityErrorAreRefused() throws {
        let intake = try Self.intake(schema: Self.qualitySchema, quality: Self.rules.replacingOccurrences(of: "SEV", with: "error"))
        for s in Self.shapes(Self.qualityRecords) {
            let v = try intake.check(s.body, contentType: s.contentType)
            #expect(v.records == 7 && v.accepted == 1, "\(s.name): \(v.problems)")
            #expect(v.rejectedOrigins == [2, 3, 4, 5, 6, 7], "\(s.name)")
            let found = v.problems.map { "\($0.index) \($0.field ?? "-") \($0.rule) \($0.expected) \($0.got ?? "-")" }
            #expect(found == [
                "1 name not_null a value (not null) null",
                "2 amount range between 0 and 100 500.0",
                "3 name pattern text matching ^[a-z]+$ \"Bob9\"",
                "4 status accepted_values one of new, paid \"gone\"",
                "5 - positive_id id > 0 to be true -",
                "6 amount range between 0 and 100 -0.5",
            ], "\(s.name)")
            #expect(v.problems.map(\.line) == (s.lines ? [2, 3, 4, 5, 6, 7] : Array(repeating: nil, count: 6)), "\(s.name)")
        }
    }

    @Test func qualityRulesWithSeverityWarnDoNotRefuse() throws {
        let intake = try Self.intake(schema: Self.qualitySchema, quality: Self.rules.replacingOccurrences(of: "SEV", with: "warn"))
        for s in Self.shapes(Self.qualityRecords) {
            let v = try intake.check(s.body, contentType: s.contentType)
            #expect(v.records == 7 && v.accepted == 7 && v.problems.isEmpty, "\(s.name): \(v.problems)")
        }
        // Run-level and `unique` rules are for delivery: they never refuse at the door.
        let runLevel = try Self.intake(quality: "{ unique: [id] }, { row_count: { min: 100 } }, { completeness: { field: name, min_ratio: 1 } }")
        let v = try runLevel.check(Array(#"[{"id":1},{"id":1}]"#.utf8), contentType: "application/json")
        #expect(v.accepted == 2 && v.problems.isEmpty)
    }

    @Test func ndjsonBadLinesAreRefusedWithTheirLines() throws {
        let intake = try Self.intake()
        let body = "{\"id\":1}\nnot json\n[1,2]\n\n{\"id\":4}\r\n\"text\"\n   \n{\"id\":\"seven\"}\n{\"id\":8}"
        let v = try intake.check(Array(body.utf8), contentType: "application/x-ndjson")
        #expect(v.records == 7, "blank lines are no records")
        #expect(v.accepted == 3)
        #expect(v.rejectedOrigins == [2, 3, 6, 8])
        #expect(v.problems.map(\.line) == [2, 3, 6, 8])
        #expect(v.problems.map(\.index) == [1, 2, 4, 5])
        #expect(v.problems.map(\.rule) == ["json", "json", "json", "type"])
        #expect(v.problems.prefix(3).allSatisfy { $0.expected == "a JSON object" && $0.field == nil }, "\(v.problems)")
        #expect(v.problems[0].got?.contains("not json") == true, "\(v.problems[0])")
        #expect(v.format == .ndjson)
        // Several lines and no content type are NDJSON too.
        let sniffed = try intake.check(Array("{\"id\":1}\n{\"id\":2}\n".utf8), contentType: nil)
        #expect(sniffed.format == .ndjson && sniffed.accepted == 2)
    }

    /// Including content after a complete document, such as NDJSON sent as `application/json`:
    /// taking the first record and dropping the rest unmentioned would lose them.
    @Test(arguments: [#"[{"a":1}"#, #"{"id":"#, "hello", #"[{"id":1}] trailing"#, #"{"id":1}}"#, #"{"id":1}{"id":2}"#,
                      "{\"id\":1}\n{\"id\":2}\n", #"[{"id":1}],[{"id":2}]"#, ""])
    func bodyThatIsNotJSONIsABodyError(_ body: String) throws {
        let intake = try Self.intake()
        let e = #expect(throws: WebhookIntake.BodyError.self) { try intake.check(Array(body.utf8), contentType: "application/json") }
        #expect(e?.message.isEmpty == false)
    }

    @Test func emptyArrayIsNoRecords() throws {
        let intake = try Self.intake()
        for body in ["[]", " [ ] ", "[\n]"] {
            let v = try intake.check(Array(body.utf8), contentType: "application/json")
            #expect(v.records == 0 && v.accepted == 0 && v.problems.isEmpty, "\(body)")
        }
        let lines = try intake.check(Array("\n\n".utf8), contentType: "application/x-ndjson")
        #expect(lines.records == 0 && lines.accepted == 0)
        // Array elements that are not objects are refused one by one.
        let mixed = try intake.check(Array(#"[{"id":1}, 7, "x", null, {"id":2}]"#.utf8), contentType: "application/json")
        #expect(mixed.records == 5 && mixed.accepted == 2)
        #expect(mixed.problems.map(\.index) == [1, 2, 3] && mixed.problems.allSatisfy { $0.rule == "json" && $0.line == nil }, "\(mixed.problems)")
    }

    // MARK: Authentication

    static func check(_ auth: WebhookAuth, _ h: [String: String], body: String = "{}", now: Double = 1_800_000_000) -> WebhookAuth.Decision {
        auth.check(header: headers(h), body: Array(body.utf8), now: now)
    }

    @Test func apiKeys() {
        let auth = WebhookAuth(.apiKey(header: "X-API-Key", keys: ["first-key", "second-key"]))
        #expect(Self.check(auth, ["X-API-Key": "first-key"]) == .allowed)
        #expect(Self.check(auth, ["x-api-key": "second-key"]) == .allowed, "header names are case-insensitive")
        #expect(Self.check(auth, ["X-API-Key": "first-key "]) == .forbidden)
        #expect(Self.check(auth, ["X-API-Key": "FIRST-KEY"]) == .forbidden)
        #expect(Self.check(auth, ["X-API-Key": "first"]) == .forbidden)
        #expect(Self.check(auth, ["X-API-Key": "nope"]) == .forbidden)
        #expect(Self.check(auth, ["X-API-Key": ""]) == .unauthorized)
        #expect(Self.check(auth, [:]) == .unauthorized)
        #expect(Self.check(auth, ["Authorization": "first-key"]) == .unauthorized)
        #expect(Self.check(WebhookAuth(nil), [:]) == .allowed)
    }

    static let hmac = WebhookSourceConfig.Auth.hmacSHA256(secrets: ["old-secret", "new-secret"], signatureHeader: "X-Signature",
                                                          timestampHeader: "X-Timestamp", tolerance: 300)

    static func signed(_ body: String, at stamp: Double = 1_800_000_000, secret: String = "new-secret", prefix: String = "") -> [String: String] {
        let ts = String(Int(stamp))
        return ["X-Signature": prefix + WebhookAuth.sign(Array(body.utf8), timestamp: ts, secret: secret), "X-Timestamp": ts]
    }

    @Test func hmacSignatures() {
        let now = 1_800_000_000.0
        let body = #"{"id":1}"#
        #expect(Self.check(WebhookAuth(Self.hmac), Self.signed(body), body: body, now: now) == .allowed)
        #expect(Self.check(WebhookAuth(Self.hmac), Self.signed(body, secret: "old-secret"), body: body, now: now) == .allowed)
        #expect(Self.check(WebhookAuth(Self.hmac), Self.signed(body, prefix: "sha256="), body: body, now: now) == .allowed)
        var upper = Self.signed(body)
        upper["X-Signature"] = upper["X-Signature"]!.uppercased()
        #expect(Self.check(WebhookAuth(Self.hmac), upper, body: body, now: now) == .allowed)

        // Several signatures, one right (a sender rotating its secret).
        var several = Self.signed(body)
        let wrong = WebhookAuth.sign(Array(body.utf8), timestamp: "1800000000", secret: "someone-else")
        several["X-Signature"] = "sha256=\(wrong), sha256=\(several["X-Signature"]!),zz"
        #expect(Self.check(WebhookAuth(Self.hmac), several, body: body, now: now) == .allowed)

        #expect(Self.check(WebhookAuth(Self.hmac), Self.signed(body, secret: "someone-else"), body: body, now: now) == .forbidden)
        var garbage = Self.signed(body)
        garbage["X-Signature"] = "sha256=not-hex"
        #expect(Self.check(WebhookAuth(Self.hmac), garbage, body: body, now: now) == .forbidden)
        var short = Self.signed(body)
        short["X-Signature"] = String(short["X-Signature"]!.dropLast(2))
        #expect(Self.check(WebhookAuth(Self.hmac), short, body: body, now: now) == .forbidden)
        var badStamp = Self.signed(body)
        badStamp["X-Timestamp"] = "yesterday"
        #expect(Self.check(WebhookAuth(Self.hmac), badStamp, body: body, now: now) == .forbidden)

        // Missing headers.
        var noSignature = Self.signed(body)
        noSignature["X-Signature"] = nil
        #expect(Self.check(WebhookAuth(Self.hmac), noSignature, body: body, now: now) == .unauthorized)
        var noStamp = Self.signed(body)
        noStamp["X-Timestamp"] = nil
        #expect(Self.check(WebhookAuth(Self.hmac), noStamp, body: body, now: now) == .unauthorized)
        #expect(Self.check(WebhookAuth(Self.hmac), ["X-Signature": "", "X-Timestamp": ""], body: body, now: now) == .unauthorized)
        #expect(Self.check(WebhookAuth(Self.hmac), [:], body: body, now: now) == .unauthorized)

        // Body tampering: the signature was for another body.
        #expect(Self.check(WebhookAuth(Self.hmac), Self.signed(body), body: #"{"id":2}"#, now: now) == .forbidden)
        #expect(Self.check(WebhookAuth(Self.hmac), Self.signed(body), body: body + " ", now: now) == .forbidden)
        // A changed timestamp invalidates the signature.
        var moved = Self.signed(body)
        moved["X-Timestamp"] = "1800000001"
        #expect(Self.check(WebhookAuth(Self.hmac), moved, body: body, now: now) == .forbidden)
    }

    @Test func hmacTimestampTolerance() {
        let now = 1_800_000_000.0
        let body = "[]"
        for (offset, expected) in [(-299.0, WebhookAuth.Decision.allowed), (299, .allowed), (-300, .allowed), (300, .allowed),
                                   (-301, .forbidden), (301, .forbidden), (-86_400, .forbidden), (86_400, .forbidden)] {
            #expect(Self.check(WebhookAuth(Self.hmac), Self.signed(body, at: now + offset), body: body, now: now) == expected, "\(offset)")
        }
    }

    @Test func hmacReplayIsRefused() {
        let auth = WebhookAuth(Self.hmac)
        let now = 1_800_000_000.0
        let body = #"{"id":1}"#
        let h = Self.signed(body)
        #expect(Self.check(auth, h, body: body, now: now) == .allowed)
        #expect(Self.check(auth, h, body: body, now: now + 1) == .forbidden)
        // The same signature with another prefix or case is the same request.
        var prefixed = h
        prefixed["X-Signature"] = "sha256=" + h["X-Signature"]!.uppercased()
        #expect(Self.check(auth, prefixed, body: body, now: now + 2) == .forbidden)
        // A new timestamp is a new request.
        #expect(Self.check(auth, Self.signed(body, at: now + 5), body: body, now: now + 5) == .allowed)
        // Another body signed at the same second is too.
        #expect(Self.check(auth, Self.signed("[]"), body: "[]", now: now) == .allowed)
    }

    // MARK: Endpoint

    struct Hook {
        var endpoint: WebhookEndpoint
        var spool: Spool
        var dir: String

        func post(_ body: String, contentType: String? = "application/json", headers: [String: String] = [:]) async -> WebhookResponse {
            await endpoint.handle(body: Array(body.utf8), contentType: contentType, header: WebhookTests.headers(headers))
        }
    }

    static func hook(source: String = "", schema: String = columns, quality: String = "", maxBytes: Int64 = 1 << 30,
                     segmentBytes: Int64 = 64 << 20, dir: String? = nil) throws -> Hook {
        let dir = try dir ?? makeTemporaryDirectory("webhook")
        let s = try setup(source: source, schema: schema, quality: quality)
        let spool = try Spool(directory: dir + "/spool", maxBytes: maxBytes, segmentBytes: segmentBytes)
        return Hook(endpoint: WebhookEndpoint(pipeline: s.pipeline, config: s.webhook, spool: spool), spool: spool, dir: dir)
    }

    @Test func acceptedRequestIsStoredAndCounted() async throws {
        let hook = try Self.hook()
        defer { hook.spool.close() }
        let r = await hook.post(#"[{"id":1,"name":"a"},{"id":2}]"#)
        #expect(r.status == 202 && !r.replayed && r.retryAfter == nil)
        let body = try Self.json(r.body)
        #expect(body["status"] as? String == "accepted")
        #expect(body["accepted"] as? Int == 2 && body["rejected"] as? Int == 0)
        #expect(body["errors"] == nil)
        #expect(hook.spool.backlog.records == 2)

        let lines = await hook.post("{\"id\":3}\n{\"id\":4}\n{\"id\":5}\n", contentType: "application/x-ndjson")
        #expect(try lines.status == 202 && Self.json(lines.body)["accepted"] as? Int == 3)
        #expect(hook.spool.backlog.records == 5)

        let (frames, _) = try Self.readAll(hook.spool)
        #expect(frames.map(\.recordCount) == [2, 3])
        #expect(frames.map(\.format) == [.json, .ndjson])
        #expect(frames[1].body == Array("{\"id\":3}\n{\"id\":4}\n{\"id\":5}\n".utf8), "the body is kept as sent")
        #expect(frames[0].responseStatus == 202 && frames[0].responseBody == r.body)

        // An empty array is fine and stores nothing.
        let empty = await hook.post("[]")
        #expect(try empty.status == 202 && Self.json(empty.body)["accepted"] as? Int == 0)
        #expect(hook.spool.backlog.records == 5)
        // Not JSON: 400, nothing stored.
        let bad = await hook.post(#"[{"id":1}"#)
        #expect(bad.status == 400)
        #expect((try Self.json(bad.body))["error"] as? String != nil)
        #expect(hook.spool.backlog.records == 5)
    }

    @Test func partialRequestListsErrorsAndStoresTheValidRecords() async throws {
        let hook = try Self.hook()
        defer { hook.spool.close() }
        let r = await hook.post("{\"id\":1}\n{\"id\":\"x\"}\nnope\n{\"id\":4}\n", contentType: "application/x-ndjson")
        #expect(r.status == 422)
        let body = try Self.json(r.body)
        #expect(body["status"] as? String == "partial")
        #expect(body["accepted"] as? Int == 2 && body["rejected"] as? Int == 2)
        let errors = try Self.errors(r.body)
        #expect(errors.map { $0["index"] as? Int } == [1, 2])
        #expect(errors.map { $0["line"] as? Int } == [2, 3])
        #expect(errors.map { $0["rule"] as? String } == ["type", "json"])
        #expect(errors[0]["field"] as? String == "id" && errors[0]["expected"] as? String == "int64" && errors[0]["got"] as? String == "\"x\"")
        #expect(errors[1]["field"] is NSNull)
        #expect(body["errors_truncated"] == nil)
        #expect(hook.spool.backlog.records == 2)
        let (frames, _) = try Self.readAll(hook.spool)
        #expect(frames.count == 1 && frames[0].rejectedOrigins == [2, 3] && frames[0].recordCount == 2)

        // All refused: 422 "rejected", nothing stored.
        let none = await hook.post(#"[{"id":"a"},{"name":"b"}]"#)
        #expect(none.status == 422)
        #expect((try Self.json(none.body))["status"] as? String == "rejected")
        #expect((try Self.json(none.body))["accepted"] as? Int == 0)
        #expect(hook.spool.backlog.records == 2)
        // A JSON array's errors carry no line.
        #expect(try Self.errors(none.body).allSatisfy { $0["line"] == nil })
    }

    @Test func rejectAllStoresNothingWhenAnyRecordIsInvalid() async throws {
        let hook = try Self.hook(source: ", on_invalid: reject_all")
        defer { hook.spool.close() }
        let r = await hook.post(#"[{"id":1},{"id":"x"},{"id":3}]"#)
        #expect(r.status == 422)
        let body = try Self.json(r.body)
        #expect(body["status"] as? String == "rejected")
        #expect(body["accepted"] as? Int == 0 && body["rejected"] as? Int == 3)
        #expect(try Self.errors(r.body).map { $0["index"] as? Int } == [1])
        #expect(hook.spool.backlog.records == 0 && hook.spool.backlog.bytes == 0)
        #expect(try Self.readAll(hook.spool).frames.isEmpty)
        // A valid body still goes in.
        let ok = await hook.post(#"[{"id":1},{"id":3}]"#)
        #expect(ok.status == 202 && hook.spool.backlog.records == 2)
    }

    @Test func idempotencyKeyReplaysTheFirstAnswer() async throws {
        let hook = try Self.hook()
        defer { hook.spool.close() }
        let body = #"[{"id":1},{"id":2},{"id":3}]"#
        let first = await hook.post(body, headers: ["Idempotency-Key": "order-77"])
        #expect(first.status == 202 && !first.replayed)
        for _ in 0..<3 {
            let again = await hook.post(body, headers: ["idempotency-key": "order-77"])
            #expect(again.status == 202 && again.replayed && again.body == first.body)
        }
        #expect(hook.spool.backlog.records == 3, "stored once")
        #expect(try Self.readAll(hook.spool).frames.count == 1)

        // The same key with another body.
        let other = await hook.post(#"[{"id":9}]"#, headers: ["Idempotency-Key": "order-77"])
        #expect(other.status == 422 && !other.replayed)
        #expect((try Self.json(other.body))["error"] as? String == "this Idempotency-Key was used before with a different body")
        #expect(hook.spool.backlog.records == 3)

        // A partial answer is replayed as it was.
        let partial = await hook.post(#"[{"id":1},{"id":"x"}]"#, headers: ["Idempotency-Key": "p"])
        let partialAgain = await hook.post(#"[{"id":1},{"id":"x"}]"#, headers: ["Idempotency-Key": "p"])
        #expect(partial.status == 422 && partialAgain.status == 422 && partialAgain.replayed && partialAgain.body == partial.body)
        #expect(hook.spool.backlog.records == 4)

        // Without a key the same body is stored again.
        _ = await hook.post(body)
        #expect(hook.spool.backlog.records == 7)

        // A key longer than 255 bytes is refused before anything else.
        let long = await hook.post(body, headers: ["Idempotency-Key": String(repeating: "k", count: 256)])
        #expect(long.status == 400)
        #expect(hook.spool.backlog.records == 7)
    }

    @Test func idempotencyKeyOfAFailedRequestMayBeUsedAgain() async throws {
        let hook = try Self.hook()
        defer { hook.spool.close() }
        let bad = await hook.post(#"[{"id":1}"#, headers: ["Idempotency-Key": "k1"])
        #expect(bad.status == 400)
        let good = await hook.post(#"[{"id":1}]"#, headers: ["Idempotency-Key": "k1"])
        #expect(good.status == 202 && !good.replayed)
        #expect(hook.spool.backlog.records == 1)
        // Nothing stored (every record refused): the key is not spent either.
        let refused = await hook.post(#"[{"id":"x"}]"#, headers: ["Idempotency-Key": "k2"])
        #expect(refused.status == 422)
        let fixed = await hook.post(#"[{"id":2}]"#, headers: ["Idempotency-Key": "k2"])
        #expect(fixed.status == 202 && !fixed.replayed)
        #expect(hook.spool.backlog.records == 2)
    }

    @Test func fullSpoolAnswers429ThenWith503WhenTheSinkIsDown() async throws {
        let hook = try Self.hook(maxBytes: 1500)
        defer { hook.spool.close() }
        let record = #"{"id":1,"name":"\#(String(repeating: "x", count: 600))"}"#
        var statuses: [Int] = []
        for _ in 0..<3 { statuses.append(await hook.post(record).status) }
        #expect(statuses == [202, 202, 429])
        let before = hook.spool.backlog
        #expect(before.records == 2)

        let full = await hook.post(record, headers: ["Idempotency-Key": "retry-me"])
        #expect(full.status == 429 && full.retryAfter == 1)
        #expect((try Self.json(full.body))["error"] as? String != nil)
        hook.endpoint.isSinkHealthy = false
        let down = await hook.post(record, headers: ["Idempotency-Key": "retry-me"])
        #expect(down.status == 503 && down.retryAfter == 5)
        #expect(hook.spool.backlog.records == before.records && hook.spool.backlog.bytes == before.bytes)

        // Once delivered, the same request (same key) goes in.
        let (frames, next) = try Self.readAll(hook.spool)
        #expect(frames.count == 2)
        try hook.spool.release(upTo: next, records: 2)
        #expect(hook.spool.backlog.records == 0 && hook.spool.backlog.bytes == 0)
        hook.endpoint.isSinkHealthy = true
        let retried = await hook.post(record, headers: ["Idempotency-Key": "retry-me"])
        #expect(retried.status == 202 && !retried.replayed)
        #expect(hook.spool.backlog.records == 1)
    }

    @Test func spoolRecordLimitAnswers429() async throws {
        let dir = try makeTemporaryDirectory("webhook")
        let s = try Self.setup()
        let spool = try Spool(directory: dir, maxBytes: 1 << 30, maxRecords: 5)
        defer { spool.close() }
        let endpoint = WebhookEndpoint(pipeline: s.pipeline, config: s.webhook, spool: spool)
        let three = Array(#"[{"id":1},{"id":2},{"id":3}]"#.utf8)
        #expect(await endpoint.handle(body: three, contentType: "application/json", header: { _ in nil }).status == 202)
        #expect(await endpoint.handle(body: three, contentType: "application/json", header: { _ in nil }).status == 429)
        #expect(await endpoint.handle(body: Array(#"[{"id":1},{"id":2}]"#.utf8), contentType: "application/json", header: { _ in nil }).status == 202)
        #expect(spool.backlog.records == 5)
    }

    @Test func moreThanAHundredProblemsAreTruncated() async throws {
        let hook = try Self.hook()
        defer { hook.spool.close() }
        let records = (0..<150).map { #"{"id":"n\#($0)"}"# } + [#"{"id":1}"#]
        let r = await hook.post("[" + records.joined(separator: ",") + "]")
        #expect(r.status == 422)
        let body = try Self.json(r.body)
        #expect(body["errors_truncated"] as? Bool == true)
        #expect(body["accepted"] as? Int == 1 && body["rejected"] as? Int == 150)
        let errors = try Self.errors(r.body)
        #expect(errors.count == 100)
        #expect(errors.first?["index"] as? Int == 0 && errors.last?["index"] as? Int == 99)
        #expect(errors.last?["got"] as? String == "\"n99\"")

        // Exactly 100 are not truncated.
        let hundred = await hook.post("[" + (0..<100).map { #"{"id":"n\#($0)"}"# }.joined(separator: ",") + "]")
        #expect(try Self.json(hundred.body)["errors_truncated"] == nil)
        #expect(try Self.errors(hundred.body).count == 100)
    }

    @Test func authIsCheckedBeforeTheBody() async throws {
        let hook = try Self.hook(source: #", auth: { type: api_key, keys: ["good"] }"#)
        defer { hook.spool.close() }
        #expect(await hook.post(#"{"id":1}"#).status == 401)
        #expect(await hook.post(#"{"id":1}"#, headers: ["X-API-Key": "bad"]).status == 403)
        #expect(await hook.post("garbage", headers: ["X-API-Key": "bad"]).status == 403)
        #expect(hook.spool.backlog.records == 0)
        #expect(await hook.post(#"{"id":1}"#, headers: ["X-API-Key": "good"]).status == 202)
        #expect(hook.spool.backlog.records == 1)

        let signed = try Self.hook(source: #", auth: { type: hmac_sha256, secret: s1, tolerance: 60s }"#)
        defer { signed.spool.close() }
        let body = #"{"id":1}"#
        let ts = String(Int(Date().timeIntervalSince1970))
        let h = ["X-Signature": WebhookAuth.sign(Array(body.utf8), timestamp: ts, secret: "s1"), "X-Timestamp": ts]
        #expect(await signed.post(body, headers: h).status == 202)
        #expect(await signed.post(body, headers: h).status == 403, "a replayed signature")
        #expect(await signed.post(#"{"id":2}"#, headers: h).status == 403, "a tampered body")
        #expect(signed.spool.backlog.records == 1)
    }

    // MARK: Spool

    @Test func concurrentAppendsAreAllStoredInOrder() async throws {
        let dir = try makeTemporaryDirectory("spool")
        let spool = try Spool(directory: dir, maxBytes: 1 << 30, segmentBytes: 4096)
        let frames = (0..<300).map { i in Self.frame("{\"n\":\(i),\"pad\":\"\(String(repeating: "p", count: i % 50))\"}\n", records: 1 + i % 3) }
        let positions = try await withThrowingTaskGroup(of: (Int, SpoolPosition).self) { group in
            for (i, f) in frames.enumerated() { group.addTask { (i, try await spool.append(f)) } }
            var out: [(Int, SpoolPosition)] = []
            for try await p in group { out.append(p) }
            return out
        }
        #expect(positions.count == 300)
        #expect(Set(positions.map(\.1)).count == 300, "every frame ends at its own position")
        // Sorted by position, each frame ends exactly its encoded size after the previous one (in its segment).
        let ordered = positions.sorted { $0.1 < $1.1 }
        var previous = SpoolPosition(segment: ordered[0].1.segment, offset: 0)
        for (i, p) in ordered {
            if p.segment != previous.segment { previous = SpoolPosition(segment: p.segment, offset: 0) }
            #expect(p.offset - previous.offset == Int64(frames[i].encoded().count), "frame \(i) at \(p)")
            previous = p
        }
        let segments = Set(positions.map(\.1.segment))
        #expect(segments.count > 1, "4 KiB segments roll over")
        #expect(Self.segmentFiles(dir).count == segments.count)
        #expect(spool.backlog.records == Int64(frames.reduce(0) { $0 + $1.recordCount }))
        #expect(spool.backlog.bytes == Int64(frames.reduce(0) { $0 + $1.encoded().count }))
        #expect(spool.end == ordered.last!.1)

        let (read, next) = try Self.readAll(spool)
        #expect(next == spool.end)
        #expect(read == ordered.map { frames[$0.0] }, "read gives the frames in the order they are on disk, intact")
        // Reading in small steps gives the same frames.
        var stepped: [SpoolFrame] = []
        var at = try spool.resume(after: nil)
        while true {
            let (some, after) = try spool.read(from: at, maxBytes: 200)
            if some.isEmpty { break }
            stepped += some
            at = after
        }
        #expect(stepped == read)
        spool.close()
    }

    @Test func segmentsRollOverAtSegmentBytes() async throws {
        let dir = try makeTemporaryDirectory("spool")
        let spool = try Spool(directory: dir, maxBytes: 1 << 30, segmentBytes: 1000)
        let f = Self.frame("{\"n\":\"\(String(repeating: "z", count: 200))\"}\n")
        let size = Int64(f.encoded().count)
        var ends: [SpoolPosition] = []
        for _ in 0..<20 { ends.append(try await spool.append(f)) }
        let perSegment = Int((1000 + size - 1) / size)   // frames until the size reaches 1000
        let files = Self.segmentFiles(dir)
        #expect(files.count == (20 + perSegment - 1) / perSegment)
        for (n, file) in files.enumerated() {
            let bytes = Self.fileSize(dir + "/" + file)
            if n < files.count - 1 { #expect(bytes == Int64(perSegment) * size, "\(file)") }
            #expect(bytes < 1000 + size)
        }
        #expect(ends.map(\.segment) == (0..<20).map { 1 + $0 / perSegment })
        spool.close()
    }

    @Test func releaseDeletesDeliveredSegmentsAndKeepsTheRest() async throws {
        let dir = try makeTemporaryDirectory("spool")
        let spool = try Spool(directory: dir, maxBytes: 1 << 30, segmentBytes: 1)   // a segment per frame
        var ends: [SpoolPosition] = []
        for i in 0..<6 { ends.append(try await spool.append(Self.frame("{\"n\":\(i)}\n", records: 2))) }
        #expect(Self.segmentFiles(dir).count == 6)
        #expect(spool.backlog.records == 12)

        // Delivered up to the end of the third frame: the first two segments go, the third is kept
        // (delivery stands at its end) until delivery moves past it.
        try spool.release(upTo: ends[2], records: 6)
        #expect(Self.segmentFiles(dir) == [3, 4, 5, 6].map { (Self.segmentPath(dir, $0) as NSString).lastPathComponent })
        #expect(spool.backlog.records == 6)
        let (rest, _) = try spool.read(from: ends[2], maxBytes: .max)
        #expect(rest.map(\.body) == (3..<6).map { Array("{\"n\":\($0)}\n".utf8) })
        // A release before the delivered position changes nothing.
        try spool.release(upTo: ends[0], records: 2)
        #expect(spool.backlog.records == 6)
        try spool.release(upTo: ends[5], records: 6)
        #expect(spool.backlog.records == 0 && spool.backlog.bytes == 0)
        // The active (last) segment is never deleted.
        #expect(Self.segmentFiles(dir).count == 1)
        spool.close()
    }

    /// Delivery reads as much as a batch holds, which may span segments; the records counted as
    /// waiting must come back to zero however the releases fall.
    @Test(arguments: [[1, 1, 1, 1], [2, 2], [3, 1], [1, 3], [4]])
    func backlogIsRightWhenReleasesSpanSegments(_ steps: [Int]) async throws {
        let dir = try makeTemporaryDirectory("spool")
        let spool = try Spool(directory: dir, maxBytes: 1 << 30, segmentBytes: 1)
        for i in 0..<4 { _ = try await spool.append(Self.frame("{\"n\":\(i)}\n", records: 3)) }
        var at = try spool.resume(after: nil)
        var left: Int64 = 12
        for n in steps {
            var frames: [SpoolFrame] = []
            var next = at
            while frames.count < n {
                let (one, after) = try spool.read(from: next, maxBytes: 1)   // one frame per call
                frames += one
                next = after
            }
            try spool.release(upTo: next, records: Int64(frames.reduce(0) { $0 + $1.recordCount }))
            left -= Int64(3 * n)
            #expect(spool.backlog.records == left, "after releasing \(n) of \(steps)")
            at = next
        }
        #expect(spool.backlog.records == 0 && spool.backlog.bytes == 0)
        spool.close()
    }

    @Test func reopenedSpoolHasTheSameFrames() async throws {
        let dir = try makeTemporaryDirectory("spool")
        let frames = (0..<25).map { Self.frame("{\"n\":\($0)}\n", records: $0 % 4, key: $0 % 5 == 0 ? "key-\($0)" : nil) }
        do {
            let spool = try Spool(directory: dir, maxBytes: 1 << 30, segmentBytes: 300)
            for f in frames { _ = try await spool.append(f) }
            spool.close()
            // A closed spool refuses appends.
            await #expect(throws: Spool.Refusal.self) { _ = try await spool.append(frames[0]) }
        }
        let spool = try Self.reopen(dir, segmentBytes: 300)
        #expect(spool.notices.isEmpty)
        #expect(try Self.readAll(spool).frames == frames)
        #expect(spool.backlog.records == Int64(frames.reduce(0) { $0 + $1.recordCount }))
        // Appending goes on after the last frame.
        let more = Self.frame("{\"n\":99}\n")
        let end = try await spool.append(more)
        #expect(end == spool.end)
        #expect(try Self.readAll(spool).frames == frames + [more])
        spool.close()
    }

    @Test func secondSpoolOnAnOpenDirectoryIsRefused() async throws {
        let dir = try makeTemporaryDirectory("spool")
        do {
            let spool = try Spool(directory: dir, maxBytes: 1 << 30)
            _ = try await spool.append(Self.frame("{}\n"))
            let e = #expect(throws: SluiceError.self) { _ = try Spool(directory: dir, maxBytes: 1 << 30) }
            #expect(e?.message.contains("another sluice process is using the spool") == true, "\(String(describing: e))")
            // The refused open changed nothing.
            #expect(try Self.readAll(spool).frames.count == 1)
            _ = try await spool.append(Self.frame("{}\n"))
            spool.close()
        }
        let again = try Self.reopen(dir)
        #expect(try Self.readAll(again).frames.count == 2)
        again.close()
    }

    @Test(arguments: ["truncated frame", "garbage", "bad checksum", "length only"])
    func tornTailIsCutOnReopen(_ kind: String) async throws {
        let dir = try makeTemporaryDirectory("spool")
        let frames = (0..<5).map { Self.frame("{\"n\":\($0)}\n", records: 1) }
        do {
            let spool = try Spool(directory: dir, maxBytes: 1 << 30)
            for f in frames { _ = try await spool.append(f) }
            spool.close()
        }
        let path = Self.segmentPath(dir, 1)
        let good = Self.fileSize(path)
        let next = Self.frame("{\"n\":\"torn\"}\n").encoded()
        switch kind {
        case "truncated frame": try Self.appendBytes(path, Array(next.prefix(next.count - 3)))
        case "garbage": try Self.appendBytes(path, [0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06])
        case "bad checksum": try Self.appendBytes(path, Array(next.dropLast()) + [next.last! ^ 0xff])
        default: try Self.appendBytes(path, Array(next.prefix(5)))
        }
        #expect(Self.fileSize(path) > good)

        let spool = try Self.reopen(dir)
        #expect(spool.notices.count == 1)
        #expect(spool.notices.first?.contains("not a complete frame") == true, "\(spool.notices)")
        #expect(Self.fileSize(path) == good, "cut back to the last good frame")
        #expect(try Self.readAll(spool).frames == frames)
        #expect(spool.backlog.records == 5)
        let after = Self.frame("{\"n\":5}\n")
        _ = try await spool.append(after)
        #expect(try Self.readAll(spool).frames == frames + [after])
        spool.close()
    }

    @Test func corruptedFrameInTheMiddleIsAnErrorNamingTheSegment() async throws {
        let dir = try makeTemporaryDirectory("spool")
        let spool = try Spool(directory: dir, maxBytes: 1 << 30)
        defer { spool.close() }
        let frames = (0..<3).map { Self.frame("{\"n\":\($0),\"text\":\"hello world\"}\n") }
        var ends: [SpoolPosition] = []
        for f in frames { ends.append(try await spool.append(f)) }
        let path = Self.segmentPath(dir, 1)
        let target = ends[0].offset + Int64(frames[1].encoded().count) - 5   // inside the second frame's body
        try Self.overwrite(path, at: target, with: [try Self.byte(path, at: target) ^ 0x20])

        let e = #expect(throws: SluiceError.self) { _ = try Self.readAll(spool) }
        #expect(e?.message.contains((path as NSString).lastPathComponent) == true, "\(String(describing: e))")
        #expect(e?.message.contains("damaged at offset \(ends[0].offset)") == true, "\(String(describing: e))")
        // The frames around it are readable.
        #expect(try spool.read(from: SpoolPosition(segment: 1, offset: 0), maxBytes: 1).frames == [frames[0]])
        #expect(try spool.read(from: ends[1], maxBytes: .max).frames == [frames[2]])
    }

    /// Only the last segment is ever written to, so only its tail can be torn by a crash: damage in
    /// an earlier segment is corruption of acknowledged frames, which must not be silently cut
    /// along with every good frame after it.
    @Test func corruptionInAnEarlierSegmentIsNotCutOnReopen() async throws {
        let dir = try makeTemporaryDirectory("spool")
        let frames = (0..<4).map { Self.frame("{\"n\":\($0),\"text\":\"hello world\"}\n") }
        let size = Int64(frames[0].encoded().count)
        do {
            // Three frames in the first segment, the fourth in the second.
            let spool = try Spool(directory: dir, maxBytes: 1 << 30, segmentBytes: 2 * size + 1)
            for f in frames { _ = try await spool.append(f) }
            spool.close()
        }
        let first = Self.segmentPath(dir, 1)
        #expect(Self.fileSize(first) == 3 * size)
        #expect(Self.fileSize(Self.segmentPath(dir, 2)) == size)
        try Self.overwrite(first, at: 12, with: [try Self.byte(first, at: 12) ^ 0x01])   // the first frame

        let spool = try Self.reopen(dir, segmentBytes: 2 * size + 1)
        defer { spool.close() }
        #expect(Self.fileSize(first) == 3 * size, "acknowledged frames after the damage are kept")
        let e = #expect(throws: SluiceError.self) { _ = try Self.readAll(spool) }
        #expect(e?.message.contains((first as NSString).lastPathComponent) == true, "\(String(describing: e))")
        #expect(try spool.read(from: SpoolPosition(segment: 1, offset: size), maxBytes: .max).frames == Array(frames[1...]))
    }

    @Test func idempotencyKeysSurviveReopen() async throws {
        let dir = try makeTemporaryDirectory("webhook")
        let s = try Self.setup()
        let body = Array(#"[{"id":1},{"id":"x"}]"#.utf8)
        let key = Self.headers(["Idempotency-Key": "kept"])
        var firstAnswer: WebhookResponse?
        do {
            let spool = try Spool(directory: dir, maxBytes: 1 << 30)
            let endpoint = WebhookEndpoint(pipeline: s.pipeline, config: s.webhook, spool: spool)
            firstAnswer = await endpoint.handle(body: body, contentType: "application/json", header: key)
            spool.close()
        }
        let first = try #require(firstAnswer)
        #expect(first.status == 422)
        // While the segment holding the request exists.
        do {
            let spool = try Self.reopen(dir)
            let endpoint = WebhookEndpoint(pipeline: s.pipeline, config: s.webhook, spool: spool)
            let again = await endpoint.handle(body: body, contentType: "application/json", header: key)
            #expect(again.replayed && again.status == 422 && again.body == first.body)
            let other = await endpoint.handle(body: Array("[]".utf8), contentType: "application/json", header: key)
            #expect(other.status == 422 && !other.replayed)
            #expect(spool.backlog.records == 1)
            spool.close()
        }
    }

    @Test func idempotencyKeysSurviveTheirSegmentsDeletion() async throws {
        let dir = try makeTemporaryDirectory("webhook")
        let s = try Self.setup()
        let bodies = (0..<4).map { Array(#"[{"id":\#($0)}]"#.utf8) }
        var answers: [WebhookResponse] = []
        do {
            let spool = try Spool(directory: dir, maxBytes: 1 << 30, segmentBytes: 1)
            let endpoint = WebhookEndpoint(pipeline: s.pipeline, config: s.webhook, spool: spool)
            for (i, b) in bodies.enumerated() {
                answers.append(await endpoint.handle(body: b, contentType: "application/json", header: Self.headers(["Idempotency-Key": "k\(i)"])))
            }
            let (frames, next) = try Self.readAll(spool)
            #expect(frames.map(\.idempotencyKey) == ["k0", "k1", "k2", "k3"])
            try spool.release(upTo: next, records: 4)
            #expect(Self.segmentFiles(dir).count == 1, "the delivered segments are gone")
            #expect(Self.fileSize(dir + "/keys.log") > 0)
            spool.close()
        }
        #expect(answers.map(\.status) == [202, 202, 202, 202])
        do {
            let spool = try Self.reopen(dir, segmentBytes: 1)
            let endpoint = WebhookEndpoint(pipeline: s.pipeline, config: s.webhook, spool: spool)
            for (i, b) in bodies.enumerated() {
                let again = await endpoint.handle(body: b, contentType: "application/json", header: Self.headers(["Idempotency-Key": "k\(i)"]))
                #expect(again.replayed && again.status == 202 && again.body == answers[i].body, "k\(i)")
            }
            let mismatch = await endpoint.handle(body: bodies[1], contentType: "application/json", header: Self.headers(["Idempotency-Key": "k0"]))
            #expect(mismatch.status == 422 && !mismatch.replayed)
            // Where delivery stands is the sink's to say: until it does, the last segment counts as waiting.
            #expect(spool.backlog.records == 1)
            spool.close()
        }
        // keys.log is rewritten (compacted) when a spool opens, and still holds the keys the next time.
        let third = try Self.reopen(dir, segmentBytes: 1)
        defer { third.close() }
        let e = WebhookEndpoint(pipeline: s.pipeline, config: s.webhook, spool: third)
        let last = await e.handle(body: bodies[3], contentType: "application/json", header: Self.headers(["Idempotency-Key": "k3"]))
        #expect(last.replayed && last.body == answers[3].body)
    }

    // MARK: Delivery

    @Test func deliveryLoadsExactlyTheAcceptedRecords() async throws {
        let dir = try makeTemporaryDirectory("webhook")
        try write(Self.yaml(quality: "{ accepted_values: { field: name, values: [a, b, c] } }"), to: dir + "/sluice.yaml")
        let project = try ConfigLoader.load(file: dir + "/sluice.yaml")
        let pipeline = try #require(project.pipeline(named: "hook"))
        guard case .webhook(let config) = pipeline.source else { Issue.record("not a webhook"); return }
        let spool = try SpoolSource.open(config, pipeline: "hook", context: RunContext(pipeline: "hook", runID: "t", baseDirectory: dir))
        defer { spool.close() }
        #expect(spool.directory == dir + "/.sluice/spool/hook")
        let endpoint = WebhookEndpoint(pipeline: pipeline, config: config, spool: spool)
        func post(_ body: String, _ type: String?) async throws -> Int {
            let r = await endpoint.handle(body: Array(body.utf8), contentType: type, header: { _ in nil })
            return try Self.json(r.body)["accepted"] as? Int ?? -1
        }
        // Two NDJSON bodies in a row (delivered as one text, so line numbers must be offset), the
        // first without a final newline, then a JSON array, an object, and NDJSON again.
        var accepted = 0
        accepted += try await post("{\"id\":1,\"name\":\"a\"}\n{\"id\":\"bad\",\"name\":\"a\"}\n{\"id\":3,\"name\":\"zzz\"}\n{\"id\":4,\"name\":\"b\"}", "application/x-ndjson")
        accepted += try await post("{\"id\":5,\"name\":\"c\"}\n\nnot json\n{\"id\":6}\n{\"name\":\"a\"}\n{\"id\":7,\"name\":\"b\"}\n", "application/x-ndjson")
        accepted += try await post(#"[{"id":8,"name":"a"},{"name":"a"},{"id":9,"name":"q"},{"id":10,"amount":2.5}]"#, "application/json")
        accepted += try await post(#"{"id":11,"name":"c","amount":1}"#, "application/json")
        accepted += try await post("{\"id\":12}\r\n[1]\r\n{\"id\":13,\"name\":\"c\"}\r\n", "application/x-ndjson")
        accepted += try await post(#"[{"id":"x"}]"#, "application/json")   // nothing stored
        #expect(accepted == 10)
        #expect(spool.backlog.records == 10)

        let runner = ProjectRunner(project: project)
        let store = try runner.openStore()
        let ids = { try query(dir + "/out.db", "SELECT id FROM events ORDER BY id").map { $0[0] } }
        let run1 = await runner.runPipeline(pipeline, source: SpoolSource(config: config, schema: pipeline.schema, spool: spool), store: store)
        #expect(run1.status == .succeeded, "\(run1.error ?? "")")
        #expect(run1.recordsWritten == 10 && run1.recordsRejected == 0)
        #expect(try ids() == ["1", "4", "5", "6", "7", "8", "10", "11", "12", "13"])
        #expect(try query(dir + "/out.db", "SELECT name, amount FROM events WHERE id = 10") == [["NULL", "2.5"]])
        // Refused records are neither loaded nor quarantined.
        #expect(run1.quarantineFile == nil)
        let quarantined = ((try? FileManager.default.subpathsOfDirectory(atPath: dir + "/.sluice/quarantine")) ?? [])
            .filter { Self.fileSize(dir + "/.sluice/quarantine/" + $0) > 0 && $0.hasSuffix(".jsonl") }
        #expect(quarantined.isEmpty, "\(quarantined)")
        #expect(spool.backlog.records == 0 && spool.backlog.bytes == 0)
        // The position is committed in the sink, with the rows.
        #expect(try query(dir + "/out.db", "SELECT value FROM _sluice_state WHERE pipeline = 'hook' AND key = '\(SpoolSource.stateKey)'")
                == [[spool.end.description]])

        // Again: nothing new.
        let run2 = await runner.runPipeline(pipeline, source: SpoolSource(config: config, schema: pipeline.schema, spool: spool), store: store)
        #expect(run2.status == .succeeded && run2.recordsWritten == 0)
        #expect(try ids().count == 10)

        // More pushed: only those are added.
        accepted = try await post(#"[{"id":20,"name":"a"},{"id":21,"name":"nope"},{"id":22}]"#, "application/json")
        accepted += try await post("{\"id\":23,\"name\":\"b\"}\n", "application/x-ndjson")
        #expect(accepted == 3)
        let run3 = await runner.runPipeline(pipeline, source: SpoolSource(config: config, schema: pipeline.schema, spool: spool), store: store)
        #expect(run3.status == .succeeded && run3.recordsWritten == 3 && run3.recordsRejected == 0)
        #expect(try ids() == ["1", "4", "5", "6", "7", "8", "10", "11", "12", "13", "20", "22", "23"])
        #expect(spool.backlog.records == 0)
    }

    @Test func deliveryOwnsTheSpoolWhenNoneIsGiven() async throws {
        let dir = try makeTemporaryDirectory("webhook")
        try write(Self.yaml(source: ", spool: { path: hook-spool }"), to: dir + "/sluice.yaml")
        let project = try ConfigLoader.load(file: dir + "/sluice.yaml")
        let pipeline = try #require(project.pipeline(named: "hook"))
        guard case .webhook(let config) = pipeline.source else { Issue.record("not a webhook"); return }
        do {
            let spool = try SpoolSource.open(config, pipeline: "hook", context: RunContext(pipeline: "hook", runID: "t", baseDirectory: dir))
            #expect(spool.directory == dir + "/hook-spool")
            let endpoint = WebhookEndpoint(pipeline: pipeline, config: config, spool: spool)
            _ = await endpoint.handle(body: Array(#"[{"id":1},{"id":2}]"#.utf8), contentType: "application/json", header: { _ in nil })
            spool.close()
        }
        // `sluice run`: the source opens the spool itself (waiting for the closed one to let go).
        var record: PipelineRunRecord?
        for _ in 0..<100 {
            let r = await ProjectRunner(project: project).runPipeline(pipeline, store: try ProjectRunner(project: project).openStore())
            record = r
            if r.status == .succeeded { break }
            usleep(10_000)
        }
        #expect(record?.status == .succeeded, "\(record?.error ?? "")")
        #expect(record?.recordsWritten == 2)
        #expect(try query(dir + "/out.db", "SELECT id FROM events ORDER BY id") == [["1"], ["2"]])
    }

    /// Delivers what is spooled for the project in `dir` and returns the run.
    static func deliver(_ dir: String, _ spool: Spool) async throws -> PipelineRunRecord {
        let project = try ConfigLoader.load(file: dir + "/sluice.yaml")
        let pipeline = try #require(project.pipeline(named: "hook"))
        guard case .webhook(let config) = pipeline.source else { throw SluiceError(.config, "not a webhook pipeline") }
        let runner = ProjectRunner(project: project)
        return await runner.runPipeline(pipeline, source: SpoolSource(config: config, schema: pipeline.schema, spool: spool), store: try runner.openStore())
    }

    /// A project in a temporary directory, its spool and endpoint.
    static func deliveryHook(source: String = "", schema: String = columns, quality: String = "") throws -> Hook {
        let dir = try makeTemporaryDirectory("webhook")
        try write(yaml(source: source, schema: schema, quality: quality), to: dir + "/sluice.yaml")
        let project = try ConfigLoader.load(file: dir + "/sluice.yaml")
        let pipeline = try #require(project.pipeline(named: "hook"))
        guard case .webhook(let config) = pipeline.source else { throw SluiceError(.config, "not a webhook pipeline") }
        let spool = try SpoolSource.open(config, pipeline: "hook", context: RunContext(pipeline: "hook", runID: "t", baseDirectory: dir))
        return Hook(endpoint: WebhookEndpoint(pipeline: pipeline, config: config, spool: spool), spool: spool, dir: dir)
    }

    static func tableColumns(_ db: String) throws -> [String] {
        try query(db, "SELECT name FROM pragma_table_info('events') ORDER BY cid").map { $0[0] }
    }

    /// Under `evolution: freeze` the door lets a null unknown field through (it carries nothing) and
    /// refuses records with a value in one; delivery must not trip over either.
    @Test func deliveryUnderFreezeIgnoresFieldsTheDoorLetThroughOrRefused() async throws {
        let hook = try Self.deliveryHook(schema: Self.columns + ", evolution: freeze")
        defer { hook.spool.close() }
        #expect(await hook.post(#"{"id":1,"extra":null}"#).status == 202)
        #expect(await hook.post(#"[{"id":2},{"id":3,"extra":"z"}]"#).status == 422)
        #expect(await hook.post("{\"id\":4}\n{\"id\":5,\"other\":1}\n", contentType: "application/x-ndjson").status == 422)
        #expect(hook.spool.backlog.records == 3)
        let run = try await Self.deliver(hook.dir, hook.spool)
        #expect(run.status == .succeeded, "\(run.error ?? "")")
        #expect(run.recordsWritten == 3 && run.recordsRejected == 0)
        #expect(try query(hook.dir + "/out.db", "SELECT id FROM events ORDER BY id") == [["1"], ["2"], ["4"]])
        #expect(try Self.tableColumns(hook.dir + "/out.db") == ["id", "name", "amount"])
        #expect(hook.spool.backlog.records == 0)
    }

    /// Under `evolution: evolve` a refused record's fields must not become columns of the table, nor
    /// decide the type of a column the accepted records have.
    @Test func refusedRecordsDoNotShapeTheTable() async throws {
        let hook = try Self.deliveryHook()
        defer { hook.spool.close() }
        let r = await hook.post(#"[{"id":2,"score":7},{"id":"x","note":"abc","score":"bad"}]"#)
        #expect(try r.status == 422 && Self.json(r.body)["accepted"] as? Int == 1)
        #expect(await hook.post("{\"id\":3,\"score\":8}\n{\"id\":null,\"flag\":true}\n", contentType: "application/x-ndjson").status == 422)
        let run = try await Self.deliver(hook.dir, hook.spool)
        #expect(run.status == .succeeded && run.recordsWritten == 2 && run.recordsRejected == 0, "\(run.error ?? "")")
        let columns = try Self.tableColumns(hook.dir + "/out.db")
        #expect(!columns.contains("note") && !columns.contains("flag"), "\(columns)")
        #expect(try query(hook.dir + "/out.db", "SELECT id, typeof(score) FROM events ORDER BY id") == [["2", "integer"], ["3", "integer"]])
    }

    /// A UTF-8 byte-order mark starts a body, not the middle of the text delivery reads.
    @Test func ndjsonBodiesWithAByteOrderMarkAreDelivered() async throws {
        let hook = try Self.deliveryHook()
        defer { hook.spool.close() }
        #expect(await hook.post("{\"id\":1}\n", contentType: "application/x-ndjson").status == 202)
        #expect(await hook.post("\u{FEFF}{\"id\":2}\n{\"id\":3}", contentType: "application/x-ndjson").status == 202)
        #expect(await hook.post("\u{FEFF}[{\"id\":4}]", contentType: "application/json").status == 202)
        #expect(await hook.post("\u{FEFF}{\"id\":\"x\"}\n{\"id\":5}\n", contentType: "application/x-ndjson").status == 422)
        let run = try await Self.deliver(hook.dir, hook.spool)
        #expect(run.status == .succeeded && run.recordsRejected == 0, "\(run.error ?? "") \(run.recordsRejected) rejected")
        #expect(try query(hook.dir + "/out.db", "SELECT id FROM events ORDER BY id") == [["1"], ["2"], ["3"], ["4"], ["5"]])
    }

    // MARK: Fuzzing

    /// Random and hostile request bodies.
    struct HostileBodies {
        var rng: SeededRandom
        init(seed: UInt64) { rng = SeededRandom(seed: seed) }

        mutating func int(_ r: ClosedRange<Int>) -> Int { Int.random(in: r, using: &rng) }
        mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &rng) < p }
        mutating func pick<T>(_ xs: [T]) -> T { xs[int(0...(xs.count - 1))] }

        static let names = ["id", "id", "id", "name", "name", "amount", "amount", "extra", "é", "a.b", "'; DROP TABLE events; --", "tags", "na\\u006de", "Name2"]

        mutating func scalar() -> [UInt8] {
            let text: String
            switch int(0...19) {
            case 0, 1, 2: text = "\(int(-1000...1000))"
            case 3: text = "\"" + pick(["x", "", "1", "12.5", "null", "true", "2026-01-01"]) + "\""
            case 4: text = "null"
            case 5: text = pick(["true", "false"])
            case 6: text = (chance(0.5) ? "-" : "") + "1" + String(repeating: "9", count: int(18...400))
            case 7: text = pick(["1e400", "-1e400", "1e-400", "-0", "-0.0", "0.1e1", "1E+2", "9223372036854775807", "-9223372036854775808", "9223372036854775808"])
            case 8: text = "\"'; DROP TABLE events; -- \\\" OR 1=1\""
            case 9: text = "\"a\\u0000b\""
            case 10: text = "\"" + String(repeating: pick(["z", "é", "🙂"]), count: int(100...20_000)) + "\""
            case 11: text = "[" + (0..<int(0...4)).map { _ in "\(int(0...9))" }.joined(separator: ",") + "]"
            case 12: text = "{\"k\":{\"j\":[1,{\"x\":null}]}}"
            case 13: text = "\(Double.random(in: -1e6...1e6, using: &rng))"
            case 14: text = pick(["\"\\ud800\"", "\"\\udc00\\ud800\"", "\"\\u12\"", "\"\\x41\"", "\"\\q\""])
            case 15: return Array("\"a".utf8) + [pick([0x00, 0x01, 0x1f, 0x7f])] + Array("b\"".utf8)
            case 16: return [34] + [pick([0xff, 0xfe, 0xc0, 0xed, 0xf4]), pick([0x80, 0xa0, 0xbf, 0x28])] + [34]
            case 17: text = pick(["NaN", "Infinity", "01", "+1", ".5", "1.", "0x10", "tru", "nul"])
            case 18: text = "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""
            default: text = "\(int(0...100))"
            }
            return Array(text.utf8)
        }

        mutating func record() -> [UInt8] {
            var out: [UInt8] = [123]
            for i in 0..<int(0...5) {
                if i > 0 { out.append(44) }
                out += Array("\"\(pick(Self.names))\":".utf8)
                out += scalar()
            }
            out.append(125)
            return out
        }

        mutating func wellTyped() -> [UInt8] {
            var fields = ["\"id\":\(int(-5...100_000))"]
            if chance(0.7) { fields.append("\"name\":\"n\(int(0...999))\"") }
            if chance(0.5) { fields.append("\"amount\":\(int(-10...500)).\(int(0...99))") }
            return Array(("{" + fields.joined(separator: ",") + "}").utf8)
        }

        mutating func anyRecord() -> [UInt8] { chance(0.5) ? wellTyped() : record() }

        mutating func body() -> (body: [UInt8], contentType: String?) {
            let type = pick([nil, "application/json", "application/x-ndjson", "application/json; charset=utf-8", "text/plain",
                             "application/jsonl", "APPLICATION/JSON", "multipart/form-data"] as [String?])
            switch int(0...13) {
            case 0:
                return ((0..<int(0...300)).map { _ in UInt8(truncatingIfNeeded: int(0...255)) }, type)
            case 1:
                let n = pick([511, 512, 513, 2_000, 100_000])
                let open = pick(["[", "{\"a\":", "[{\"a\":"])
                var b = Array(String(repeating: open, count: n).utf8)
                if chance(0.5) { b += Array(String(repeating: open == "[" ? "]" : "}", count: n).utf8) }
                return (b, type)
            case 2, 3:
                return (anyRecord(), type)
            case 4, 5:
                var b: [UInt8] = [91]
                for i in 0..<int(0...40) {
                    if i > 0 { b.append(44) }
                    b += chance(0.9) ? anyRecord() : scalar()
                }
                b.append(93)
                return (b, type)
            case 6, 7:
                var b: [UInt8] = []
                for _ in 0..<int(1...40) {
                    switch int(0...9) {
                    case 0: b += []
                    case 1: b += Array("not json".utf8)
                    case 2: b += scalar()
                    case 3: b += Array("[1,2]".utf8)
                    case 4: b += Array("   ".utf8)
                    default: b += anyRecord()
                    }
                    b += chance(0.2) ? [13, 10] : [10]
                }
                if chance(0.3) { b.removeLast() }
                return (b, pick(["application/x-ndjson", "application/jsonl", nil] as [String?]))
            case 8:
                // A valid body, then damaged.
                var (b, t) = (Array(("[" + (0..<int(1...5)).map { _ in String(decoding: wellTyped(), as: UTF8.self) }.joined(separator: ",") + "]").utf8), type)
                for _ in 0..<int(1...4) where !b.isEmpty {
                    let at = int(0...(b.count - 1))
                    switch int(0...2) {
                    case 0: b[at] = UInt8(truncatingIfNeeded: int(0...255))
                    case 1: b.remove(at: at)
                    default: b.insert(pick([34, 44, 58, 91, 93, 123, 125, 92, 0]), at: at)
                    }
                }
                if chance(0.3) { b = Array(b.prefix(int(0...b.count))) }
                return (b, t)
            case 9:
                return (Array(pick(["", " ", "\n", "\r\n\r\n", "\t", "[]", "{}", "[{}]", "null", "0", "\"\"", "[[]]", "[null]", "\u{FEFF}{\"id\":1}"]).utf8), type)
            case 10:
                return (Array(#"{"id":1,"id":"x","name":"a","name":null}"#.utf8), type)
            case 11:
                let long = String(repeating: pick(["a", "'", "\\\\", "\\n"]), count: int(10_000...60_000))
                return (Array("[{\"id\":1,\"name\":\"\(long)\"}]".utf8), type)
            case 12:
                // A record with the id as every kind of value, as NDJSON.
                let lines = (0..<int(1...30)).map { _ in "{\"id\":" + String(decoding: scalar(), as: UTF8.self) + "}" }
                return (Array(lines.joined(separator: "\n").utf8), "application/x-ndjson")
            default:
                return (Array(("[" + (0..<int(1...60)).map { _ in String(decoding: wellTyped(), as: UTF8.self) }.joined(separator: ",") + "]").utf8), type)
            }
        }
    }

    struct Lane: Sendable {
        var name: String
        var source = ""
        var schema = WebhookTests.columns
        var quality = ""
        var useKeys = false
        var deliver = true
    }

    static let lanes: [Lane] = [
        Lane(name: "evolve"),
        Lane(name: "freeze+quality", schema: columns + ", evolution: freeze", quality: "{ range: { field: amount, min: 0 } }, { not_null: [name] }"),
        Lane(name: "reject_all", source: ", on_invalid: reject_all, spool: { segment_bytes: 64KiB }", schema: columns + ", evolution: discard_row"),
        Lane(name: "keys", source: ", spool: { segment_bytes: 64KiB }", schema: columns + ", evolution: freeze", useKeys: true),
    ]

    @Test(arguments: lanes.indices)
    func fuzzedBodiesNeverBreakTheEndpoint(_ laneIndex: Int) async throws {
        let lane = Self.lanes[laneIndex]
        let dir = try makeTemporaryDirectory("webhook-fuzz")
        try write(Self.yaml(source: lane.source, schema: lane.schema, quality: lane.quality), to: dir + "/sluice.yaml")
        let project = try ConfigLoader.load(file: dir + "/sluice.yaml")
        let pipeline = try #require(project.pipeline(named: "hook"))
        guard case .webhook(let config) = pipeline.source else { Issue.record("not a webhook"); return }
        let spool = try SpoolSource.open(config, pipeline: "hook", context: RunContext(pipeline: "hook", runID: "t", baseDirectory: dir))
        defer { spool.close() }
        let endpoint = WebhookEndpoint(pipeline: pipeline, config: config, spool: spool)

        var gen = HostileBodies(seed: 0x5EED_0000 + UInt64(laneIndex))
        var statuses: [Int: Int] = [:]
        var total = 0
        /// Keys whose request was stored: the body, content type and the answer.
        var remembered: [String: (body: [UInt8], type: String?, status: Int, answer: [UInt8])] = [:]
        var last: (body: [UInt8], type: String?, key: String)?
        let cases = 560
        for n in 0..<cases {
            var (body, type) = gen.body()
            var key: String?
            if lane.useKeys, gen.chance(0.5) {
                if let l = last, gen.chance(0.3) { (body, type, key) = (l.body, l.type, l.key) } else { key = "key-\(gen.int(0...40))" }
            }
            let before = spool.backlog
            let sentKey = key
            let r = await endpoint.handle(body: body, contentType: type, header: { name in
                name.lowercased() == "idempotency-key" ? sentKey : nil
            })
            let grew = spool.backlog.records - before.records
            statuses[r.status, default: 0] += 1
            let context = "case \(n): \(r.status) \(String(decoding: r.body.prefix(300), as: UTF8.self)) for \(String(decoding: body.prefix(200), as: UTF8.self))"
            #expect([202, 400, 422].contains(r.status), "\(context)")
            let answer = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any], "\(context)")
            #expect(spool.backlog.bytes >= before.bytes)

            if let key, let seen = remembered[key] {
                if seen.body == body {
                    #expect(r.replayed && r.status == seen.status && r.body == seen.answer, "\(context)")
                } else {
                    #expect(r.status == 422 && !r.replayed && answer["error"] != nil, "\(context)")
                }
                #expect(grew == 0, "\(context)")
                continue
            }
            #expect(!r.replayed, "\(context)")
            switch r.status {
            case 400:
                #expect(answer["error"] is String && grew == 0, "\(context)")
            default:
                let accepted = try #require(answer["accepted"] as? Int, "\(context)")
                let rejected = try #require(answer["rejected"] as? Int, "\(context)")
                #expect(Int64(accepted) == grew, "\(context)")
                #expect(accepted >= 0 && rejected >= 0, "\(context)")
                let errors = answer["errors"] as? [[String: Any]] ?? []
                if r.status == 202 {
                    #expect(rejected == 0 && errors.isEmpty && answer["status"] as? String == "accepted", "\(context)")
                } else {
                    #expect(rejected > 0 && !errors.isEmpty && errors.count <= 100, "\(context)")
                    if errors.count < 100 { #expect(answer["errors_truncated"] == nil, "\(context)") }
                    if rejected > 100 { #expect(answer["errors_truncated"] as? Bool == true, "\(context)") }
                    #expect(answer["status"] as? String == (accepted > 0 ? "partial" : "rejected"), "\(context)")
                    for e in errors {
                        let index = try #require(e["index"] as? Int, "\(context)")
                        #expect(index >= 0 && index < accepted + rejected, "\(context)")
                        #expect(e["rule"] is String && e["expected"] is String && e["message"] is String, "\(context)")
                    }
                    if lane.source.contains("reject_all") { #expect(accepted == 0, "\(context)") }
                }
                total += accepted
                if let key, grew > 0 { remembered[key] = (body, type, r.status, r.body) }
            }
            if let key { last = (body, type, key) }
        }
        #expect(statuses.values.reduce(0, +) == cases)
        #expect(statuses[202, default: 0] > 20 && statuses[400, default: 0] > 20 && statuses[422, default: 0] > 20, "\(statuses)")
        #expect(spool.backlog.records == Int64(total))

        // What was accepted at the door is what delivery loads: nothing is refused a second time.
        guard lane.deliver else { return }
        let runner = ProjectRunner(project: project)
        let record = await runner.runPipeline(pipeline, source: SpoolSource(config: config, schema: pipeline.schema, spool: spool),
                                              store: try runner.openStore())
        #expect(record.status == .succeeded, "\(lane.name): \(record.error ?? "")")
        let quarantined = record.quarantineFile.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }.map { String($0.prefix(2000)) } ?? ""
        #expect(record.recordsWritten == total && record.recordsRejected == 0,
                "\(lane.name): \(record.recordsWritten) of \(total), \(record.recordsRejected) rejected: \(quarantined)")
        #expect(try query(dir + "/out.db", "SELECT count(*) FROM events") == [["\(total)"]])
        #expect(spool.backlog.records == 0 && spool.backlog.bytes == 0)
    }
}
