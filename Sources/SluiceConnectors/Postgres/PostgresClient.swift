import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import SluiceCore

/// Where and how to connect, from a `postgres://user:password@host:port/database?sslmode=…` URL.
public struct PostgresEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    /// disable | prefer | require (default prefer, as libpq).
    public var sslMode: String

    public init(url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              ["postgres", "postgresql"].contains(scheme.lowercased()) else {
            throw SluiceError(.config, "'\(PostgresEndpoint.redacted(url))' is not a postgres:// URL",
                              fix: "write it as postgres://user:password@host:5432/database")
        }
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1"
        port = components.port ?? 5432
        user = components.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? "postgres"
        password = components.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? user : (path.removingPercentEncoding ?? path)
        sslMode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        guard ["disable", "prefer", "require", "allow", "verify-ca", "verify-full"].contains(sslMode) else {
            throw SluiceError(.config, "sslmode '\(sslMode)' is not one of disable, prefer, require, verify-full")
        }
    }

    /// `host:port/database`, for messages (never the password).
    public var display: String { "\(host):\(port)/\(database)" }

    /// The URL with its password replaced by `***`.
    public static func redacted(_ url: String) -> String {
        url.replacingOccurrences(of: #"(://[^:/@]*:)[^@]*@"#, with: "$1***@", options: .regularExpression)
    }
}

/// One connection to PostgreSQL with the few operations Sluice needs, every failure turned into a
/// `SluiceError` that names the server, says what failed and how to fix it.
public final class PostgresClient: @unchecked Sendable {
    public let endpoint: PostgresEndpoint
    let connection: PostgresConnection
    let logger: Logger
    /// `source postgres` / `sink postgres`, named in every error.
    let component: String?
    private static let ids = IDGenerator()

    private init(endpoint: PostgresEndpoint, connection: PostgresConnection, logger: Logger, component: String?) {
        self.endpoint = endpoint
        self.connection = connection
        self.logger = logger
        self.component = component
    }

