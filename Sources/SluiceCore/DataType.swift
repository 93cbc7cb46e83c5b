/// The column types of the project-file contract (`schema.columns.<name>.type`).
public enum DataType: Hashable, Sendable, CustomStringConvertible {
    case bool
    case int64
    case double
    /// Fixed-point decimal; values are stored unscaled as `Int128`.
    case decimal(precision: Int, scale: Int)
    case string
    case bytes
    /// Days since 1970-01-01.
    case date
    /// Microseconds since 1970-01-01T00:00:00Z.
    case timestamp
    /// A nested value kept as JSON text.
    case json

    public var description: String {
        switch self {
        case .bool: "bool"
        case .int64: "int64"
        case .double: "double"
        case .decimal(let p, let s): "decimal(\(p),\(s))"
        case .string: "string"
        case .bytes: "bytes"
        case .date: "date"
        case .timestamp: "timestamp"
        case .json: "json"
        }
    }

    /// Parses a type name as written in `sluice.yaml` (`int64`, `decimal(12,2)`, …).
    public init?(parsing text: String) {
        let name = text.lowercased().filter { !$0.isWhitespace }
        switch name {
        case "bool", "boolean": self = .bool
        case "int64", "int", "integer", "bigint": self = .int64
        case "double", "float", "float64": self = .double
        case "string", "text": self = .string
        case "bytes", "binary": self = .bytes
        case "date": self = .date
        case "timestamp": self = .timestamp
        case "json": self = .json
        default:
            guard name.hasPrefix("decimal("), name.hasSuffix(")") else { return nil }
            let inner = name.dropFirst("decimal(".count).dropLast()
            let parts = inner.split(separator: ",")
            guard parts.count == 2, let p = Int(parts[0]), let s = Int(parts[1]),
                  (1...38).contains(p), (0...p).contains(s) else { return nil }
            self = .decimal(precision: p, scale: s)
        }
    }

    /// The names accepted by `init(parsing:)`, for error messages.
    public static let documentedNames = ["bool", "int64", "double", "decimal(p,s)", "string", "bytes", "date", "timestamp", "json"]

    /// The narrowest type that holds values of both types; used when inference meets new data.
    /// Numbers widen int64 → double → string; anything else that disagrees becomes string.
    public func widened(with other: DataType) -> DataType {
        if self == other { return self }
        switch (self, other) {
        case (.int64, .double), (.double, .int64): return .double
        case (.date, .timestamp), (.timestamp, .date): return .timestamp
        case (.decimal(let p1, let s1), .decimal(let p2, let s2)):
            let s = max(s1, s2)
            return .decimal(precision: min(38, max(p1 - s1, p2 - s2) + s), scale: s)
        case (.int64, .decimal(let p, let s)), (.decimal(let p, let s), .int64):
            return .decimal(precision: min(38, max(p, 19 + s)), scale: s)
        case (.double, .decimal), (.decimal, .double): return .double
        default: return .string
        }
    }

    /// Whether values of `self` can be stored in a column of `other` without loss of meaning.
    public func fits(in other: DataType) -> Bool { widened(with: other) == other }
}
