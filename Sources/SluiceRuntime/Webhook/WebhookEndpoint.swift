import Foundation
import Metrics
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// An answer to a webhook request, before it becomes HTTP.
public struct WebhookResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
    /// Seconds, for 429 and 503.
    public var retryAfter: Int?
    /// The answer repeats the first one given for this Idempotency-Key.
    public var replayed = false

    init(_ status: Int, json: [UInt8], retryAfter: Int? = nil) {
        self.status = status
        self.body = json
        self.retryAfter = retryAfter
    }

    static func error(_ status: Int, _ message: String, retryAfter: Int? = nil) -> WebhookResponse {
        WebhookResponse(status, json: Array("{\"error\":\(JSONText.quoted(message))}".utf8), retryAfter: retryAfter)
    }
}

/// One webhook pipeline's endpoint: authenticates a request, checks its records, stores the
/// accepted ones durably in the spool and only then answers 202. HTTP framing (body limits,
/// timeouts) is the server's; everything a request means is decided here.
public final class WebhookEndpoint: @unchecked Sendable {
    public let pipeline: String
    public let config: WebhookSourceConfig
    public let spool: Spool
    let auth: WebhookAuth
    let intake: WebhookIntake
    /// Whether delivery to the sink works (set by the delivery loop): a full spool answers 503
    /// while it does not, 429 while it does (the sink is only slower than the callers).
    private let lock = NSLock()
    private var sinkHealthy = true
    private var inFlight = 0
    private let accepted: Counter
    private let refused: Counter
    /// Records checked and refused per rule since the start, for `sluice_data_quality_score`.
    private var checked = 0
    private var failedByRule: [String: Int] = [:]
    private var scoreGauges: [String: Gauge] = [:]

    public init(pipeline: PipelineConfig, config: WebhookSourceConfig, spool: Spool) {
        self.pipeline = pipeline.name
        self.config = config
        self.spool = spool
        self.auth = WebhookAuth(config.auth)
        self.intake = WebhookIntake(pipeline: pipeline, config: config)
        accepted = Counter(label: "sluice_webhook_records_total", dimensions: [("pipeline", pipeline.name), ("status", "accepted")])
        refused = Counter(label: "sluice_webhook_records_total", dimensions: [("pipeline", pipeline.name), ("status", "rejected")])
    }

    public var isSinkHealthy: Bool {
        get { lock.withLock { sinkHealthy } }
        set { lock.withLock { sinkHealthy = newValue } }
    }

    /// Handles one request. `header` looks a request header up by name, case-insensitively.
    public func handle(body: [UInt8], contentType: String?, header: (String) -> String?) async -> WebhookResponse {
        let admitted = lock.withLock {
            guard inFlight < config.maxConcurrency else { return false }
            inFlight += 1
            return true
        }
        guard admitted else { return .error(503, "too many requests in progress; retry later", retryAfter: 1) }
        defer { lock.withLock { inFlight -= 1 } }

        switch auth.check(header: header, body: body) {
        case .allowed: break
        case .unauthorized: return .error(401, "unauthorized")
        case .forbidden: return .error(403, "forbidden")
        }

        var key: (name: String, digest: [UInt8])?
        if let k = header(config.idempotencyHeader), !k.isEmpty {
            guard k.utf8.count <= 255 else { return .error(400, "\(config.idempotencyHeader) is longer than 255 bytes") }
            let digest = WebhookIntake.digest(body)
            switch spool.keys.reserve(k, digest: digest) {
            case .new: key = (k, digest)
            case .inFlight: return .error(409, "a request with this \(config.idempotencyHeader) is still being handled; retry later")
            case .mismatch: return .error(422, "this \(config.idempotencyHeader) was used before with a different body")
            case .replay(let status, let body):
                var r = WebhookResponse(status, json: body)
                r.replayed = true
                return r
            }
        }
        let (response, stored) = await store(body, contentType: contentType, key: key)
        if let key {
            // Only a stored request's answer is remembered; after any other the key may be used again.
            if let stored { spool.keys.complete(key.name, stored) } else { spool.keys.cancel(key.name) }
        }
        return response
    }

