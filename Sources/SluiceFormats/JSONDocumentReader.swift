import SluiceCore

/// Reads records from a JSON document: a top-level array of objects, an array found at
/// `recordsPath` (`data.items`), or a single top-level object. Elements are parsed one at a time
/// from a refilled buffer, so a multi-gigabyte array is read in bounded memory.
public final class JSONDocumentReader {
    private let reader: ByteReader
    private let location: String
    private let path: [String]
    private var buffer: [UInt8] = []
    private var position = 0
    private var eof = false
    /// Line number at buffer offset `lineCursor`; advanced lazily, only as far as records start.
    private var line = 1
    private var lineCursor = 0
    private var readSize = 1 << 20
    private var assembler = JSONRecordAssembler()
    private var lastRawBytes: Int64 = 0
    private var state: State = .start
    private var recordIndex = 0
    private let maxRecordBytes: Int
    /// Records are numbered 1, 2, 3 … instead of by the line they start on (a request body, where
    /// the caller thinks of the array's elements).
    public var originIsIndex = false
    /// Anything but whitespace after the document is an error instead of being ignored (a request
    /// body, where `{…}{…}` or NDJSON sent as JSON must not quietly lose all but the first record).
    public var rejectsTrailingContent = false

    private enum State { case start, inArray, single, done }

    public init(reader: ByteReader, location: String, recordsPath: String?, maxRecordBytes: Int = 64 << 20) {
        self.reader = reader
        self.location = location
        self.path = (recordsPath ?? "").split(separator: ".").map(String.init)
        self.maxRecordBytes = maxRecordBytes
    }

    private func fill(compact: Bool) throws {
        if compact, position > 0 {
            _ = lineNumber(at: position)
            buffer.removeConsumed(position)
            lineCursor = 0
            position = 0
        }
        if try reader.read(into: &buffer, max: readSize) == 0 { eof = true }
    }

    private func lineNumber(at offset: Int) -> Int {
        let upTo = min(offset, buffer.count)
        if upTo > lineCursor {
            line += buffer.withUnsafeBytes { p in (lineCursor..<upTo).reduce(0) { $0 + (p[$1] == 10 ? 1 : 0) } }
            lineCursor = upTo
        }
        return line
    }

    private func error(_ message: String, at offset: Int? = nil) -> SluiceError {
        SluiceError(.parse, message, location: "\(location) line \(lineNumber(at: offset ?? position))")
    }

    /// Runs `body` on the buffer; when it runs out of data, reads more and runs it again.
    private func withMoreData<R>(compact: Bool, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        while true {
            do {
                return try buffer.withUnsafeBytes { p in try body(p) }
            } catch let error as JSONScanner.Failure {
                guard error.offset >= buffer.count, !eof else { throw self.error("invalid JSON: \(error.message)", at: error.offset) }
                guard buffer.count - position < maxRecordBytes else {
                    throw self.error("a record is longer than \(maxRecordBytes) bytes")
                }
                if buffer.count - position >= readSize { readSize = min(readSize * 2, 64 << 20) }
                try fill(compact: compact)
            }
        }
    }

    /// With `rejectsTrailingContent`, throws unless only whitespace follows the document.
    private func checkEnd() throws {
        guard rejectsTrailingContent else { return }
        while true {
            while position < buffer.count {
                let c = buffer[position]
                guard c == 32 || c == 10 || c == 13 || c == 9 else { throw error("invalid JSON: unexpected content after the document") }
                position += 1
            }
            if eof { return }
            try fill(compact: true)
        }
    }

