/// Encodes Thrift structs in the compact protocol, the encoding of Parquet's metadata (page headers
/// and the file footer). Fields are written in increasing id order; the writer keeps the last field
/// id per nesting level to emit short-form deltas.
struct ThriftCompactWriter {
    enum FieldType: UInt8 {
        case boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6, double = 7, binary = 8, list = 9, set = 10, map = 11, `struct` = 12
    }

    var bytes: [UInt8] = []
    private var lastFieldID: [Int16] = [0]

    init() {}

    // MARK: Primitives

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func zigzag(_ value: Int64) { varint(UInt64(bitPattern: (value << 1) ^ (value >> 63))) }

    private mutating func fieldHeader(_ id: Int16, _ type: FieldType) {
        let delta = id - lastFieldID[lastFieldID.count - 1]
        if delta > 0, delta <= 15 {
            bytes.append(UInt8(delta) << 4 | type.rawValue)
        } else {
            bytes.append(type.rawValue)
            zigzag(Int64(id))
        }
        lastFieldID[lastFieldID.count - 1] = id
    }

    // MARK: Fields

    mutating func field(_ id: Int16, i32 value: Int32) {
        fieldHeader(id, .i32)
        zigzag(Int64(value))
    }

    mutating func field(_ id: Int16, i64 value: Int64) {
        fieldHeader(id, .i64)
        zigzag(value)
    }

    mutating func field(_ id: Int16, bool value: Bool) {
        fieldHeader(id, value ? .boolTrue : .boolFalse)
    }

    mutating func field(_ id: Int16, binary value: some Collection<UInt8>) {
        fieldHeader(id, .binary)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func field(_ id: Int16, string value: String) { field(id, binary: Array(value.utf8)) }

    /// A nested struct: `body` writes its fields; the stop byte is added here.
    mutating func field(_ id: Int16, struct body: (inout ThriftCompactWriter) -> Void) {
        fieldHeader(id, .struct)
        writeStruct(body)
    }

    /// A list of structs.
    mutating func field<T>(_ id: Int16, structs items: [T], _ body: (inout ThriftCompactWriter, T) -> Void) {
        fieldHeader(id, .list)
        listHeader(items.count, .struct)
        for item in items { writeStruct { body(&$0, item) } }
    }

    mutating func field(_ id: Int16, i32s items: [Int32]) {
        fieldHeader(id, .list)
        listHeader(items.count, .i32)
        for item in items { zigzag(Int64(item)) }
    }

    mutating func field(_ id: Int16, strings items: [String]) {
        fieldHeader(id, .list)
        listHeader(items.count, .binary)
        for item in items {
            varint(UInt64(item.utf8.count))
            bytes.append(contentsOf: item.utf8)
        }
    }

    private mutating func listHeader(_ count: Int, _ type: FieldType) {
        if count < 15 {
            bytes.append(UInt8(count) << 4 | type.rawValue)
        } else {
            bytes.append(0xF0 | type.rawValue)
            varint(UInt64(count))
        }
    }

    /// Writes a struct's fields followed by the stop byte, with its own field-id context.
    mutating func writeStruct(_ body: (inout ThriftCompactWriter) -> Void) {
        lastFieldID.append(0)
        body(&self)
        lastFieldID.removeLast()
        bytes.append(0)
    }
}
