import SluiceCore

/// A parsed and validated `sluice.yaml`.
public struct ProjectConfig: Sendable {
    /// The project file as given.
    public var file: String
    /// Directory relative paths resolve against.
    public var baseDirectory: String
    /// The state store: a SQLite file path (default `.sluice/state.db`).
    public var state: String
    public var pipelines: [PipelineConfig]
    /// Hides secrets (from `*PASSWORD*`/`*SECRET*`/`*TOKEN*`/`*KEY*` variables) in printed text.
    public var masker: SecretMasker

    public func pipeline(named name: String) -> PipelineConfig? { pipelines.first { $0.name == name } }
}

public struct PipelineConfig: Sendable {
    public var name: String
    public var dependsOn: [String]
    public var schedule: String?
    public var source: SourceConfig
    public var schema: SchemaConfig
    public var transforms: [TransformConfig]
    public var quality: [QualityRule] = []
    public var onError: OnErrorConfig
    public var sink: SinkConfig
    public var retry: RetryConfig
    /// Rows and bytes per batch. Default 16,384 rows / 4 MiB: measured faster than larger batches
    /// (they stay in cache and the two stages overlap better) and half the memory.
    public var batchRows: Int
    public var batchBytes: Int
    /// The time zone `schedule` is read in (IANA name); UTC when nil.
    public var timezone: String? = nil
}

public struct RetryConfig: Sendable {
    /// Tries in all (1 = no retry). Default 5.
    public var attempts = 5
    public var initial = 1.0
    public var max = 60.0
    public var jitter = true
    public init() {}
}

public enum SourceConfig: Sendable {
    case files(FilesSourceConfig)
    case postgres(PostgresSourceConfig)
    case http(HTTPSourceConfig)
    case webhook(WebhookSourceConfig)

    public var type: String {
        switch self { case .files: "files" case .postgres: "postgres" case .http: "http" case .webhook: "webhook" }
    }
}

/// `type: webhook`: records pushed to `sluice serve` over HTTP, acknowledged once they are on disk.
public struct WebhookSourceConfig: Sendable {
    public enum Auth: Sendable, Equatable {
        /// Any of `keys` in `header`; several keys let a key be rotated without downtime.
        case apiKey(header: String, keys: [String])
        /// HMAC-SHA256 of `<timestamp>.<raw body>` with any of `secrets`, hex in `signatureHeader`
        /// (`sha256=` prefix optional, several comma-separated signatures allowed); the Unix-seconds
        /// timestamp in `timestampHeader` must be within `tolerance` of the server's clock.
        case hmacSHA256(secrets: [String], signatureHeader: String, timestampHeader: String, tolerance: Double)
    }

    /// What a request with some invalid records does with the valid ones.
    public enum OnInvalid: String, Sendable, CaseIterable {
        /// Store the valid records; answer 422 listing the invalid ones (and how many were accepted).
        case accept_valid
        /// Store nothing; answer 422 listing the invalid ones.
        case reject_all
    }

    public var path: String
    public var auth: Auth?
    /// Largest request body accepted (413 beyond). Default 1 MiB.
    public var maxBody = 1 << 20
    /// Where the spool lives. Default `.sluice/spool/<pipeline>` next to the project file.
    public var spoolPath: String?
    /// Spooled, not yet delivered bytes (and records, when set) beyond which requests get 429
    /// (503 while the sink is down). Default 1 GiB.
    public var spoolMaxBytes: Int64 = 1 << 30
    public var spoolMaxRecords: Int64?
    /// Spool segment size: a segment is deleted once everything in it is committed to the sink.
    public var segmentBytes: Int64 = 64 << 20
    /// The header naming a request's idempotency key, and how long a key is remembered.
    public var idempotencyHeader = "Idempotency-Key"
    public var idempotencyRetention = 86_400.0
    /// Requests handled at once on this endpoint; more get 503 with Retry-After.
    public var maxConcurrency = 1024
    /// A request whose body takes longer than this to arrive gets 408.
    public var bodyTimeout = 30.0
    public var onInvalid = OnInvalid.accept_valid

    public init(path: String) { self.path = path }
}

