import SluiceCore

/// PostgreSQL's text form of arrays (`{1,2}`, `{"a b",NULL}`, `{{1,2},{3,4}}`) as JSON, the way
/// `to_json` renders them, for values that arrive as text (change data capture).
enum PostgresArrayText {
    /// With `numeric`, number elements stay bare; with `boolean`, `t`/`f` become `true`/`false`;
    /// every other element is a JSON string, and `NULL` is null. Returns nil when the text is not an
    /// array literal.
    static func json(_ text: String, numeric: Bool, boolean: Bool) -> String? {
        var out = ""
        var chars = Array(text.utf8)[...]
        // An optional dimension decoration such as `[0:1]=` comes first.
        if chars.first == UInt8(ascii: "["), let eq = chars.firstIndex(of: UInt8(ascii: "=")) { chars = chars[(eq + 1)...] }
        guard chars.first == UInt8(ascii: "{") else { return nil }
        var depth = 0
        var expectElement = true
        while let c = chars.popFirst() {
            switch c {
            case UInt8(ascii: "{"):
                depth += 1
                out += "["
                expectElement = true
            case UInt8(ascii: "}"):
                depth -= 1
                out += "]"
                expectElement = false
                if depth == 0 { return chars.isEmpty ? out : nil }
            case UInt8(ascii: ","):
                out += ","
                expectElement = true
            case UInt8(ascii: "\""):
                guard expectElement else { return nil }
                var element: [UInt8] = []
                var closed = false
                while let d = chars.popFirst() {
                    if d == UInt8(ascii: "\\") { if let e = chars.popFirst() { element.append(e) }; continue }
                    if d == UInt8(ascii: "\"") { closed = true; break }
                    element.append(d)
                }
                guard closed else { return nil }
                out += JSONText.quoted(String(decoding: element, as: UTF8.self))
                expectElement = false
            default:
                guard expectElement else { return nil }
                var element = [c]
                while let d = chars.first, d != UInt8(ascii: ","), d != UInt8(ascii: "}") { element.append(d); chars.removeFirst() }
                let word = String(decoding: element, as: UTF8.self)
                if word == "NULL" { out += "null" }
                else if boolean { out += word == "t" ? "true" : "false" }
                else if numeric, Double(word) != nil, word != "NaN", !word.lowercased().contains("inf") { out += word }
                else { out += JSONText.quoted(word) }
                expectElement = false
            }
        }
        return nil
    }
}
