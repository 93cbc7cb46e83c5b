import Foundation
import SluiceCore
import Yams

/// Reads a YAML node tree into typed values while collecting problems with their position.
/// Every accessor records what it read, so unknown keys can be reported afterwards.
final class ConfigContext {
    let file: String
    var problems: [ConfigProblem] = []
    var interpolator: Interpolator

    init(file: String, environment: [String: String]) {
        self.file = file
        self.interpolator = Interpolator(environment: environment)
    }

    func problem(_ message: String, at mark: Mark?) {
        problems.append(ConfigProblem(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message))
    }
}

/// A YAML node plus where it sits (`pipelines.orders.source`) for messages.
struct ConfigNode {
    let node: Node
    let path: String
    let context: ConfigContext

    var mark: Mark? { node.mark }

    func problem(_ message: String) { context.problem(message, at: mark) }

    /// The scalar text after `${VAR}` substitution; nil (with a problem) if the node is not a scalar.
    func string() -> String? {
        guard case .scalar(let s) = node else {
            problem("\(path): expected a single value, found \(kind)")
            return nil
        }
        switch context.interpolator.substitute(s.string) {
        case .success(let v): return v
        case .failure(let missing):
            problem("\(path): environment variable \(missing.name) is not set (use ${\(missing.name):-default} for a default)")
            return nil
        }
    }

    var isNull: Bool {
        if case .scalar(let s) = node, s.tag == Tag(.null) || (s.style == .plain && ["", "~", "null", "Null", "NULL"].contains(s.string)) { return true }
        return false
    }

    var kind: String {
        switch node {
        case .scalar: "a value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    func int(min: Int? = nil) -> Int? {
        guard let s = string() else { return nil }
        guard let v = Int(s.replacingOccurrences(of: "_", with: "")) else { problem("\(path): expected an integer, found '\(s)'"); return nil }
        if let min, v < min { problem("\(path): must be at least \(min)"); return nil }
        return v
    }

    func double() -> Double? {
        guard var s = string() else { return nil }
        var scale = 1.0
        if s.hasSuffix("%") { s.removeLast(); scale = 0.01 }
        guard let v = Double(s) else { problem("\(path): expected a number, found '\(s)'"); return nil }
        return v * scale
    }

    func bool() -> Bool? {
        guard let s = string() else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: problem("\(path): expected true or false, found '\(s)'"); return nil
        }
    }

    func oneOf<T: RawRepresentable>(_ type: T.Type, _ allowed: [T]) -> T? where T.RawValue == String {
        guard let s = string() else { return nil }
        if let v = T(rawValue: s), allowed.contains(where: { $0.rawValue == v.rawValue }) { return v }
        // Words other tools use for the same thing.
        let synonyms = ["upsert": "merge", "overwrite": "replace", "insert": "append", "truncate": "replace"]
        if let known = synonyms[s.lowercased()], allowed.contains(where: { $0.rawValue == known }) {
            problem("\(path): unknown value '\(s)' (did you mean '\(known)'?)")
            return nil
        }
        problem("\(path): unknown value '\(s)'" + Spelling.didYouMean(s, allowed.map(\.rawValue)))
        return nil
    }

    /// A duration such as `500ms`, `30s`, `5m`, `2h`, `7d`, in seconds.
    func duration() -> Double? {
        guard let s = string() else { return nil }
        if let d = Units.duration(s) { return d }
        problem("\(path): '\(s)' is not a duration (use e.g. 500ms, 30s, 5m, 2h, 7d)")
        return nil
    }

    /// A size such as `64KiB`, `8MiB`, `1GiB`, in bytes.
    func size() -> Int64? {
        guard let s = string() else { return nil }
        if let v = Units.size(s) { return v }
        problem("\(path): '\(s)' is not a size (use e.g. 64KiB, 8MiB, 1GiB)")
        return nil
    }