/// `type: http`: a REST API read page by page.
public struct HTTPSourceConfig: Sendable {
    public enum Auth: Sendable, Equatable {
        case bearer(token: String)
        case apiKeyHeader(name: String, value: String)
        case apiKeyQuery(name: String, value: String)
        case basic(username: String, password: String)
        case oauth2ClientCredentials(tokenURL: String, clientID: String, clientSecret: String, scope: String?)
    }

    public enum PaginationType: String, Sendable, CaseIterable {
        case none, page_number, offset, cursor, link_header, next_url
    }

    public struct Pagination: Sendable {
        public var type: PaginationType = .none
        /// page_number: the page parameter and the first page. Default `page`, 1.
        public var pageParam = "page"
        public var startPage = 1
        /// page_number: the page-size parameter (sent when set); offset: the limit parameter.
        public var sizeParam: String?
        public var pageSize: Int?
        /// offset: the offset parameter. Default `offset`; the limit goes in `limit_param` (default `limit`).
        public var offsetParam = "offset"
        public var limitParam = "limit"
        /// cursor: where the next cursor is in the body, and the parameter it is sent as.
        public var cursorPath: String?
        public var cursorParam = "cursor"
        /// next_url: where the next page's URL is in the body.
        public var nextURLPath: String?
        /// Stop conditions besides an empty page.
        public var hasMorePath: String?
        public var totalPagesPath: String?
        public var totalPath: String?
        /// A guard: no more pages than this. Default 100,000.
        public var maxPages = 100_000
        public init() {}
    }

    public var url: String
    public var method = "GET"
    public var params: [(String, String)] = []
    public var headers: [(String, String)] = []
    /// A JSON request body (text).
    public var body: String?
    public var auth: Auth?
    /// Dot path to the array of records; "" means the body is the array.
    public var recordsPath = ""
    public var pagination = Pagination()
    /// incremental: the record field whose largest value is saved, the parameter it is sent as.
    public var cursorField: String?
    public var cursorParam: String?
    public var cursorInitial: String?
    public var requestsPerSecond: Double?
    public var burst = 1
    /// The host's circuit opens after this many consecutive failures (5xx, connection errors)
    /// and stays open for `circuitCoolDown` seconds. Defaults 10 and 30 s.
    public var circuitFailures = 10
    public var circuitCoolDown = 30.0
    /// Per request. Default 30 s.
    public var timeout = 30.0
    public var maxResponseBytes = 64 << 20
    /// Fan-out: one request chain per parent record.
    public var forEach: ForEach?
    public init(url: String) { self.url = url }

    /// `for_each`: the parents are the records pipeline `pipeline` loaded into its sink; each
    /// distinct value of `fields` is one unit, substituted into `{field}` in the request.
    public struct ForEach: Sendable {
        public var pipeline: String
        public var fields: [String]
        /// Parents whose requests run at the same time. Default 4.
        public var concurrency = 4
        public init(pipeline: String, fields: [String]) {
            self.pipeline = pipeline
            self.fields = fields
        }
    }
}

public enum PostgresReadMode: String, Sendable, CaseIterable { case full, incremental, cdc }

/// What a CDC source does on its first run for a table.
public enum SnapshotMode: String, Sendable, CaseIterable {
    /// Read the table's current rows (op `r`), then stream the changes after them.
    case initial
    /// Only stream the changes made after the replication slot was created.
    case never
}