    public static func connect(_ endpoint: PostgresEndpoint, component: String? = nil) async throws -> PostgresClient {
        var logger = Logger(label: "sluice.postgres")
        logger.logLevel = .critical
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch endpoint.sslMode {
            case "disable", "allow": tls = .disable
            case "prefer": tls = .prefer(try NIOSSLContext(configuration: .clientDefault))
            default:
                var configuration = TLSConfiguration.makeClientConfiguration()
                if endpoint.sslMode == "require" { configuration.certificateVerification = .none }
                tls = .require(try NIOSSLContext(configuration: configuration))
            }
        } catch {
            throw SluiceError(.connection, "cannot set up TLS for \(endpoint.display): \(error)", component: component)
        }
        var configuration = PostgresConnection.Configuration(host: endpoint.host, port: endpoint.port, username: endpoint.user,
                                                             password: endpoint.password, database: endpoint.database, tls: tls)
        configuration.options.connectTimeout = .seconds(10)
        do {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: ids.next(), logger: logger)
            let client = PostgresClient(endpoint: endpoint, connection: connection, logger: logger, component: component)
            do {
                // Text renderings of timestamps and numbers are parsed by Sluice: make them unambiguous.
                for setting in ["TimeZone TO 'UTC'", "DateStyle TO 'ISO, YMD'", "IntervalStyle TO 'iso_8601'", "extra_float_digits TO 3"] {
                    try await client.execute("SET \(setting)")
                }
            } catch {
                await client.close()
                throw error
            }
            return client
        } catch let e as SluiceError {
            throw e
        } catch {
            throw Self.describe(error, endpoint: endpoint, doing: "connecting", component: component)
        }
    }

    /// Connects, runs `body`, and closes the connection whether `body` returns or throws.
    public static func using<T>(_ endpoint: PostgresEndpoint, component: String? = nil,
                                _ body: (PostgresClient) async throws -> T) async throws -> T {
        let db = try await connect(endpoint, component: component)
        do {
            let result = try await body(db)
            await db.close()
            return result
        } catch {
            await db.close()
            throw error
        }
    }

    /// Whether the server side is gone (restarted, network lost).
    public var isClosed: Bool { connection.isClosed }

    public func close() async {
        try? await connection.close()
    }

    /// Runs one statement without parameters (DDL, transaction control). postgres-nio sends every
    /// statement with the extended protocol, which takes one statement at a time.
    public func execute(_ sql: String) async throws {
        let connection = self.connection, logger = self.logger, endpoint = self.endpoint, component = self.component
        try await untilClosed(doing: Self.summary(sql)) {
            do {
                _ = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
            } catch {
                throw Self.describe(error, endpoint: endpoint, doing: Self.summary(sql), component: component)
            }
        }
    }

    /// Runs one parameterised statement and returns its rows' bytes as strings (NULL as nil). For
    /// small results: catalog lookups, state. Results come in binary format, so select non-text
    /// values `::text`.
    public func rows(_ sql: String, _ parameters: [String?] = []) async throws -> [[String?]] {
        var out: [[String?]] = []
        try await stream(sql, parameters) { row in out.append(row.map { $0.bytes.map { String(buffer: $0) } }) }
        return out
    }

    /// Runs one parameterised query and hands each row's cells to `body` as they arrive (the
    /// server is read with back-pressure, so memory stays at about one batch).
    public func stream(_ sql: String, _ parameters: [String?] = [], _ body: (PostgresRow) async throws -> Void) async throws {
        guard !isClosed else { throw lost(doing: Self.summary(sql)) }
        var binds = PostgresBindings(capacity: parameters.count)
        for p in parameters {
            if let p { binds.append(p, context: .default) } else { binds.appendNull() }
        }
        do {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
            for try await row in rows { try await body(row) }
        } catch let e as SluiceError {
            throw e
        } catch {
            throw Self.describe(error, endpoint: endpoint, doing: Self.summary(sql), component: component)
        }
    }

    /// COPY … FROM STDIN into `table` (an unqualified name in the search path, made of letters,
    /// digits and underscores only: postgres-nio quotes but does not escape it) with the given
    /// text-format payloads.
    public func copy(into table: String, columns: [String], chunks: @escaping @Sendable (PostgresCopyFromWriter) async throws -> Void) async throws {
        let connection = self.connection, logger = self.logger, endpoint = self.endpoint, component = self.component
        try await untilClosed(doing: "COPY into \(table)") {
            do {
                try await connection.copyFrom(table: table, columns: columns, format: .text(.init()), logger: logger, writeData: chunks)
            } catch {
                throw Self.describe(error, endpoint: endpoint, doing: "COPY into \(table)", component: component)
            }
        }
    }

    /// Runs `operation`, or fails with a retryable error as soon as the connection closes.
    /// postgres-nio 1.33.2 leaves a COPY or a query waiting forever when the connection drops
    /// under it (its continuation leaks), so a watchdog ends the wait instead; the abandoned
    /// task is cancelled and never resumes.
    private func untilClosed(doing what: String, _ operation: @escaping @Sendable () async throws -> Void) async throws {
        guard !isClosed else { throw lost(doing: what) }
        let connection = self.connection
        let outcome = OneShot()
        let lostError = lost(doing: what)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            outcome.continuation = continuation
            let work = Task {
                do { try await operation(); outcome.finish(.success(())) } catch { outcome.finish(.failure(error)) }
            }
            Task {
                while !outcome.isFinished {
                    try? await Task.sleep(for: .milliseconds(100))
                    if connection.isClosed, !outcome.isFinished {
                        outcome.finish(.failure(lostError))
                        work.cancel()
                    }
                }
            }
        }
    }

    private func lost(doing what: String) -> SluiceError {
        var e = SluiceError(.connection, "PostgreSQL at \(endpoint.display): the connection closed (\(what))", component: component,
                            fix: "check that the server is running; the unit in flight is loaded again")
        e.retryable = true
        return e
    }

    // MARK: Errors

    static func summary(_ sql: String) -> String {
        let flat = sql.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return flat.count > 120 ? String(flat.prefix(117)) + "…" : flat
    }

    /// A PostgreSQL or network failure as a SluiceError: server errors keep SQLSTATE, message,
    /// detail and hint; lost connections are retryable.
    static func describe(_ error: any Error, endpoint: PostgresEndpoint, doing: String, component: String? = nil) -> SluiceError {
        guard let e = error as? PSQLError else {
            var out = SluiceError(.connection, "PostgreSQL at \(endpoint.display): \(doing) failed: \(error)", component: component,
                                  fix: "check that the server is running and reachable")
            out.retryable = true
            return out
        }
        if let info = e.serverInfo, let message = info[.message] {
            let state = info[.sqlState] ?? ""
            var text = "PostgreSQL at \(endpoint.display): \(message)"
            if let detail = info[.detail] { text += " (\(detail))" }
            text += " [SQLSTATE \(state)] while \(doing)"
            var out = SluiceError(.sink, text, component: component, fix: info[.hint] ?? fix(forSQLState: state, endpoint: endpoint))
            out.code = state
            // Connection-class, shutdown and serialization failures go away when tried again.
            out.retryable = state.hasPrefix("08") || state.hasPrefix("57P") || state == "40001" || state == "40P01" || state == "53300"
            if state == "28P01" || state == "28000" || state.hasPrefix("3D") { out.kind = .connection }
            return out
        }
        var text = "PostgreSQL at \(endpoint.display): \(doing) failed: \(e.code)"
        if let underlying = e.underlying { text += " (\(underlying))" }
        var out = SluiceError(.connection, text, component: component,
                              fix: "check that the server is running at \(endpoint.host):\(endpoint.port) and accepts connections")
        out.retryable = true
        return out
    }

    static func fix(forSQLState state: String, endpoint: PostgresEndpoint) -> String? {
        switch state {
        case "28P01", "28000": "check the user and password in the URL (user \(endpoint.user))"
        case "3D000": "create the database, or fix its name in the URL: createdb \(endpoint.database)"
        case "42501": "grant the privileges: GRANT SELECT, INSERT, UPDATE ON … TO \(endpoint.user), and CREATE on the schema"
        case "42P01": "check the table name (schema.table), or let the sink create it with create: true"
        case "23503": "load the referenced table first: add it to depends_on"
        default: nil
        }
    }
}

