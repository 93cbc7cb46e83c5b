import SluiceCore

/// Placeholders in the http source's url, params, headers and body: `{field}` is a value of the
/// parent record (with `for_each`), `{{ name }}` a run parameter (`ds`, `ds_nodash`,
/// `data_interval_start`, `data_interval_end`). Anything else, such as the braces of a JSON body,
/// is kept as written.
public enum RequestTemplate {
    public static let runParameters = ["ds", "ds_nodash", "data_interval_start", "data_interval_end"]

    enum Piece: Equatable {
        case text(String)
        case field(String)
        case parameter(String)
    }

    static func pieces(_ text: String) -> [Piece] {
        guard text.contains("{") else { return [.text(text)] }
        var out: [Piece] = []
        var literal = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            literal += rest[..<open]
            let after = rest[rest.index(after: open)...]
            if after.hasPrefix("{"), let close = after.range(of: "}}") {
                let name = after[after.index(after: after.startIndex)..<close.lowerBound].trimmingCharacters(in: [" "])
                if isName(name) {
                    out.append(.text(literal))
                    literal = ""
                    out.append(.parameter(name))
                    rest = after[close.upperBound...]
                    continue
                }
            }
            if let close = after.firstIndex(of: "}"), isName(after[..<close]) {
                out.append(.text(literal))
                literal = ""
                out.append(.field(String(after[..<close])))
                rest = after[after.index(after: close)...]
                continue
            }
            literal += "{"
            rest = after
        }
        literal += rest
        out.append(.text(literal))
        return out.filter { $0 != .text("") }
    }

    private static func isName<S: StringProtocol>(_ s: S) -> Bool {
        guard let first = s.first, first.isLetter || first == "_" else { return false }
        return s.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
    }

    /// The `{field}` names in `text`, in order of appearance.
    public static func fields(in text: String) -> [String] {
        pieces(text).compactMap { if case .field(let f) = $0 { f } else { nil } }
    }

    /// The `{{ name }}` names in `text`.
    public static func parameters(in text: String) -> [String] {
        pieces(text).compactMap { if case .parameter(let p) = $0 { p } else { nil } }
    }

    /// `text` with its placeholders replaced; `escape` is applied to substituted values (URL
    /// path segments and JSON strings need theirs). Unknown names stay as written.
    public static func render(_ text: String, fields: [String: String], parameters: [String: String],
                              escape: (String) -> String = { $0 }) -> String {
        pieces(text).map { piece in
            switch piece {
            case .text(let t): t
            case .field(let f): fields[f].map(escape) ?? "{\(f)}"
            case .parameter(let p): parameters[p].map(escape) ?? "{{ \(p) }}"
            }
        }.joined()
    }

    /// The run parameters for a run started at `startedAt` (µs): its UTC date and that day.
    public static func parameters(startedAt: Int64) -> [String: String] {
        let day = Int32(startedAt >= 0 ? startedAt / 86_400_000_000 : (startedAt - 86_399_999_999) / 86_400_000_000)
        let ds = Temporal.formatDate(day)
        return ["ds": ds, "ds_nodash": ds.replacingAll("-", with: ""),
                "data_interval_start": ds + "T00:00:00Z", "data_interval_end": Temporal.formatDate(day + 1) + "T00:00:00Z"]
    }
}
