#if canImport(Glibc)
import Glibc
#endif
import SluiceCore

/// Reads newline-delimited JSON: one object per line. A line that is not a valid JSON object is
/// rejected with its line number and text; the lines around it load normally.
public final class JSONLReader {
    private let reader: ByteReader
    private let location: String
    private var buffer: [UInt8] = []
    private var position = 0
    private var eof = false
    private var line = 0
    private var assembler = JSONRecordAssembler()
    private var lastRawBytes: Int64 = 0
    private let maxRecordBytes: Int

    /// `firstLine` numbers the first line of `reader`'s bytes; a block cut from the middle of a
    /// file (`startsFile: false`) has no byte order mark to skip.
    public init(reader: ByteReader, location: String, maxRecordBytes: Int = 64 << 20, firstLine: Int = 1, startsFile: Bool = true) {
        self.reader = reader
        self.location = location
        self.maxRecordBytes = maxRecordBytes
        self.startsFile = startsFile
        line = firstLine - 1
    }

    private let startsFile: Bool
    private var started = false
    /// The line the next record starts on.
    public var nextLine: Int { line + 1 }

    /// Sizes the first batch's buffers like those of a batch read elsewhere from the same file.
    public func sizeLike(_ sizing: BatchSizing) { assembler.sizeLike(sizing) }

    private func fill() throws {
        if position > 0 {
            buffer.removeConsumed(position)
            position = 0
        }
        if try reader.read(into: &buffer, max: 1 << 20) == 0 { eof = true }
    }

    public func next(maxRows: Int, maxBytes: Int) throws -> RawBatch? {
        var origins: [Int] = []
        var rejected: [Rejection] = []
        if !started {
            started = true
            try fill()
            if startsFile, buffer.count >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF { position = 3 }
        }
        while origins.count + rejected.count < maxRows, assembler.bytes < maxBytes {
            // Find the end of the current line.
            let start = position
            let end: Int? = buffer.withUnsafeBytes { p in
                guard start < p.count, let hit = memchr(p.baseAddress! + start, 10, p.count - start) else { return nil }
                return UnsafeRawPointer(hit) - p.baseAddress!
            }
            guard let lineEnd = end ?? (eof ? buffer.count : nil) else {
                guard buffer.count - position < maxRecordBytes else {
                    throw SluiceError(.parse, "line longer than \(maxRecordBytes) bytes", location: "\(location) line \(line + 1)",
                                      fix: "split the record, or check that the file is really newline-delimited JSON")
                }
                try fill()
                continue
            }
            if position >= buffer.count, eof { break }
            line += 1
            // Stops at the first other byte, which for a record is its first one.
            let isBlank = buffer.withUnsafeBytes { p in
                !(start..<lineEnd).contains { p[$0] != 32 && p[$0] != 9 && p[$0] != 13 }
            }
            if !isBlank {
                do {
                    try buffer.withUnsafeBytes { p in
                        try assembler.appendObject(UnsafeRawBufferPointer(rebasing: p[position..<lineEnd]))
                    }
                    origins.append(line)
                } catch let failure as JSONScanner.Failure {
                    let raw = String(decoding: buffer[position..<min(lineEnd, position + 10_000)], as: UTF8.self)
                    rejected.append(Rejection(reason: .parse, message: "invalid JSON at column \(failure.offset + 1): \(failure.message)",
                                              origin: line, raw: raw))
                }
            }
            position = min(lineEnd + 1, buffer.count)
        }
        if origins.isEmpty, rejected.isEmpty { return nil }
        let raw = reader.rawBytesRead
        defer { lastRawBytes = raw }
        return assembler.take(origins: origins, rejected: rejected, bytesRead: Int(raw - lastRawBytes))
    }
}