/// `type: postgres` source: a table or a query, read whole (`full`) or past a saved cursor, or
/// the change stream of tables (`cdc`).
public struct PostgresSourceConfig: Sendable {
    public var url: String
    /// `schema.table` (schema defaults to the connection's search path) …
    public var table: String?
    /// … or a query, read as a subquery.
    public var query: String?
    public var mode: PostgresReadMode = .full
    /// incremental: the column compared with the saved cursor (ties broken by the primary key).
    public var cursorField: String?
    /// Key columns; introspected for tables, required for incremental queries.
    public var primaryKey: [String] = []
    /// Rows per page (one keyset query, one batch, one checkpoint).
    public var batchSize = 10_000
    /// cdc: the tables whose changes are read (`schema.table`).
    public var tables: [String] = []
    /// cdc: the logical replication slot (created with wal2json when missing). Default `sluice_<pipeline>`.
    public var slot: String?
    public var snapshot: SnapshotMode = .initial
    /// cdc: how often `--follow` looks for new changes. Default 1 s.
    public var pollInterval = 1.0
    /// cdc: a heartbeat (a tiny logical message in the WAL) this often while no change of these
    /// tables arrives, so the slot moves on and the server can recycle WAL. Default 30 s; 0 turns it off.
    public var heartbeat = 30.0
    /// cdc: set REPLICA IDENTITY FULL on the tables (full before-images, unchanged TOAST values
    /// recoverable). Default true.
    public var fullReplicaIdentity = true
    /// cdc: set by the loader when the sink applies the changes (`mode: replicate`): records are the
    /// table's typed rows plus the operation, rather than change envelopes.
    public var emitsRows = false
    public init(url: String) { self.url = url }
}

public enum FileFormat: String, Sendable, CaseIterable { case csv, jsonl, json, parquet }
public enum CompressionSetting: String, Sendable, CaseIterable { case auto, none, gzip, zstd }
public enum IncrementalMode: String, Sendable, CaseIterable { case new_files, none }

public struct FilesSourceConfig: Sendable {
    /// Glob of local files (`data/incoming/orders_*.csv*`); `**` matches any depth.
    public var path: String
    /// Inferred from the extension when not set.
    public var format: FileFormat
    public var compression: CompressionSetting = .auto
    public var csvHeader = true
    public var csvDelimiter: UInt8 = UInt8(ascii: ",")
    public var csvQuote: UInt8 = UInt8(ascii: "\"")
    public var csvNullValues: [String] = ["", "NULL", "null"]
    public var csvColumns: [String]?
    public var recordsPath: String?
    public var incremental: IncrementalMode = .new_files
}

public enum Evolution: String, Sendable, CaseIterable { case evolve, freeze, discard_row, discard_column }

/// Which changes to a pipeline's table schema are accepted, as a schema registry would say it,
/// with the table's readers as the consumers: `backward` (readers of the new schema read every row:
/// added columns must be nullable), `forward` (readers written against an earlier version keep
/// working: no column changes type), `full` (both), `none` (no check).
public enum Compatibility: String, Sendable, CaseIterable { case none, backward, forward, full }

public struct SchemaConfig: Sendable {
    public var declared = Schema()
    /// strptime formats per date/timestamp column.
    public var formats: [String: String] = [:]
    public var infer = true
    public var evolution: Evolution = .evolve
    public var compatibility: Compatibility = .none
    /// Foreign keys for SQL sinks that create their table: column → `table(column)`.
    public var references: [String: String] = [:]
    public init() {}
}

public enum MaskMethod: String, Sendable, CaseIterable { case sha256, redact, hmac }
public enum DedupKeep: String, Sendable, CaseIterable { case first, last }

/// A value for `add_fields`: `now()`, `source_file()`, `run_id()`, or a literal.
public enum FieldExpression: Sendable, Equatable {
    case now, sourceFile, runID, pipelineName
    case literal(Value)
}

public enum TransformConfig: Sendable {
    case select([String])
    case rename([(String, String)])
    case cast([(String, DataType)])
    case addFields([(String, FieldExpression)])
    case mask(fields: [String], method: MaskMethod, key: String?)
    case deduplicate(key: [String], keep: DedupKeep)
    /// Keeps the rows where the expression is true.
    case filter(Expression)
    /// Adds (or replaces) columns computed by expressions, in order.
    case compute([(String, Expression)])

    public var name: String {
        switch self {
        case .filter: "filter"
        case .compute: "compute"
        case .select: "select"
        case .rename: "rename"
        case .cast: "cast"
        case .addFields: "add_fields"
        case .mask: "mask"
        case .deduplicate: "deduplicate"
        }
    }
}

/// A data-quality rule (`quality:` in the pipeline).
public struct QualityRule: Sendable {
    public enum Severity: String, Sendable, CaseIterable { case error, warn }