    /// The answer, and the idempotency entry when the records were stored.
    private func store(_ body: [UInt8], contentType: String?, key: (name: String, digest: [UInt8])?) async -> (WebhookResponse, IdempotencyIndex.Entry?) {
        let verdict: WebhookVerdict
        do {
            verdict = try intake.check(body, contentType: contentType)
        } catch let e as WebhookIntake.BodyError {
            return (.error(400, "the body is not JSON: \(e.message)"), nil)
        } catch {
            return (.error(400, "the body could not be checked: \(error)"), nil)
        }
        refused.increment(by: verdict.records - verdict.accepted)
        recordQuality(verdict)
        let keepsNothing = verdict.accepted == 0 || (!verdict.problems.isEmpty && config.onInvalid == .reject_all)
        let status = verdict.problems.isEmpty ? 202 : 422
        let answer = Self.answer(verdict, stored: keepsNothing ? 0 : verdict.accepted)
        if keepsNothing { return (WebhookResponse(verdict.records == 0 ? 202 : status, json: answer), nil) }
        let frame = SpoolFrame(format: verdict.format, receivedAt: Temporal.nowMicros(), recordCount: verdict.accepted, idempotencyKey: key?.name,
                               bodyDigest: key?.digest ?? [], responseStatus: status, responseBody: answer,
                               rejectedOrigins: verdict.rejectedOrigins, body: body)
        do {
            _ = try await spool.append(frame)
        } catch Spool.Refusal.full(let bytes, _) {
            let healthy = isSinkHealthy
            return (.error(healthy ? 429 : 503, healthy
                           ? "the spool is full (\(bytes) bytes wait for the sink); retry later"
                           : "the sink is unavailable and the spool is full; retry later", retryAfter: healthy ? 1 : 5), nil)
        } catch {
            return (.error(503, "the records could not be stored; retry later", retryAfter: 5), nil)
        }
        accepted.increment(by: verdict.accepted)
        return (WebhookResponse(status, json: answer),
                IdempotencyIndex.Entry(digest: frame.bodyDigest, status: status, body: answer, receivedAt: frame.receivedAt))
    }

    /// The share of pushed records each rule let through (1 when it refused none), as the
    /// pipeline's quality score at the door.
    private func recordQuality(_ verdict: WebhookVerdict) {
        guard verdict.records > 0 else { return }
        let scores: [(Gauge, Double)] = lock.withLock {
            checked += verdict.records
            for p in verdict.problems { failedByRule[p.rule, default: 0] += 1 }
            let total = Double(checked)
            let all = 1 - Double(failedByRule.values.reduce(0, +)) / total
            return (failedByRule.map { ($0.key, 1 - Double($0.value) / total) } + [("all", max(0, all))]).map { rule, score in
                let gauge = scoreGauges[rule] ?? Gauge(label: "sluice_data_quality_score", dimensions: [("pipeline", pipeline), ("rule", rule)])
                scoreGauges[rule] = gauge
                return (gauge, score)
            }
        }
        for (gauge, score) in scores { gauge.record(score) }
    }

    /// `{"status":"accepted"|"partial"|"rejected","accepted":N,"rejected":M,"errors":[…]}` (at most 100 errors listed).
    static func answer(_ v: WebhookVerdict, stored: Int) -> [UInt8] {
        let rejected = v.records - stored
        let status = v.problems.isEmpty ? "accepted" : stored > 0 ? "partial" : "rejected"
        var out = "{\"status\":\"\(status)\",\"accepted\":\(stored),\"rejected\":\(rejected)"
        if !v.problems.isEmpty {
            let listed = v.problems.prefix(100).map { p in
                var fields = ["\"index\":\(p.index)"]
                if let line = p.line { fields.append("\"line\":\(line)") }
                fields.append("\"field\":" + (p.field.map(JSONText.quoted) ?? "null"))
                fields.append("\"rule\":\(JSONText.quoted(p.rule))")
                fields.append("\"expected\":\(JSONText.quoted(p.expected))")
                fields.append("\"got\":" + (p.got.map(JSONText.quoted) ?? "null"))
                fields.append("\"message\":\(JSONText.quoted(p.message))")
                return "{" + fields.joined(separator: ",") + "}"
            }
            out += ",\"errors\":[" + listed.joined(separator: ",") + "]"
            if v.problems.count > 100 { out += ",\"errors_truncated\":true" }
        }
        return Array((out + "}").utf8)
    }
}
