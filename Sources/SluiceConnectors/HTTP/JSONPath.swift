import Foundation

/// Values at dot paths (`meta.next_cursor`, `links.next`) in a parsed JSON body.
enum JSONPath {
    static func value(_ path: String, in json: Any?) -> Any? {
        var current = json
        for part in path.split(separator: ".") {
            if let object = current as? [String: Any] { current = object[String(part)] }
            else if let array = current as? [Any], let i = Int(part), array.indices.contains(i) { current = array[i] }
            else { return nil }
        }
        return current is NSNull ? nil : current
    }

    static func string(_ path: String, in json: Any?) -> String? {
        switch value(path, in: json) {
        case let s as String: s.isEmpty ? nil : s
        case let n as NSNumber: n.stringValue
        default: nil
        }
    }

    static func int(_ path: String, in json: Any?) -> Int? {
        switch value(path, in: json) {
        case let n as NSNumber: n.intValue
        case let s as String: Int(s)
        default: nil
        }
    }

    /// `has_more`-style flags: JSON booleans, or "true"/"false", 1/0.
    static func bool(_ path: String, in json: Any?) -> Bool? {
        switch value(path, in: json) {
        case let n as NSNumber: n.boolValue
        case let s as String: ["true", "1", "yes"].contains(s.lowercased())
        default: nil
        }
    }
}
