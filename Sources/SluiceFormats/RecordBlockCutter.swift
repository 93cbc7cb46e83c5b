#if canImport(Glibc)
import Glibc
#endif
import CShims
import SluiceCore

/// Cuts a stream of text records into blocks of whole records, so that several threads can parse
/// one file.
///
/// A JSON line ends at every newline. A CSV record may span lines inside quotes, so a CSV block ends
/// at the last newline with an even number of quote characters between it and the block's start.
/// That is a record end unless a quote stands inside an unquoted field (`5" screen`), which the CSV
/// parser reads as text; the parser of such a block then ends inside a quoted field, and the caller
/// reads the rest of the file in order (`remainder`).
public final class RecordBlockCutter {
    public enum Records: Sendable {
        case lines
        case csv(quote: UInt8)
    }

    public enum Next {
        /// Bytes of whole records; `rawBytes` of the file were read for them (compressed bytes for
        /// a compressed file).
        case block([UInt8], rawBytes: Int, isLast: Bool)
        case end
        /// No record end within `maxRecordBytes`: read the rest with one parser, which reports
        /// the record that is too long where it starts.
        case noBoundary
    }

    private let reader: ByteReader
    private let records: Records
    /// About how many bytes a block holds; may change between blocks.
    public var blockBytes: Int
    private let maxRecordBytes: Int
    private var carry: [UInt8] = []
    private var eof = false
    private var rawCounted: Int64 = 0

    public init(reader: ByteReader, records: Records, blockBytes: Int, maxRecordBytes: Int = 64 << 20) {
        self.reader = reader
        self.records = records
        self.blockBytes = blockBytes
        self.maxRecordBytes = maxRecordBytes
    }

    public func next() throws -> Next {
        var target = blockBytes
        while true {
            carry.reserveCapacity(target)
            while !eof, carry.count < target {
                if try reader.read(into: &carry, max: target - carry.count) == 0 { eof = true }
            }
            if eof {
                guard !carry.isEmpty else { return .end }
                let block = carry
                carry = []
                return .block(block, rawBytes: takeRawBytes(), isLast: true)
            }
            if let cut = lastRecordEnd() {
                // The block takes the buffer; only the tail after the cut is copied.
                var block = carry
                carry = Array(block[cut...])
                block.removeSubrange(cut...)
                return .block(block, rawBytes: takeRawBytes(), isLast: false)
            }
            guard target < maxRecordBytes else { return .noBoundary }
            target = min(target * 2, maxRecordBytes)
        }
    }

    /// The bytes not handed out yet, after `pending` (blocks handed out but not parsed), then the
    /// rest of the stream: for reading on in order. Its `rawBytesRead` counts from `counted`.
    public func remainder(after pending: [[UInt8]], counted: Int64) -> ByteReader {
        PrefixedReader(prefix: pending + [carry], rest: reader, counted: counted)
    }

    private func takeRawBytes() -> Int {
        let raw = reader.rawBytesRead
        defer { rawCounted = raw }
        return Int(raw - rawCounted)
    }

    /// Offset just past the last record end in `carry`, if any.
    private func lastRecordEnd() -> Int? {
        carry.withUnsafeBytes { p -> Int? in
            guard let base = p.baseAddress, p.count > 0 else { return nil }
            func lastNewline(_ from: Int, _ to: Int) -> Int? {
                guard to > from, let hit = sluice_memrchr(base + from, 10, to - from) else { return nil }
                return UnsafeRawPointer(hit) - base + 1
            }
            switch records {
            case .lines:
                return lastNewline(0, p.count)
            case .csv(let quote):
                // Between quotes, alternately outside and inside a quoted field; a doubled quote
                // inside one is two toggles.
                var from = 0, inside = false, cut: Int?
                while true {
                    let q = memchr(base + from, Int32(quote), p.count - from).map { UnsafeRawPointer($0) - base } ?? p.count
                    if !inside, let end = lastNewline(from, q) { cut = end }
                    if q == p.count { return cut }
                    inside.toggle()
                    from = q + 1
                }
            }
        }
    }
}

/// Bytes held in memory followed by the rest of a stream.
final class PrefixedReader: ByteReader {
    private var prefix: [[UInt8]]
    private let rest: ByteReader
    private let counted: Int64

    init(prefix: [[UInt8]], rest: ByteReader, counted: Int64) {
        self.prefix = prefix.filter { !$0.isEmpty }.reversed()
        self.rest = rest
        self.counted = counted
    }

    func read(into buffer: inout [UInt8], max: Int) throws -> Int {
        guard let next = prefix.popLast() else { return try rest.read(into: &buffer, max: max) }
        buffer.append(contentsOf: next)
        return next.count
    }

    var rawBytesRead: Int64 { rest.rawBytesRead - counted }
}
