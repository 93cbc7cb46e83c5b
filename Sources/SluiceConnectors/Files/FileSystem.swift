import Foundation
import SluiceCore

/// Local file operations the connectors share: globbing, atomic replace, directories, fsync.
public enum FileSystem {
    public static func createDirectory(forFile path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        guard !dir.isEmpty else { return }
        try createDirectory(dir)
    }

    public static func createDirectory(_ dir: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw SluiceError(.sink, "cannot create directory: \(error.localizedDescription)", location: dir)
        }
    }

    public static func size(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    /// Writes `data` to `path` durably: temp file, fsync, rename, fsync of the directory.
    public static func writeAtomically(_ data: [UInt8], to path: String) throws {
        try createDirectory(forFile: path)
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SluiceError(.sink, "cannot create file: \(String(cString: strerror(errno)))", location: tmp) }
        var ok = data.withUnsafeBytes { p -> Bool in
            var off = 0
            while off < p.count {
                let n = write(fd, p.baseAddress! + off, p.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok else { unlink(tmp); throw SluiceError(.sink, "cannot write file: \(String(cString: strerror(errno)))", location: path, retryable: true) }
        try rename(tmp, to: path)
    }

    /// `rename(2)` plus an fsync of the directory so the new name survives a crash.
    public static func rename(_ from: String, to: String) throws {
        guard Foundation.rename(from, to) == 0 else {
            throw SluiceError(.sink, "cannot rename \(from): \(String(cString: strerror(errno)))", location: to)
        }
        syncDirectory(of: to)
    }

    public static func syncDirectory(of path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Files matching a glob: `*`, `?`, `[...]` within a path segment, `**` across directories.
    /// Sorted by path so runs are deterministic.
    public static func glob(_ pattern: String) -> [String] {
        let absolute = pattern.hasPrefix("/")
        let segments = pattern.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var results: [String] = []
        func isPattern(_ s: String) -> Bool { s.contains { "*?[".contains($0) } }
        func walk(_ dir: String, _ index: Int) {
            if index == segments.count {
                if size(dir) != nil { results.append(dir) }
                return
            }
            let seg = segments[index]
            let join = { (name: String) in dir.isEmpty ? name : (dir == "/" ? "/" + name : dir + "/" + name) }
            if seg == "**" {
                walk(dir, index + 1)
                for name in list(dir.isEmpty ? "." : dir) where isDirectory(join(name)) { walk(join(name), index) }
                return
            }
            if !isPattern(seg) {
                walk(join(seg), index + 1)
                return
            }
            for name in list(dir.isEmpty ? "." : dir) where !name.hasPrefix(".") && fnmatch(seg, name, 0) == 0 {
                walk(join(name), index + 1)
            }
        }
        walk(absolute ? "/" : "", 0)
        return Array(Set(results)).sorted()
    }

    static func list(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }
}
