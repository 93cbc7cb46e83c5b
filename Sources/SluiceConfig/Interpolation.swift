import Foundation
import SluiceCore

/// `${VAR}` / `${VAR:-default}` substitution from the environment, remembering which substituted
/// values are secrets (variables named like *PASSWORD*, *SECRET*, *TOKEN*, *KEY*) so that every
/// printed text can mask them.
struct Interpolator {
    let environment: [String: String]
    var secrets: Set<String> = []

    static func isSecretName(_ name: String) -> Bool {
        let upper = name.uppercased()
        return ["PASSWORD", "SECRET", "TOKEN", "KEY"].contains { upper.contains($0) }
    }

    /// Returns the substituted text, or the name of the first variable that is missing.
    mutating func substitute(_ text: String) -> Result<String, MissingVariable> {
        guard text.contains("${") else { return .success(text) }
        var out = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                out += rest[start.lowerBound...]
                rest = ""
                break
            }
            let body = String(rest[start.upperBound..<end])
            let name: String, fallback: String?
            if let sep = body.range(of: ":-") {
                name = String(body[..<sep.lowerBound])
                fallback = String(body[sep.upperBound...])
            } else {
                name = body
                fallback = nil
            }
            if let value = environment[name], !(value.isEmpty && fallback != nil) {
                if Self.isSecretName(name), !value.isEmpty { secrets.insert(value) }
                out += value
            } else if let fallback {
                out += fallback
            } else {
                return .failure(MissingVariable(name: name))
            }
            rest = rest[rest.index(after: end)...]
        }
        out += rest
        return .success(out)
    }

    struct MissingVariable: Error { var name: String }
}

/// Hides secret values in text meant for people (logs, `validate` output, errors).
public struct SecretMasker: Sendable {
    public var secrets: Set<String>
    public init(secrets: Set<String> = []) { self.secrets = secrets }

    public func mask(_ text: String) -> String {
        var out = text
        for s in secrets.sorted(by: { $0.count > $1.count }) where s.count >= 1 {
            out = out.replacingAll(s, with: "***")
        }
        return out
    }
}
