import Crypto
import Foundation
import SluiceConfig
import SluiceConnectors
import SluiceCore
import SluiceFormats

/// One reason a pushed record was refused, as the 422 answer lists it.
public struct WebhookProblem: Sendable, Encodable, Equatable {
    /// Position of the record in the body, from 0.
    public var index: Int
    /// NDJSON line, when the body was NDJSON.
    public var line: Int?
    public var field: String?
    /// `json`, `type`, `required`, `unknown_field`, or the quality rule's name.
    public var rule: String
    public var expected: String
    public var got: String?
    public var message: String
}

/// What the checks made of one request body.
public struct WebhookVerdict: Sendable {
    public var format: SpoolFrame.BodyFormat
    public var records: Int
    public var accepted: Int
    public var problems: [WebhookProblem]
    /// Origins of the refused records, left out on delivery.
    public var rejectedOrigins: [Int]
}

/// Checks pushed records before they are accepted: the body parses, declared columns have their
/// type and are present when `nullable: false`, unknown fields are refused under `evolution:
/// freeze | discard_row`, and every record-level quality rule with `severity: error` passes.
/// A record that would be quarantined on delivery is refused at the door instead, where the
/// caller can still fix it.
public struct WebhookIntake: Sendable {
    public let pipeline: String
    public let config: WebhookSourceConfig
    let schema: SchemaConfig
    let rules: [QualityRule]

    public init(pipeline: PipelineConfig, config: WebhookSourceConfig) {
        self.pipeline = pipeline.name
        self.config = config
        self.schema = pipeline.schema
        // `unique` compares with other records and the sink, which only delivery sees.
        self.rules = pipeline.quality.filter { rule in
            guard rule.severity == .error, !rule.isRunLevel else { return false }
            if case .unique = rule.check { return false }
            return true
        }
    }

    public struct BodyError: Error, Sendable { public var message: String }

    /// Validates a body. Throws `BodyError` when it is not JSON as a whole (400).
    public func check(_ body: [UInt8], contentType: String?) throws -> WebhookVerdict {
        let format = WebhookBody.format(contentType: contentType, body: body)
        let raw: RawBatch
        do {
            raw = try WebhookBody.parse(body, format: format, location: "request body")
        } catch let e as SluiceError {
            throw BodyError(message: e.message + (e.location.map { " (\($0))" } ?? ""))
        }
        // Every record's origin in body order, for its index (JSON origins are the index + 1
        // already; NDJSON line numbers skip blank lines).
        let order = raw.rejected.isEmpty ? raw.origins : (raw.origins + raw.rejected.compactMap(\.origin)).sorted()
        var problems: [WebhookProblem] = []
        func add(_ origin: Int, field: String?, rule: String, expected: String, got: String?, message: String) {
            let index = format == .json ? origin - 1 : Self.position(of: origin, in: order)
            problems.append(WebhookProblem(index: index, line: format == .ndjson ? origin : nil, field: field,
                                           rule: rule, expected: expected, got: got.map { String($0.prefix(200)) }, message: message))
        }
        for r in raw.rejected {
            add(r.origin ?? 0, field: nil, rule: "json", expected: "a JSON object", got: r.raw, message: r.message)
        }
        var refused = Set(raw.rejected.compactMap(\.origin))

        // Declared, not nullable, and absent from every record of the body.
        for field in schema.declared.fields where !field.nullable && !raw.names.contains(field.name) {
            for origin in raw.origins where !refused.contains(origin) {
                add(origin, field: field.name, rule: "required", expected: "\(field.type)", got: nil, message: "\(field.name) is missing")
                refused.insert(origin)
            }
        }
        if schema.evolution == .freeze || schema.evolution == .discard_row || !schema.infer {
            for (c, name) in raw.names.enumerated() where schema.declared[name] == nil {
                let column = raw.columns[c]
                for row in 0..<raw.rowCount where column.kinds[row] != RawKind.null.rawValue && !refused.contains(raw.origins[row]) {
                    add(raw.origins[row], field: name, rule: "unknown_field", expected: "only the declared fields", got: column.text(at: row),
                        message: "\(name) is not a declared column (schema.evolution: \(schema.evolution))")
                    refused.insert(raw.origins[row])
                }
            }
        }

        let typer = BatchTyper(declared: schema.declared, formats: schema.formats)
        let (typed, typeRejected) = typer.type(raw)
        var batch = typed
        for r in typeRejected where !refused.contains(r.origin ?? -1) {
            let field = r.field.flatMap { schema.declared[$0] }
            let got = r.record?.first { $0.0 == r.field }?.1
            let missing = got.map { if case .null = $0 { true } else { false } } ?? true
            add(r.origin ?? 0, field: r.field, rule: missing ? "required" : "type",
                expected: field.map { "\($0.type)" } ?? "valid UTF-8 text", got: got.map(Self.show), message: r.message)
            refused.insert(r.origin ?? 0)
        }
        if !refused.isEmpty { batch = batch.taking(batch.origins.indices.filter { !refused.contains(batch.origins[$0]) }) }

        if !rules.isEmpty, batch.rowCount > 0 {
            let checker = QualityChecker(rules: rules)
            let context = RunContext(pipeline: pipeline, runID: "request")
            let (_, failed) = try checker.check(batch, unit: "request", context: context)
            for r in failed {
                let rule = rules.first { $0.name == r.rule }
                let got = r.record?.first { $0.0 == r.field }?.1
                add(r.origin ?? 0, field: r.field, rule: r.rule ?? "quality", expected: rule.map(Self.expectation) ?? "", got: got.map(Self.show),
                    message: r.message)
                refused.insert(r.origin ?? 0)
            }
        }
        problems.sort { ($0.index, $0.rule) < ($1.index, $1.rule) }
        return WebhookVerdict(format: format, records: order.count, accepted: order.count - refused.count, problems: problems,
                              rejectedOrigins: refused.sorted())
    }

    /// Where `origin` is in the sorted `order` (binary search).
    static func position(of origin: Int, in order: [Int]) -> Int {
        var low = 0, high = order.count
        while low < high {
            let mid = (low + high) / 2
            if order[mid] < origin { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// A value as the caller sent it, roughly: text quoted, other values as JSON.
    static func show(_ v: Value) -> String {
        switch v {
        case .string(let s): "\"\(s)\""
        default: v.jsonText
        }
    }

    static func expectation(_ rule: QualityRule) -> String {
        switch rule.check {
        case .notNull: return "a value (not null)"
        case .range(_, let low, let high):
            switch (low, high) {
            case let (l?, h?): return "between \(l.text) and \(h.text)"
            case let (l?, nil): return "at least \(l.text)"
            case let (nil, h?): return "at most \(h.text)"
            default: return "any value"
            }
        case .pattern(_, let regex): return "text matching \(regex)"
        case .acceptedValues(_, let values): return "one of \(values.map(\.text).joined(separator: ", "))"
        case .expression(let e): return "\(e.text) to be true"
        default: return rule.name
        }
    }

    /// The first 16 bytes of the body's SHA-256: an Idempotency-Key repeated with another body is refused.
    public static func digest(_ body: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: body).prefix(16)) }
}
