import SluiceCore

/// A decoded Thrift value of the compact protocol. Parquet metadata is small, so it is decoded into
/// this tree first and read through typed accessors; that keeps the decoder generic and makes every
/// malformed input an error, whatever field it hits.
indirect enum ThriftValue: Sendable {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case binary([UInt8])
    case list([ThriftValue])
    case structure([Int16: ThriftValue])

    subscript(field: Int16) -> ThriftValue? {
        if case .structure(let fields) = self { return fields[field] }
        return nil
    }

    var int: Int64? { if case .int(let v) = self { v } else { nil } }
    var bool: Bool? { if case .bool(let v) = self { v } else { nil } }
    var binary: [UInt8]? { if case .binary(let v) = self { v } else { nil } }
    var string: String? { binary.map { String(decoding: $0, as: UTF8.self) } }
    var list: [ThriftValue]? { if case .list(let v) = self { v } else { nil } }
    var fields: [Int16: ThriftValue]? { if case .structure(let v) = self { v } else { nil } }
}

/// Decodes compact-protocol structs with bounds on every length, so a corrupt footer ends in an
/// error rather than a crash or a huge allocation.
struct ThriftCompactReader {
    struct Malformed: Error { var message: String; var offset: Int }

    private let bytes: [UInt8]
    private(set) var position: Int
    private var depth = 0
    static let maxDepth = 64

    init(_ bytes: [UInt8], at position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    private func fail(_ message: String) -> Malformed { Malformed(message: message, offset: position) }

    private mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw fail("unexpected end of metadata") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            let b = try byte()
            result |= UInt64(b & 0x7F) << UInt64(shift)
            if b & 0x80 == 0 { return result }
        }
        throw fail("varint longer than 10 bytes")
    }

    mutating func zigzag() throws -> Int64 {
        let v = try varint()
        return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
    }

    private mutating func length() throws -> Int {
        let n = try varint()
        guard n <= UInt64(bytes.count - position) else { throw fail("length \(n) runs past the end of the metadata") }
        return Int(n)
    }

    /// Reads one struct (fields until the stop byte).
    mutating func readStruct() throws -> ThriftValue {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw fail("metadata nested deeper than \(Self.maxDepth) levels") }
        var fields: [Int16: ThriftValue] = [:]
        var lastID: Int16 = 0
        while true {
            let header = try byte()
            if header == 0 { return .structure(fields) }
            let type = header & 0x0F
            let delta = Int16(header >> 4)
            let id: Int16
            if delta != 0 {
                id = lastID &+ delta
            } else {
                let raw = try zigzag()
                guard let v = Int16(exactly: raw) else { throw fail("field id \(raw) out of range") }
                id = v
            }
            lastID = id
            fields[id] = try value(ofType: type, inField: true)
        }
    }

    private mutating func value(ofType type: UInt8, inField: Bool) throws -> ThriftValue {
        switch type {
        case 1: return .bool(true)
        case 2: return inField ? .bool(false) : .bool(try byte() == 1)
        case 3: return .int(Int64(Int8(bitPattern: try byte())))
        case 4, 5, 6: return .int(try zigzag())
        case 7:
            guard position + 8 <= bytes.count else { throw fail("unexpected end of metadata") }
            var bits: UInt64 = 0
            for k in 0..<8 { bits |= UInt64(bytes[position + k]) << UInt64(8 * k) }
            position += 8
            return .double(Double(bitPattern: bits))
        case 8:
            let n = try length()
            defer { position += n }
            return .binary(Array(bytes[position..<(position + n)]))
        case 9, 10:
            let header = try byte()
            var count = Int(header >> 4)
            if count == 15 { count = try length() }
            guard count <= bytes.count - position else { throw fail("list of \(count) elements runs past the end of the metadata") }
            let elementType = header & 0x0F
            var items: [ThriftValue] = []
            items.reserveCapacity(count)
            for _ in 0..<count { items.append(try value(ofType: elementType, inField: false)) }
            return .list(items)
        case 11:
            throw fail("maps do not occur in Parquet metadata")
        case 12:
            return try readStruct()
        default:
            throw fail("unknown field type \(type)")
        }
    }
}
