import Foundation

/// `source: { type: webhook, … }`.
enum WebhookReader {
    static func read(_ node: ConfigNode) -> WebhookSourceConfig? {
        guard let o = node.object(allowed: ["type", "path", "auth", "max_body", "spool", "idempotency", "max_concurrency",
                                            "body_timeout", "on_invalid"]),
              let path = o.required("path")?.string() else { return nil }
        if !path.hasPrefix("/") || path.contains("?") || path.contains("#") || path.contains(" ") {
            o["path"]?.problem("\(node.path).path: '\(path)' is not a URL path such as /v1/orders")
        }
        if ["/metrics", "/healthz", "/readyz"].contains(path) {
            o["path"]?.problem("\(node.path).path: \(path) is served by sluice serve itself; choose another path")
        }
        var c = WebhookSourceConfig(path: path)
        if let v = o["max_body"]?.size() { c.maxBody = Int(min(max(v, 1024), 1 << 30)) }
        if let v = o["max_concurrency"]?.int(min: 1) { c.maxConcurrency = v }
        if let v = o["body_timeout"]?.duration() { c.bodyTimeout = max(v, 0.1) }
        if let v = o["on_invalid"]?.oneOf(WebhookSourceConfig.OnInvalid.self, WebhookSourceConfig.OnInvalid.allCases) { c.onInvalid = v }
        if let s = o["spool"], let so = s.object(allowed: ["path", "max_bytes", "max_records", "segment_bytes"]) {
            c.spoolPath = so["path"]?.string()
            if let v = so["max_bytes"]?.size() { c.spoolMaxBytes = max(v, 1 << 20) }
            if let v = so["max_records"]?.int(min: 1) { c.spoolMaxRecords = Int64(v) }
            if let v = so["segment_bytes"]?.size() { c.segmentBytes = min(max(v, 64 << 10), 1 << 30) }
        }
        if let i = o["idempotency"], let io = i.object(allowed: ["header", "retention"]) {
            if let v = io["header"]?.string() { c.idempotencyHeader = v }
            if let v = io["retention"]?.duration() { c.idempotencyRetention = v }
        }
        if let a = o["auth"] { c.auth = readAuth(a) }
        return c
    }

    static func readAuth(_ node: ConfigNode) -> WebhookSourceConfig.Auth? {
        guard let o = node.object(allowed: ["type", "header", "keys", "key", "secret", "secrets", "signature_header",
                                            "timestamp_header", "tolerance"]),
              let type = o.required("type")?.string() else { return nil }
        func several(_ plural: String, _ singular: String) -> [String] {
            let values = o[plural]?.strings() ?? o[singular]?.string().map { [$0] } ?? []
            // An unset `${HOOK_KEY_PREVIOUS:-}` leaves an empty entry, which must not match an empty header.
            return values.filter { !$0.isEmpty }
        }
        switch type {
        case "api_key":
            let keys = several("keys", "key")
            if keys.isEmpty { node.problem("\(node.path): api_key needs keys: [...] (at least one non-empty key)") }
            return .apiKey(header: o["header"]?.string() ?? "X-API-Key", keys: keys)
        case "hmac_sha256":
            let secrets = several("secrets", "secret")
            if secrets.isEmpty { node.problem("\(node.path): hmac_sha256 needs secret: (or secrets: [...] while rotating)") }
            return .hmacSHA256(secrets: secrets, signatureHeader: o["signature_header"]?.string() ?? "X-Signature",
                               timestampHeader: o["timestamp_header"]?.string() ?? "X-Timestamp",
                               tolerance: o["tolerance"]?.duration() ?? 300)
        default:
            o["type"]?.problem("\(node.path).type: unknown webhook auth type '\(type)'" + Spelling.didYouMean(type, ["api_key", "hmac_sha256"]))
            return nil
        }
    }
}