    /// A list of scalars; a single scalar counts as a list of one.
    func strings() -> [String]? {
        switch node {
        case .sequence(let seq): return seq.enumerated().compactMap { ConfigNode(node: $1, path: "\(path)[\($0)]", context: context).string() }
        case .scalar: return string().map { [$0] }
        default: problem("\(path): expected a list, found \(kind)"); return nil
        }
    }

    func list() -> [ConfigNode]? {
        guard case .sequence(let seq) = node else {
            problem("\(path): expected a list, found \(kind)")
            return nil
        }
        return seq.enumerated().map { ConfigNode(node: $1, path: "\(path)[\($0)]", context: context) }
    }

    /// The node as JSON text (a request body): mappings, lists, and scalars (numbers, booleans and
    /// null bare when YAML reads them so, strings quoted), `${VAR}` substituted.
    func jsonText() -> String? {
        switch node {
        case .mapping:
            guard let pairs = pairs() else { return nil }
            var parts: [String] = []
            for (key, _, value) in pairs {
                guard let v = value.jsonText() else { return nil }
                parts.append(JSONText.quoted(key) + ":" + v)
            }
            return "{" + parts.joined(separator: ",") + "}"
        case .sequence(let seq):
            var parts: [String] = []
            for (i, element) in seq.enumerated() {
                guard let v = ConfigNode(node: element, path: "\(path)[\(i)]", context: context).jsonText() else { return nil }
                parts.append(v)
            }
            return "[" + parts.joined(separator: ",") + "]"
        default:
            if isNull { return "null" }
            guard let text = string(), case .scalar(let s) = node else { return nil }
            if s.style == .plain, text == "true" || text == "false" || Double(text) != nil { return text }
            return JSONText.quoted(text)
        }
    }

    /// Key/value pairs of a mapping, in file order.
    func pairs() -> [(key: String, keyMark: Mark?, value: ConfigNode)]? {
        guard case .mapping(let m) = node else {
            problem("\(path): expected a mapping (key: value), found \(kind)")
            return nil
        }
        return m.map { k, v in
            let key = k.scalar?.string ?? ""
            return (key, k.mark, ConfigNode(node: v, path: path.isEmpty ? key : "\(path).\(key)", context: context))
        }
    }

    /// A mapping with a fixed set of keys: unknown keys are reported with a suggestion.
    func object(allowed: [String]) -> ObjectReader? {
        guard let pairs = pairs() else { return nil }
        var seen: [String: ConfigNode] = [:]
        for (key, keyMark, value) in pairs {
            if seen[key] != nil {
                context.problem("\(path): key '\(key)' appears twice", at: keyMark)
            } else if !allowed.contains(key) {
                context.problem("\(path.isEmpty ? "" : path + ": ")unknown key '\(key)'" + Spelling.didYouMean(key, allowed), at: keyMark)
            }
            seen[key] = value
        }
        return ObjectReader(node: self, values: seen)
    }
}

struct ObjectReader {
    let node: ConfigNode
    let values: [String: ConfigNode]

    subscript(key: String) -> ConfigNode? {
        guard let v = values[key], !v.isNull else { return nil }
        return v
    }

    func required(_ key: String) -> ConfigNode? {
        if let v = self[key] { return v }
        node.problem("\(node.path): missing required key '\(key)'")
        return nil
    }
}

/// Durations and sizes as written in project files.
public enum Units {
    public static func duration(_ text: String) -> Double? {
        let s = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, factor) in units where s.hasSuffix(suffix) {
            if let v = Double(s.dropLast(suffix.count)), v >= 0 { return v * factor }
        }
        return nil
    }

    public static func size(_ text: String) -> Int64? {
        let s = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
                                        ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        for (suffix, factor) in units where s.hasSuffix(suffix) {
            if let v = Double(s.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v >= 0 { return Int64(v * Double(factor)) }
        }
        return Int64(s)
    }
}
