#if canImport(Glibc)
import Glibc
#endif
import SluiceCore

/// An open Parquet file: its footer decoded, and byte ranges read on demand with `pread`, so only
/// the column chunks a reader needs are ever in memory.
final class ParquetFile {
    let path: String
    let size: Int
    let metadata: ThriftValue
    private let fd: Int32

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SluiceError(.source, "cannot open file: \(String(cString: strerror(errno)))", location: path) }
        var st = stat()
        fstat(fd, &st)
        size = Int(st.st_size)
        do {
            metadata = try Self.readFooter(fd: fd, size: size, path: path)
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    func corrupt(_ what: String) -> SluiceError {
        SluiceError(.parse, "not a readable Parquet file: \(what)", location: path,
                    fix: "check that the file was written completely (a writer that crashed leaves no footer)")
    }

    static func pread(_ fd: Int32, offset: Int, count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return nil }
            done += n
        }
        return out
    }

    func read(offset: Int, count: Int) throws -> [UInt8] {
        guard offset >= 0, count >= 0, offset + count <= size else {
            throw corrupt("a column chunk at bytes \(offset)..<\(offset + count) lies outside the file (\(size) bytes)")
        }
        guard let bytes = Self.pread(fd, offset: offset, count: count) else { throw corrupt("cannot read bytes at \(offset)") }
        return bytes
    }

    private static func readFooter(fd: Int32, size: Int, path: String) throws -> ThriftValue {
        func corrupt(_ what: String) -> SluiceError {
            SluiceError(.parse, "not a readable Parquet file: \(what)", location: path,
                        fix: "check that the file was written completely (a writer that crashed leaves no footer)")
        }
        guard size >= 12 else { throw corrupt("\(size) bytes is too short for a Parquet file") }
        guard let head = pread(fd, offset: 0, count: 4), head.elementsEqual("PAR1".utf8) else {
            throw corrupt("it does not start with the magic bytes PAR1")
        }
        guard let tail = pread(fd, offset: size - 8, count: 8), tail.suffix(4).elementsEqual("PAR1".utf8) else {
            throw corrupt("it does not end with the magic bytes PAR1 (truncated?)")
        }
        let footerLength = Int(UInt32(tail[0]) | UInt32(tail[1]) << 8 | UInt32(tail[2]) << 16 | UInt32(tail[3]) << 24)
        guard footerLength > 0, footerLength <= size - 12 else {
            throw corrupt("the footer length \(footerLength) does not fit in a file of \(size) bytes")
        }
        guard let footer = pread(fd, offset: size - 8 - footerLength, count: footerLength) else { throw corrupt("cannot read the footer") }
        var thrift = ThriftCompactReader(footer)
        do {
            return try thrift.readStruct()
        } catch let e as ThriftCompactReader.Malformed {
            throw corrupt("the footer metadata is malformed at byte \(e.offset): \(e.message)")
        }
    }
}