    public enum Check: Sendable {
        /// Record-level: each record passes or fails.
        case notNull(String)
        /// `againstSink`: keys already in the sink's table count as seen (`scope: sink`).
        case unique([String], againstSink: Bool)
        case range(String, min: Value?, max: Value?)
        case pattern(String, regex: String)
        case acceptedValues(String, [Value])
        case expression(Expression)
        /// Run-level: decided over the whole run.
        case completeness(String, minRatio: Double)
        case freshness(String, maxAge: Double)
        case rowCount(min: Int?, max: Int?, maxChange: Double?, window: Int)
    }

    /// `not_null`, `unique`, … or the expression rule's `name`.
    public var name: String
    public var check: Check
    public var severity: Severity

    public init(name: String, check: Check, severity: Severity = .error) {
        self.name = name
        self.check = check
        self.severity = severity
    }

    /// The field the rule is about (nil for row_count and expressions).
    public var field: String? {
        switch check {
        case .notNull(let f), .range(let f, _, _), .pattern(let f, _), .acceptedValues(let f, _), .completeness(let f, _), .freshness(let f, _): f
        case .unique(let fields, _): fields.joined(separator: ",")
        case .expression, .rowCount: nil
        }
    }

    public var isRunLevel: Bool {
        switch check {
        case .completeness, .freshness, .rowCount: true
        default: false
        }
    }
}

public enum OnErrorAction: String, Sendable, CaseIterable { case quarantine, fail, skip }

public struct OnErrorConfig: Sendable {
    public var action: OnErrorAction = .quarantine
    /// Fail the run when more than this share of records is rejected. Default: no limit.
    public var maxRatio: Double?
    /// Quarantine file template; `{pipeline}` and `{run_id}` are replaced.
    public var quarantinePath = ".sluice/quarantine/{pipeline}/{run_id}.jsonl"
    public init() {}
}

public enum SinkConfig: Sendable {
    case sqlite(SQLiteSinkConfig)
    case files(FilesSinkConfig)
    case postgres(PostgresSinkConfig)

    public var type: String {
        switch self { case .sqlite: "sqlite" case .files: "files" case .postgres: "postgres" }
    }

    public var mode: WriteMode {
        switch self { case .sqlite(let c): c.mode case .files(let c): c.mode case .postgres(let c): c.mode }
    }
}

/// `type: postgres` sink.
public struct PostgresSinkConfig: Sendable {
    public var url: String
    /// `schema.table`; the schema defaults to `public`.
    public var table: String
    public var mode: WriteMode = .append
    /// Create the table and add new columns as needed. Default true.
    public var create = true
    public init(url: String, table: String) { self.url = url; self.table = table }
}

public struct SQLiteSinkConfig: Sendable {
    public var path: String
    public var table: String
    public var mode: WriteMode = .append
    /// Create the table and add new columns as needed. Default true.
    public var create = true
}

public enum OutputFormat: String, Sendable, CaseIterable { case jsonl, csv, parquet }
public enum OutputCompression: String, Sendable, CaseIterable { case none, snappy, gzip, zstd }

public struct FilesSinkConfig: Sendable {
    /// Output directory.
    public var path: String
    public var format: OutputFormat = .jsonl
    public var compression: OutputCompression = .none
    /// Hive-style directory templates such as `year={created_at:%Y}`.
    public var partitionBy: [String] = []
    /// Roll over to a new part file beyond this many bytes. Default 128 MiB.
    public var targetFileSize: Int64 = 128 << 20
    public var mode: WriteMode = .append
    /// Parquet layout (`parquet:` block); nil fields keep the writer's defaults.
    public var parquet = ParquetLayout()
}

/// Sizes of a Parquet file's parts, as configured under a files sink's `parquet:`.
public struct ParquetLayout: Sendable, Equatable {
    /// A row group is written when its columns hold this many bytes before compression. Default 128 MiB.
    public var rowGroupSize: Int64?
    /// Target size of a data page before compression. Default 1 MiB.
    public var pageSize: Int64?
    /// A column's dictionary is always kept up to this size, and past it while values repeat. Default 1 MiB; 0 turns dictionaries off.
    public var dictionarySize: Int64?
    /// The largest a dictionary of repeated values may grow before the column falls back to PLAIN. Default 8 MiB.
    public var maxDictionarySize: Int64?
    public init() {}
}