/// Resumes a continuation once, whichever of several racing tasks gets there first.
private final class OneShot: @unchecked Sendable {
    private let lock = NSLock()
    var continuation: CheckedContinuation<Void, any Error>?
    private var done = false

    var isFinished: Bool { lock.withLock { done } }

    func finish(_ result: Result<Void, any Error>) {
        let waiting: CheckedContinuation<Void, any Error>? = lock.withLock {
            guard !done, let c = continuation else { return nil }
            done = true
            continuation = nil
            return c
        }
        waiting?.resume(with: result)
    }
}

/// Connection IDs for postgres-nio's logs.
private final class IDGenerator: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.withLock { value += 1; return value } }
}

/// SQL identifiers and names.
public enum PostgresSQL {
    /// `"name"` with embedded quotes doubled: safe for any name.
    public static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// `schema.table` → ("schema", "table"); a name without a dot is in `defaultSchema`.
    /// Double quotes keep dots and case: `"My.Schema"."Orders"`.
    public static func split(_ qualified: String, defaultSchema: String = "public") -> (schema: String, table: String) {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var chars = Array(qualified)[...]
        while let c = chars.popFirst() {
            if c == "\"" {
                if quoted, chars.first == "\"" { current.append("\""); chars.removeFirst() } else { quoted.toggle() }
            } else if c == ".", !quoted {
                parts.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current)
        return parts.count >= 2 ? (parts[parts.count - 2], parts[parts.count - 1]) : (defaultSchema, parts[0])
    }

    public static func qualified(_ schema: String, _ table: String) -> String { quote(schema) + "." + quote(table) }
}