    /// Moves to the first element of the records array (or the single top-level object).
    private func locate() throws {
        try fill(compact: false)
        if buffer.count >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF { position = 3 }
        let path = self.path
        let start = position
        let found: (Int, Bool) = try withMoreData(compact: false) { p in
            var s = JSONScanner(p, at: start)
            var scratch: [UInt8] = []
            for component in path {
                s.skipWhitespace()
                guard !s.atEnd else { throw s.fail("unexpected end of input") }
                guard s.current == 123 else { throw JSONScanner.Failure(message: "records_path: '\(component)' is not inside an object", offset: s.i) }
                s.i += 1
                var matched = false
                while !matched {
                    s.skipWhitespace()
                    guard !s.atEnd else { throw s.fail("unexpected end of input") }
                    if s.current == 125 { throw JSONScanner.Failure(message: "records_path: key '\(component)' not found", offset: s.i) }
                    if s.current == 44 { s.i += 1; continue }
                    guard s.current == 34 else { throw s.fail("expected a key") }
                    let key: String
                    if let span = try s.string(scratch: &scratch) { key = String(decoding: UnsafeRawBufferPointer(rebasing: p[span]), as: UTF8.self) }
                    else { key = String(decoding: scratch, as: UTF8.self) }
                    try s.expect(58)
                    if key == component { matched = true } else { try s.skipValue() }
                }
            }
            s.skipWhitespace()
            guard !s.atEnd else { throw s.fail("unexpected end of input") }
            if s.current == 91 { return (s.i + 1, true) }
            if s.current == 123, path.isEmpty { return (s.i, false) }
            throw JSONScanner.Failure(message: path.isEmpty
                ? "the document is neither an array of records nor an object (set records_path to the array)"
                : "records_path '\(path.joined(separator: "."))' is not an array", offset: s.i)
        }
        position = found.0
        state = found.1 ? .inArray : .single
    }

    public func next(maxRows: Int, maxBytes: Int) throws -> RawBatch? {
        if case .start = state { try locate() }
        var origins: [Int] = []
        var rejected: [Rejection] = []
        loop: while origins.count + rejected.count < maxRows, assembler.bytes < maxBytes {
            switch state {
            case .start, .done: break loop
            case .single:
                let start = position
                let end: Int = try withMoreData(compact: false) { p in
                    var s = JSONScanner(p, at: start)
                    try s.skipValue()
                    return s.i
                }
                recordIndex += 1
                try buffer.withUnsafeBytes { p in
                    do { try assembler.appendObject(UnsafeRawBufferPointer(rebasing: p[start..<end])) }
                    catch let error as JSONScanner.Failure { throw self.error("invalid JSON: \(error.message)", at: start + error.offset) }
                }
                origins.append(recordIndex)
                position = end
                state = .done
                try checkEnd()
            case .inArray:
                // `position` is read inside the closure: a refill compacts the buffer and moves it.
                let step: (start: Int, end: Int)? = try withMoreData(compact: true) { p in
                    var s = JSONScanner(p, at: self.position)
                    s.skipWhitespace()
                    if !s.atEnd, s.current == 44, recordIndex > 0 { s.i += 1; s.skipWhitespace() }
                    guard !s.atEnd else { throw s.fail("unexpected end of input") }
                    if s.current == 93 { self.position = s.i + 1; return nil }
                    let elementStart = s.i
                    try s.skipValue()
                    if s.i >= p.count, !eof { throw s.fail("unexpected end of input") }
                    return (elementStart, s.i)
                }
                guard let (elementStart, end) = step else { state = .done; try checkEnd(); break }
                recordIndex += 1
                let lineOfRecord = originIsIndex ? recordIndex : lineNumber(at: elementStart)
                do {
                    try buffer.withUnsafeBytes { p in
                        try assembler.appendObject(UnsafeRawBufferPointer(rebasing: p[elementStart..<end]))
                    }
                    origins.append(lineOfRecord)
                } catch let error as JSONScanner.Failure {
                    rejected.append(Rejection(reason: .parse, message: "record \(recordIndex): \(error.message)", origin: lineOfRecord,
                                              raw: String(decoding: buffer[elementStart..<min(end, elementStart + 10_000)], as: UTF8.self)))
                }
                position = end
            }
        }
        if origins.isEmpty, rejected.isEmpty { return nil }
        let raw = reader.rawBytesRead
        defer { lastRawBytes = raw }
        return assembler.take(origins: origins, rejected: rejected, bytesRead: Int(raw - lastRawBytes))
    }
}
