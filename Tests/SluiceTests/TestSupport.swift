import Foundation
import Sluice

/// Runs the real `sluice` executable built next to the tests.
struct SluiceProcess {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = packageRoot.appendingPathComponent(".build/debug/sluice").path

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func start(_ arguments: [String], in directory: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    static func run(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, b in b }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Drain both pipes concurrently so a chatty child cannot block on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let errReader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        errReader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while errReader.isExecuting || !errReader.isFinished { usleep(1000) }
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// A fresh temporary directory, removed by the caller when done.
func makeTemporaryDirectory(_ name: String = "sluice-test") throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

func copyDirectory(_ from: String, to: String) throws {
    try? FileManager.default.removeItem(atPath: to)
    try FileManager.default.copyItem(atPath: from, toPath: to)
}

func write(_ text: String, to path: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
}

/// Rows of a query against a SQLite file, as text (null → "NULL").
func query(_ dbPath: String, _ sql: String) throws -> [[String]] {
    let db = try SQLiteDatabase(path: dbPath)
    return try db.query(sql).map { $0.map { $0.isNull ? "NULL" : $0.text } }
}

/// The JSON summary of `sluice run --json`.
struct RunSummary: Decodable {
    struct Pipeline: Decodable {
        var name: String
        var status: String
        var records_read: Int
        var records_written: Int
        var records_rejected: Int
        var error: String?
    }
    var run_id: String
    var status: String
    var pipelines: [Pipeline]

    static func parse(_ text: String) throws -> RunSummary { try JSONDecoder().decode(RunSummary.self, from: Data(text.utf8)) }
    func pipeline(_ name: String) -> Pipeline? { pipelines.first { $0.name == name } }
}

/// Deterministic pseudo-random numbers for tests (SplitMix64).
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
