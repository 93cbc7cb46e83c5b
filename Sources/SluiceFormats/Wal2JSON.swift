import SluiceCore

/// One row of PostgreSQL's wal2json output plugin, format-version 2 (one JSON object per change,
/// plus one per transaction begin and commit), with `include-xids`, `include-timestamp`,
/// `include-lsn`, `include-pk` and `include-type-oids` on.
///
/// ```json
/// {"action":"B","xid":2204,"timestamp":"2026-12-01 21:30:03.047324+00","lsn":"7/20C786B8","nextlsn":"7/20C786E8"}
/// {"action":"U","xid":2204,"lsn":"7/20C783E8","schema":"public","table":"t",
///  "columns":[{"name":"id","type":"integer","typeoid":23,"value":1}, …],
///  "identity":[…], "pk":[{"name":"id","type":"integer","typeoid":23}]}
/// ```
/// On begin and commit rows `lsn` is the commit record's start and `nextlsn` its end. Columns of
/// an update whose TOASTed value did not change are left out of `columns`.
public struct Wal2JSONChange: Sendable {
    public enum Action: Sendable, Equatable {
        case begin, commit, insert, update, delete, truncate
        /// `pg_logical_emit_message` output and anything newer than this decoder knows.
        case other(String)
    }

    public struct Column: Sendable, Equatable {
        public var name: String
        /// `format_type` spelling: `integer`, `numeric(12,2)`, `timestamp with time zone`, `text[]`.
        public var type: String
        public var typeOID: Int
        public var value: Wal2JSONValue
    }

    public var action: Action
    public var xid: Int64 = 0
    public var timestamp: String?
    public var lsn: String?
    public var nextLSN: String?
    public var schema = ""
    public var table = ""
    /// The new row (insert, update).
    public var columns: [Column] = []
    /// The old row (update, delete): the key columns, or all with REPLICA IDENTITY FULL.
    public var identity: [Column] = []
    public var primaryKey: [String] = []

    /// Parses one output row. Throws `SluiceError` (kind parse) naming the offset on malformed input.
    public static func parse(_ text: UnsafeRawBufferPointer) throws -> Wal2JSONChange {
        var s = JSONScanner(text)
        var change = Wal2JSONChange(action: .other(""))
        var scratch: [UInt8] = []
        do {
            try fields(of: &s, &scratch) { key, s, scratch in
                switch key {
                case "action":
                    let a = try Self.string(&s, &scratch)
                    change.action = switch a {
                    case "B": .begin
                    case "C": .commit
                    case "I": .insert
                    case "U": .update
                    case "D": .delete
                    case "T": .truncate
                    default: .other(a)
                    }
                case "xid":
                    let span = try s.number()
                    change.xid = TextParsing.int64(UnsafeRawBufferPointer(rebasing: text[span])) ?? 0
                case "timestamp": change.timestamp = try Self.string(&s, &scratch)
                case "lsn": change.lsn = try Self.string(&s, &scratch)
                case "nextlsn": change.nextLSN = try Self.string(&s, &scratch)
                case "schema": change.schema = try Self.string(&s, &scratch)
                case "table": change.table = try Self.string(&s, &scratch)
                case "columns": change.columns = try Self.columns(&s, &scratch, text)
                case "identity": change.identity = try Self.columns(&s, &scratch, text)
                case "pk": change.primaryKey = try Self.columns(&s, &scratch, text).map(\.name)
                default: try s.skipValue()
                }
            }
        } catch let failure as JSONScanner.Failure {
            throw SluiceError(.parse, "wal2json output is not valid JSON at offset \(failure.offset): \(failure.message)",
                              fix: "check that the slot uses the wal2json plugin with format-version 2")
        }
        return change
    }

    /// Walks the members of the object at the scanner, handing each key to `body` with the
    /// scanner at its value (which `body` must consume).
    private static func fields(of s: inout JSONScanner, _ scratch: inout [UInt8],
                               _ body: (String, inout JSONScanner, inout [UInt8]) throws -> Void) throws {
        try s.expect(123)
        s.skipWhitespace()
        if !s.atEnd, s.current == 125 { throw s.fail("empty object") }
        while true {
            s.skipWhitespace()
            let key = try string(&s, &scratch)
            try s.expect(58)
            s.skipWhitespace()
            guard !s.atEnd else { throw s.fail("unexpected end of input") }
            try body(key, &s, &scratch)
            s.skipWhitespace()
            guard !s.atEnd else { throw s.fail("unexpected end of input") }
            if s.current == 44 { s.i += 1; continue }
            try s.expect(125)
            return
        }
    }

    private static func string(_ s: inout JSONScanner, _ scratch: inout [UInt8]) throws -> String {
        guard !s.atEnd, s.current == 34 else { throw s.fail("expected a string") }
        if let span = try s.string(scratch: &scratch) {
            return String(decoding: UnsafeRawBufferPointer(rebasing: s.p[span]), as: UTF8.self)
        }
        return String(decoding: scratch, as: UTF8.self)
    }

    /// `[{"name":…,"type":…,"typeoid":…,"value":…}, …]`; `value` is absent in `pk`.
    private static func columns(_ s: inout JSONScanner, _ scratch: inout [UInt8], _ text: UnsafeRawBufferPointer) throws -> [Column] {
        var out: [Column] = []
        try s.expect(91)
        s.skipWhitespace()
        if !s.atEnd, s.current == 93 { s.i += 1; return out }
        while true {
            var column = Column(name: "", type: "", typeOID: 0, value: .null)
            try fields(of: &s, &scratch) { key, s, scratch in
                switch key {
                case "name": column.name = try string(&s, &scratch)
                case "type": column.type = try string(&s, &scratch)
                case "typeoid":
                    let span = try s.number()
                    column.typeOID = Int(TextParsing.int64(UnsafeRawBufferPointer(rebasing: text[span])) ?? 0)
                case "value": column.value = try value(&s, &scratch, text)
                default: try s.skipValue()
                }
            }
            out.append(column)
            s.skipWhitespace()
            guard !s.atEnd else { throw s.fail("unexpected end of input") }
            if s.current == 44 { s.i += 1; s.skipWhitespace(); continue }
            try s.expect(93)
            return out
        }
    }

    private static func value(_ s: inout JSONScanner, _ scratch: inout [UInt8], _ text: UnsafeRawBufferPointer) throws -> Wal2JSONValue {
        switch s.current {
        case 34: return .text(try string(&s, &scratch))
        case 116: try s.literal("true"); return .bool(true)
        case 102: try s.literal("false"); return .bool(false)
        case 110: try s.literal("null"); return .null
        default:
            let span = try s.number()
            return .number(String(decoding: UnsafeRawBufferPointer(rebasing: text[span]), as: UTF8.self))
        }
    }
}

/// A column value as wal2json prints it: numeric types as JSON numbers (exact digits), booleans,
/// and every other type as its PostgreSQL text form (bytea as hex without `\x`).
public enum Wal2JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(String)
    case text(String)
}
