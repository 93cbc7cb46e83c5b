import SluiceCore
import SluiceFormats

/// How PostgreSQL types map to Sluice types and back.
///
/// Reading (`PostgresSource`): every column is selected as text (or raw bytes for bytea, JSON
/// for arrays and composites) and typed by Sluice's own parsers, the same code that types CSV.
///
/// | PostgreSQL | Sluice |
/// |---|---|
/// | smallint, integer, bigint, oid | int64 |
/// | real, double precision | double |
/// | numeric(p,s), p ≤ 38 | decimal(p,s) |
/// | numeric without precision, or p > 38 | decimal(38,10) (values with more digits are rejected) |
/// | boolean | bool |
/// | date | date |
/// | timestamp, timestamptz | timestamp (µs, UTC; `timestamp` without zone is taken as UTC) |
/// | json, jsonb | json |
/// | arrays, composite types | json (`to_json`) |
/// | bytea | bytes |
/// | text, varchar, char, uuid, enums, time, interval, inet, money, xml, … | string (PostgreSQL's text form) |
///
/// `infinity` / `-infinity` dates and timestamps, `NaN` numerics and BC dates have no Sluice
/// value: such a row is rejected (quarantined with the column and value) rather than altered.
enum PostgresTypes {
    struct Column: Sendable {
        var name: String
        /// `format_type` output, e.g. `numeric(12,2)`, `timestamp with time zone`, `integer[]`.
        var sqlType: String
        var category: String   // pg_type.typcategory: A array, C composite, …
        var baseType: String   // pg_type.typname
        var nullable: Bool
    }

    static func sluiceType(_ c: Column) -> DataType {
        if c.category == "A" || c.category == "C" { return .json }
        switch c.baseType {
        case "int2", "int4", "int8", "oid": return .int64
        case "float4", "float8": return .double
        case "bool": return .bool
        case "date": return .date
        case "timestamp", "timestamptz": return .timestamp
        case "json", "jsonb": return .json
        case "bytea": return .bytes
        case "numeric":
            if let open = c.sqlType.firstIndex(of: "("), let close = c.sqlType.firstIndex(of: ")") {
                let parts = c.sqlType[c.sqlType.index(after: open)..<close].split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                if let p = parts.first, p <= 38 { return .decimal(precision: p, scale: parts.count > 1 ? max(0, parts[1]) : 0) }
            }
            return .decimal(precision: 38, scale: 10)
        default: return .string
        }
    }

    /// A column described by its `format_type` spelling alone (as change data capture reports
    /// it): `integer`, `numeric(12,2)`, `timestamp with time zone`, `text[]`.
    static func column(name: String, formatType: String) -> Column {
        if formatType.hasSuffix("[]") {
            return Column(name: name, sqlType: formatType, category: "A", baseType: "_", nullable: true)
        }
        let bare = formatType.split(separator: "(").first.map { String($0) } ?? formatType
        let base: String = switch bare {
        case "smallint": "int2"
        case "integer": "int4"
        case "bigint": "int8"
        case "real": "float4"
        case "double precision": "float8"
        case "boolean": "bool"
        case "timestamp with time zone": "timestamptz"
        case "timestamp without time zone": "timestamp"
        default: bare
        }
        return Column(name: name, sqlType: formatType, category: "S", baseType: base, nullable: true)
    }

    /// The select-list expression that reads column `c` in the form Sluice parses.
    static func selectExpression(_ c: Column) -> String {
        let q = PostgresSQL.quote(c.name)
        if c.category == "A" || c.category == "C" { return "to_json(\(q))::text" }
        return c.baseType == "bytea" ? q : "\(q)::text"
    }

    /// The column type Sluice creates for a Sluice type.
    static func sqlType(_ type: DataType) -> String {
        switch type {
        case .int64: "bigint"
        case .double: "double precision"
        case .bool: "boolean"
        case .decimal(let p, let s): "numeric(\(p),\(s))"
        case .string: "text"
        case .bytes: "bytea"
        case .date: "date"
        case .timestamp: "timestamptz"
        case .json: "jsonb"
        }
    }
}

/// Renders record batches in PostgreSQL's COPY text format: tab-separated, `\N` for NULL,
/// backslash escapes for backslash, tab, newline and carriage return.
enum PostgresCopyEncoder {
    /// Appends every row of `batch`, the columns at indices `order` in that order, to `out`; with
    /// `sequenceFrom`, each row ends with one more column, its number counting from that value.
    static func encode(_ batch: RecordBatch, columns order: [Int], sequenceFrom: Int? = nil, into out: inout [UInt8]) {
        let columns = order.map { batch.columns[$0] }
        for row in 0..<batch.rowCount {
            for (k, column) in columns.enumerated() {
                if k > 0 { out.append(9) }
                if column.isNull(row) { out.append(92); out.append(78); continue }
                switch column.type {
                case .string, .json:
                    column.withBytes(at: row) { appendEscaped($0, to: &out) }
                case .bytes:
                    // bytea hex input `\x…`, its backslash escaped for COPY.
                    out.append(92); out.append(92); out.append(120)
                    column.withBytes(at: row) { out.append(contentsOf: $0.hexString.utf8) }
                case .bool:
                    out.append(column.bools[row] ? 116 : 102)
                case .double:
                    let d = column.doubles[row]
                    let text = d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : Value.formatDouble(d)
                    out.append(contentsOf: text.utf8)
                default:
                    // int64, decimal, date, timestamp: the same digits and ISO forms as CSV output.
                    ValueWriter.appendText(column, row, to: &out)
                }
            }
            if let first = sequenceFrom {
                out.append(9)
                ValueWriter.appendInt(Int64(first + row), to: &out)
            }
            out.append(10)
        }
    }

    @inline(__always) static func appendEscaped(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        var start = 0
        for (i, b) in bytes.enumerated() where b == 92 || b == 9 || b == 10 || b == 13 {
            if i > start { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start..<i])) }
            out.append(92)
            out.append(b == 92 ? 92 : b == 9 ? 116 : b == 10 ? 110 : 114)
            start = i + 1
        }
        if start < bytes.count { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[start...])) }
    }
}
