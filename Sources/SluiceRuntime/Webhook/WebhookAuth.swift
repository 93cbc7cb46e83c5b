import Crypto
import Foundation
import SluiceConfig
import SluiceCore

/// Checks a webhook request's credentials. Answers only allowed / unauthorized (nothing
/// presented) / forbidden (presented but wrong, stale or replayed), so a caller learns nothing
/// about which part failed. Comparisons take the same time whatever matches.
public final class WebhookAuth: @unchecked Sendable {
    public enum Decision: Sendable, Equatable { case allowed, unauthorized, forbidden }

    let auth: WebhookSourceConfig.Auth?
    private let keyDigests: [[UInt8]]
    private let secrets: [SymmetricKey]
    /// Signatures accepted within the tolerance window: the same signed request sent again is refused.
    private let lock = NSLock()
    private var seen: [String: Int64] = [:]
    private var lastSweep: Int64 = 0

    public init(_ auth: WebhookSourceConfig.Auth?) {
        self.auth = auth
        switch auth {
        case .apiKey(_, let keys): keyDigests = keys.map { Array(SHA256.hash(data: Data($0.utf8))) }; secrets = []
        case .hmacSHA256(let s, _, _, _): secrets = s.map { SymmetricKey(data: Data($0.utf8)) }; keyDigests = []
        case nil: keyDigests = []; secrets = []
        }
    }

    /// `header` looks a request header up by name (case-insensitively).
    public func check(header: (String) -> String?, body: [UInt8], now: Double = Date().timeIntervalSince1970) -> Decision {
        switch auth {
        case nil:
            return .allowed
        case .apiKey(let name, _):
            guard let presented = header(name), !presented.isEmpty else { return .unauthorized }
            // Hashing first makes every comparison the same length; every key is compared.
            let digest = Array(SHA256.hash(data: Data(presented.utf8)))
            var match = false
            for key in keyDigests { match = Self.constantTimeEqual(digest, key) || match }
            return match ? .allowed : .forbidden
        case .hmacSHA256(_, let signatureHeader, let timestampHeader, let tolerance):
            guard let signatures = header(signatureHeader), !signatures.isEmpty,
                  let stamp = header(timestampHeader), !stamp.isEmpty else { return .unauthorized }
            guard let seconds = Double(stamp.trimmingCharacters(in: .whitespaces)), seconds.isFinite,
                  abs(now - seconds) <= tolerance else { return .forbidden }
            var message = Data(stamp.utf8)
            message.append(UInt8(ascii: "."))
            message.append(contentsOf: body)
            let expected = secrets.map { Array(HMAC<SHA256>.authenticationCode(for: message, using: $0)) }
            var match: String?
            for candidate in signatures.split(separator: ",") {
                var text = candidate.trimmingCharacters(in: .whitespaces)
                if text.hasPrefix("sha256=") { text.removeFirst(7) } else if text.hasPrefix("v1=") { text.removeFirst(3) }
                guard let bytes = Self.hexBytes(text), bytes.count == 32 else { continue }
                for e in expected where Self.constantTimeEqual(bytes, e) { match = text.lowercased() }
            }
            guard let match else { return .forbidden }
            return remember(match, at: Int64(now), window: tolerance) ? .allowed : .forbidden
        }
    }

    /// False when the signature was already used within the window (a replay).
    private func remember(_ signature: String, at now: Int64, window: Double) -> Bool {
        lock.lock(); defer { lock.unlock() }
        let horizon = Int64(window) * 2 + 1
        if now - lastSweep > 10 || seen.count > 1_000_000 {
            seen = seen.filter { now - $0.value <= horizon }
            lastSweep = now
        }
        if seen[signature] != nil { return false }
        seen[signature] = now
        return true
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in 0..<a.count { difference |= a[i] ^ b[i] }
        return difference == 0
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 97...102: c - 87
            case 65...70: c - 55
            default: nil
            }
        }
        var i = 0
        while i < chars.count {
            guard let h = nibble(chars[i]), let l = nibble(chars[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }

    /// The signature a sender computes: hex HMAC-SHA256 of `<timestamp>.<body>`.
    public static func sign(_ body: [UInt8], timestamp: String, secret: String) -> String {
        var message = Data(timestamp.utf8)
        message.append(UInt8(ascii: "."))
        message.append(contentsOf: body)
        return HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Data(secret.utf8))).map { String(format: "%02x", $0) }.joined()
    }
}
