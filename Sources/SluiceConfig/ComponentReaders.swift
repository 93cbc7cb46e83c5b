import Foundation
import SluiceCore

/// The connector types the contract names that this version does not provide yet, with a word on each.
let plannedSourceTypes = ["sqlite", "kafka"]
let plannedSinkTypes = ["kafka"]

enum SourceReader {
    static func read(_ node: ConfigNode) -> SourceConfig? {
        guard let pairs = node.pairs() else { return nil }
        guard let typeNode = pairs.first(where: { $0.key == "type" })?.value, let type = typeNode.string() else {
            node.problem("\(node.path): missing required key 'type'")
            return nil
        }
        switch type {
        case "files": return readFiles(node).map { .files($0) }
        case "postgres": return readPostgres(node).map { .postgres($0) }
        case "http": return readHTTP(node).map { .http($0) }
        case "webhook": return WebhookReader.read(node).map { .webhook($0) }
        default:
            if plannedSourceTypes.contains(type) {
                typeNode.problem("\(typeNode.path): source type '\(type)' is not available in this version of sluice (available: files, postgres, http, webhook)")
            } else {
                typeNode.problem("\(typeNode.path): unknown source type '\(type)'" + Spelling.didYouMean(type, ["files", "postgres", "http", "webhook"] + plannedSourceTypes))
            }
            return nil
        }
    }

    /// Object-store URLs (`s3://bucket/prefix/`) are part of the contract but not of this version:
    /// refused, rather than taken for a local folder named `s3:`.
    static func checkLocal(_ path: String, _ node: ConfigNode?) {
        guard let scheme = path.range(of: "://").map({ String(path[..<$0.lowerBound]) }), !scheme.isEmpty,
              scheme.allSatisfy({ $0.isLetter || $0.isNumber }) else { return }
        node?.problem("\(node?.path ?? "path"): \(scheme):// paths are not available in this version of sluice; use a local directory (a mounted bucket works)")
    }

    static func readFiles(_ node: ConfigNode) -> FilesSourceConfig? {
        guard let o = node.object(allowed: ["type", "path", "format", "compression", "csv", "records_path", "incremental"]),
              let path = o.required("path")?.string() else { return nil }
        checkLocal(path, o["path"])
        let format: FileFormat
        if let f = o["format"]?.oneOf(FileFormat.self, FileFormat.allCases) {
            format = f
        } else if let guessed = guessFormat(path) {
            format = guessed
        } else {
            node.problem("\(node.path): cannot tell the format from '\(path)'; set format: csv | jsonl | json")
            return nil
        }
        var c = FilesSourceConfig(path: path, format: format)
        if let v = o["compression"]?.oneOf(CompressionSetting.self, CompressionSetting.allCases) { c.compression = v }
        if let v = o["incremental"]?.oneOf(IncrementalMode.self, IncrementalMode.allCases) { c.incremental = v }
        c.recordsPath = o["records_path"]?.string()
        if let csv = o["csv"], let co = csv.object(allowed: ["header", "delimiter", "quote", "null_values", "columns"]) {
            if let v = co["header"]?.bool() { c.csvHeader = v }
            if let d = co["delimiter"], let v = singleByte(d) { c.csvDelimiter = v }
            if let q = co["quote"], let v = singleByte(q) { c.csvQuote = v }
            if let v = co["null_values"]?.strings() { c.csvNullValues = v }
            if let v = co["columns"]?.strings() { c.csvColumns = v }
            if c.csvDelimiter == c.csvQuote { csv.problem("\(csv.path): delimiter and quote must differ") }
        }
        return c
    }

    static func readPostgres(_ node: ConfigNode) -> PostgresSourceConfig? {
        guard let o = node.object(allowed: ["type", "url", "table", "query", "mode", "cursor_field", "primary_key", "batch_size", "tables",
                                            "slot", "snapshot", "poll_interval", "heartbeat", "replica_identity"]),
              let url = o.required("url")?.string() else { return nil }
        var c = PostgresSourceConfig(url: url)
        c.table = o["table"]?.string()
        c.query = o["query"]?.string()
        if let v = o["mode"]?.oneOf(PostgresReadMode.self, PostgresReadMode.allCases) { c.mode = v }
        c.cursorField = o["cursor_field"]?.string()
        if let pk = o["primary_key"] { c.primaryKey = pk.strings() ?? pk.string().map { [$0] } ?? [] }
        if let b = o["batch_size"]?.int(min: 1) { c.batchSize = min(b, 1_000_000) }
        if c.mode == .cdc { return readChangeCapture(node, o, c) }
        for key in ["tables", "slot", "snapshot", "poll_interval", "heartbeat", "replica_identity"] where o[key] != nil {
            o[key]?.problem("\(node.path).\(key): only used with mode: cdc")
        }
        switch (c.table, c.query) {
        case (nil, nil): node.problem("\(node.path): set either table: (schema.table) or query: (a SELECT)")
        case (.some, .some): node.problem("\(node.path): set table: or query:, not both")
        default: break
        }
        if c.mode == .incremental, c.cursorField == nil {
            node.problem("\(node.path): mode: incremental needs cursor_field: (the column that grows, such as updated_at)")
        }
        if c.mode == .full, let f = o["cursor_field"] { f.problem("\(f.path): only used with mode: incremental") }
        if c.query != nil, c.mode == .incremental, c.primaryKey.isEmpty {
            node.problem("\(node.path): an incremental query needs primary_key: (the columns that break cursor ties)")
        }
        return c
    }

    /// `mode: cdc`: `tables` (or one `table`), the slot and how the stream starts.
    static func readChangeCapture(_ node: ConfigNode, _ o: ObjectReader, _ base: PostgresSourceConfig) -> PostgresSourceConfig? {
        var c = base
        if let t = o["tables"] { c.tables = t.strings() ?? t.string().map { [$0] } ?? [] }
        if let t = c.table { c.tables.append(t); c.table = nil }
        if c.tables.isEmpty { node.problem("\(node.path): mode: cdc needs tables: [schema.table, …]") }
        if o["query"] != nil { o["query"]?.problem("\(node.path).query: mode: cdc reads tables, not queries") }
        if o["cursor_field"] != nil { o["cursor_field"]?.problem("\(node.path).cursor_field: only used with mode: incremental") }
        if let s = o["slot"], let name = s.string() {
            // Slot names are plain identifiers: lower-case letters, digits and underscores.
            if name.range(of: "^[a-z0-9_]{1,63}$", options: .regularExpression) == nil {
                s.problem("\(s.path): a replication slot name has only lower-case letters, digits and underscores (at most 63)")
            } else {
                c.slot = name
            }
        }
        if let v = o["snapshot"]?.oneOf(SnapshotMode.self, SnapshotMode.allCases) { c.snapshot = v }
        if let v = o["poll_interval"]?.duration() { c.pollInterval = max(v, 0.01) }
        if let v = o["heartbeat"]?.duration() { c.heartbeat = v }
        if let r = o["replica_identity"], let v = r.string() {
            switch v {
            case "full": c.fullReplicaIdentity = true
            case "keep": c.fullReplicaIdentity = false
            default: r.problem("\(r.path): must be full (set REPLICA IDENTITY FULL on the tables) or keep (leave it as it is)")
            }
        }
        return c
    }

    static func readHTTP(_ node: ConfigNode) -> HTTPSourceConfig? {
        guard let o = node.object(allowed: ["type", "url", "method", "params", "headers", "body", "auth", "records_path", "pagination",
                                            "incremental", "rate_limit", "circuit_breaker", "timeout", "max_response", "for_each"]),
              let url = o.required("url")?.string() else { return nil }
        if !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            o["url"]?.problem("\(node.path).url: '\(url)' is not an http:// or https:// URL")
        }
        var c = HTTPSourceConfig(url: url)
        if let m = o["method"]?.string() {
            if ["GET", "POST"].contains(m.uppercased()) { c.method = m.uppercased() } else { o["method"]?.problem("\(node.path).method: GET or POST") }
        }
        c.params = scalarPairs(o["params"])
        c.headers = scalarPairs(o["headers"])
        if let b = o["body"] { c.body = b.jsonText() }
        c.recordsPath = o["records_path"]?.string() ?? ""
        if let v = o["timeout"]?.duration() { c.timeout = max(v, 0.1) }
        if let v = o["max_response"]?.size() { c.maxResponseBytes = Int(max(v, 1024)) }
        if let f = o["for_each"], let fo = f.object(allowed: ["pipeline", "field", "fields", "concurrency"]),
           let pipeline = fo.required("pipeline")?.string() {
            let fields = fo["fields"]?.strings() ?? fo["field"]?.string().map { [$0] } ?? []
            if fields.isEmpty { f.problem("\(f.path): name the parent field to fan out over (field: team_id)") }
            var each = HTTPSourceConfig.ForEach(pipeline: pipeline, fields: fields)
            if let v = fo["concurrency"]?.int(min: 1) { each.concurrency = min(v, 256) }
            c.forEach = each
        }
        if let a = o["auth"] { c.auth = readAuth(a) }
        if let p = o["pagination"] { c.pagination = readPagination(p) }
        if let i = o["incremental"], let io = i.object(allowed: ["cursor_field", "param", "initial"]) {
            c.cursorField = io.required("cursor_field")?.string()
            c.cursorParam = io.required("param")?.string()
            c.cursorInitial = io["initial"]?.string()
        }
        if let r = o["rate_limit"], let ro = r.object(allowed: ["requests_per_second", "burst"]) {
            if let v = ro["requests_per_second"]?.double() {
                if v > 0 { c.requestsPerSecond = v } else { ro["requests_per_second"]?.problem("\(r.path).requests_per_second: must be above 0") }
            }
            if let v = ro["burst"]?.int(min: 1) { c.burst = v }
        }
        if let b = o["circuit_breaker"], let bo = b.object(allowed: ["failures", "cool_down"]) {
            if let v = bo["failures"]?.int(min: 1) { c.circuitFailures = v }
            if let v = bo["cool_down"]?.duration() { c.circuitCoolDown = v }
        }
        checkPlaceholders(c, node: node)
        return c
    }

    /// `{field}` needs `for_each` (and names one of its fields); `{{ name }}` a known run parameter.
    static func checkPlaceholders(_ c: HTTPSourceConfig, node: ConfigNode) {
        let texts = [c.url, c.body ?? ""] + c.params.map(\.1) + c.headers.map(\.1)
        for name in Set(texts.flatMap(RequestTemplate.parameters(in:))) where !RequestTemplate.runParameters.contains(name) {
            node.problem("\(node.path): unknown run parameter {{ \(name) }}" + Spelling.didYouMean(name, RequestTemplate.runParameters))
        }
        let fields = Set(texts.flatMap(RequestTemplate.fields(in:)))
        guard !fields.isEmpty else { return }
        guard let each = c.forEach else {
            node.problem("\(node.path): {\(fields.sorted()[0])} is filled from a parent record; add for_each: { pipeline: ..., field: \(fields.sorted()[0]) }")
            return
        }
        for f in fields.sorted() where !each.fields.contains(f) {
            node.problem("\(node.path): {\(f)} is not a for_each field (fields: \(each.fields.joined(separator: ", ")))")
        }
    }

    /// `{key: scalar}` as ordered text pairs (`${VAR}` already interpolated).
    static func scalarPairs(_ node: ConfigNode?) -> [(String, String)] {
        guard let node, let pairs = node.pairs() else { return [] }
        return pairs.compactMap { p in p.value.string().map { (p.key, $0) } }
    }

    static func readAuth(_ node: ConfigNode) -> HTTPSourceConfig.Auth? {
        guard let o = node.object(allowed: ["type", "token", "header", "query", "value", "username", "password", "token_url", "client_id",
                                            "client_secret", "scope"]),
              let type = o.required("type")?.string() else { return nil }
        switch type {
        case "bearer":
            return o.required("token")?.string().map { .bearer(token: $0) }
        case "api_key":
            guard let value = o.required("value")?.string() else { return nil }
            if let h = o["header"]?.string() { return .apiKeyHeader(name: h, value: value) }
            if let q = o["query"]?.string() { return .apiKeyQuery(name: q, value: value) }
            node.problem("\(node.path): api_key needs header: (a header name) or query: (a parameter name)")
            return nil
        case "basic":
            guard let u = o.required("username")?.string(), let p = o.required("password")?.string() else { return nil }
            return .basic(username: u, password: p)
        case "oauth2_client_credentials":
            guard let t = o.required("token_url")?.string(), let id = o.required("client_id")?.string(),
                  let secret = o.required("client_secret")?.string() else { return nil }
            return .oauth2ClientCredentials(tokenURL: t, clientID: id, clientSecret: secret, scope: o["scope"]?.string())
        default:
            o["type"]?.problem("\(node.path).type: unknown auth type '\(type)'"
                               + Spelling.didYouMean(type, ["bearer", "api_key", "basic", "oauth2_client_credentials"]))
            return nil
        }
    }

    static func readPagination(_ node: ConfigNode) -> HTTPSourceConfig.Pagination {
        var p = HTTPSourceConfig.Pagination()
        guard let o = node.object(allowed: ["type", "page_param", "start_page", "size_param", "page_size", "offset_param", "limit_param",
                                            "cursor", "next_url", "has_more_path", "total_pages_path", "total_path", "max_pages"]) else { return p }
        if let t = o.required("type")?.oneOf(HTTPSourceConfig.PaginationType.self, HTTPSourceConfig.PaginationType.allCases) { p.type = t }
        if let v = o["page_param"]?.string() { p.pageParam = v }
        if let v = o["start_page"]?.int(min: 0) { p.startPage = v }
        if let v = o["size_param"]?.string() { p.sizeParam = v }
        if let v = o["page_size"]?.int(min: 1) { p.pageSize = v }
        if let v = o["offset_param"]?.string() { p.offsetParam = v }
        if let v = o["limit_param"]?.string() { p.limitParam = v }
        if let c = o["cursor"], let co = c.object(allowed: ["cursor_path", "cursor_param"]) {
            p.cursorPath = co.required("cursor_path")?.string()
            if let v = co["cursor_param"]?.string() { p.cursorParam = v }
        }
        if let n = o["next_url"], let no = n.object(allowed: ["next_url_path"]) { p.nextURLPath = no.required("next_url_path")?.string() }
        p.hasMorePath = o["has_more_path"]?.string()
        p.totalPagesPath = o["total_pages_path"]?.string()
        p.totalPath = o["total_path"]?.string()
        if let v = o["max_pages"]?.int(min: 1) { p.maxPages = v }
        switch p.type {
        case .cursor where p.cursorPath == nil: node.problem("\(node.path): cursor pagination needs cursor: { cursor_path: … }")
        case .next_url where p.nextURLPath == nil: node.problem("\(node.path): next_url pagination needs next_url: { next_url_path: … }")
        case .offset where p.pageSize == nil: node.problem("\(node.path): offset pagination needs page_size: (the limit per request)")
        default: break
        }
        return p
    }

    static func singleByte(_ node: ConfigNode) -> UInt8? {
        guard var s = node.string() else { return nil }
        if s == "\\t" || s == "tab" { s = "\t" }
        guard s.utf8.count == 1 else {
            node.problem("\(node.path): must be a single ASCII character, found '\(s)'")
            return nil
        }
        return s.utf8.first
    }

    static func guessFormat(_ path: String) -> FileFormat? {
        var name = path.lowercased()
        for ext in [".gz", ".gzip", ".zst", ".zstd", "*"] where name.hasSuffix(ext) { name.removeLast(ext.count) }
        if name.hasSuffix(".csv") || name.hasSuffix(".tsv") { return .csv }
        if name.hasSuffix(".jsonl") || name.hasSuffix(".ndjson") { return .jsonl }
        if name.hasSuffix(".json") { return .json }
        if name.hasSuffix(".parquet") { return .parquet }
        return nil
    }
}

enum SinkReader {
    static func read(_ node: ConfigNode) -> SinkConfig? {
        guard let pairs = node.pairs() else { return nil }
        guard let typeNode = pairs.first(where: { $0.key == "type" })?.value, let type = typeNode.string() else {
            node.problem("\(node.path): missing required key 'type'")
            return nil
        }
        switch type {
        case "sqlite":
            guard let o = node.object(allowed: ["type", "path", "table", "mode", "create"]),
                  let path = o.required("path")?.string(), let table = o.required("table")?.string() else { return nil }
            if table.isEmpty || table.hasPrefix("_sluice") { o["table"]?.problem("\(node.path).table: '\(table)' is not a usable table name") }
            var c = SQLiteSinkConfig(path: path, table: table)
            if let m = o["mode"]?.oneOf(WriteMode.self, WriteMode.allCases) { c.mode = m }
            if let v = o["create"]?.bool() { c.create = v }
            return .sqlite(c)
        case "files":
            guard let o = node.object(allowed: ["type", "path", "format", "compression", "partition_by", "target_file_size", "mode", "parquet"]),
                  let path = o.required("path")?.string() else { return nil }
            SourceReader.checkLocal(path, o["path"])
            var c = FilesSinkConfig(path: path)
            if let v = o["format"]?.oneOf(OutputFormat.self, OutputFormat.allCases) { c.format = v }
            if let comp = o["compression"] {
                if let v = comp.oneOf(OutputCompression.self, OutputCompression.allCases) { c.compression = v }
                if c.compression == .snappy, c.format != .parquet {
                    comp.problem("\(comp.path): snappy is for parquet files; jsonl and csv take none, gzip or zstd")
                }
            } else if c.format == .parquet {
                c.compression = .zstd   // pages are always worth compressing
            }
            if let v = o["partition_by"]?.strings() { c.partitionBy = v }
            if let v = o["target_file_size"]?.size() { c.targetFileSize = max(v, 1024) }
            if let m = o["mode"]?.oneOf(WriteMode.self, WriteMode.allCases) { c.mode = m }
            if let p = o["parquet"] {
                if c.format != .parquet { p.problem("\(p.path): parquet options need format: parquet") }
                if let po = p.object(allowed: ["row_group_size", "page_size", "dictionary_size", "max_dictionary_size"]) {
                    func size(_ key: String, atLeast min: Int64) -> Int64? {
                        guard let n = po[key], let v = n.size() else { return nil }
                        guard v >= min else { n.problem("\(n.path): must be at least \(min) bytes"); return nil }
                        return v
                    }
                    c.parquet.rowGroupSize = size("row_group_size", atLeast: 1024)
                    c.parquet.pageSize = size("page_size", atLeast: 1024)
                    c.parquet.dictionarySize = size("dictionary_size", atLeast: 0)
                    c.parquet.maxDictionarySize = size("max_dictionary_size", atLeast: 0)
                }
            }
            return .files(c)
        case "postgres":
            guard let o = node.object(allowed: ["type", "url", "table", "mode", "create"]),
                  let url = o.required("url")?.string(), let table = o.required("table")?.string() else { return nil }
            let name = table.split(separator: ".").last.map(String.init) ?? table
            if name.isEmpty || name.hasPrefix("_sluice") { o["table"]?.problem("\(node.path).table: '\(table)' is not a usable table name") }
            var c = PostgresSinkConfig(url: url, table: table)
            if let m = o["mode"]?.oneOf(WriteMode.self, WriteMode.allCases) { c.mode = m }
            if let v = o["create"]?.bool() { c.create = v }
            return .postgres(c)
        default:
            if plannedSinkTypes.contains(type) {
                typeNode.problem("\(typeNode.path): sink type '\(type)' is not available in this version of sluice (available: sqlite, files, postgres)")
            } else {
                typeNode.problem("\(typeNode.path): unknown sink type '\(type)'" + Spelling.didYouMean(type, ["sqlite", "files", "postgres"] + plannedSinkTypes))
            }
            return nil
        }
    }
}

enum SchemaReader {
    static func read(_ node: ConfigNode) -> SchemaConfig {
        var c = SchemaConfig()
        guard let o = node.object(allowed: ["columns", "infer", "evolution", "compatibility"]) else { return c }
        if let v = o["compatibility"]?.oneOf(Compatibility.self, Compatibility.allCases) { c.compatibility = v }
        if let v = o["infer"]?.bool() { c.infer = v }
        if let v = o["evolution"]?.oneOf(Evolution.self, Evolution.allCases) { c.evolution = v }
        if let cols = o["columns"], let pairs = cols.pairs() {
            var fields: [Field] = []
            for (name, _, spec) in pairs {
                guard let so = spec.object(allowed: ["type", "primary_key", "nullable", "format", "references"]) else { continue }
                if let r = so["references"], let text = r.string() {
                    if text.range(of: #"^[A-Za-z_][A-Za-z0-9_.]*\([A-Za-z_][A-Za-z0-9_]*\)$"#, options: .regularExpression) == nil {
                        r.problem("\(r.path): write the referenced table and column as table(column), such as teams(team_id)")
                    } else {
                        c.references[name] = text
                    }
                }
                guard let typeNode = so.required("type"), let text = typeNode.string() else { continue }
                guard let type = DataType(parsing: text) else {
                    typeNode.problem("\(typeNode.path): unknown type '\(text)'" + Spelling.didYouMean(text, DataType.documentedNames))
                    continue
                }
                let pk = so["primary_key"]?.bool() ?? false
                let nullable = so["nullable"]?.bool() ?? !pk
                if let f = so["format"]?.string() {
                    if type == .date || type == .timestamp { c.formats[name] = f } else { so["format"]?.problem("\(spec.path).format: only date and timestamp columns take a format") }
                }
                fields.append(Field(name, type, nullable: nullable, primaryKey: pk))
            }
            c.declared = Schema(fields)
        }
        return c
    }
}

enum TransformReader {
    static let names = ["select", "rename", "cast", "add_fields", "mask", "deduplicate", "filter", "compute"]
    static let planned = ["flatten"]

    static func read(_ node: ConfigNode, declared: Schema = Schema([])) -> [TransformConfig] {
        guard let items = node.list() else { return [] }
        // Column types as the transforms change them, for checking expressions.
        var known = declared
        return items.compactMap { item -> TransformConfig? in
            guard let pairs = item.pairs() else { return nil }
            guard pairs.count == 1, let (name, keyMark, body) = pairs.first else {
                item.problem("\(item.path): each transform is one key (\(names.joined(separator: ", ")))")
                return nil
            }
            switch name {
            case "select": return body.strings().map { .select($0) }
            case "rename":
                return body.pairs().map { .rename($0.compactMap { k, _, v in v.string().map { (k, $0) } }) }
            case "cast":
                return body.pairs().map { pairs in
                    .cast(pairs.compactMap { k, _, v in
                        guard let t = v.string() else { return nil }
                        guard let type = DataType(parsing: t) else {
                            v.problem("\(v.path): unknown type '\(t)'" + Spelling.didYouMean(t, DataType.documentedNames))
                            return nil
                        }
                        return (k, type)
                    })
                }
            case "add_fields":
                return body.pairs().map { pairs in
                    .addFields(pairs.compactMap { k, _, v in v.string().flatMap { parseExpression($0, v) }.map { (k, $0) } })
                }
            case "mask":
                guard let o = body.object(allowed: ["fields", "method", "key"]) else { return nil }
                let fields = o.required("fields")?.strings() ?? []
                let method = o["method"]?.oneOf(MaskMethod.self, MaskMethod.allCases) ?? .sha256
                let key = o["key"]?.string()
                if method == .hmac, key == nil { body.problem("\(body.path): method hmac needs a key (e.g. key: ${MASK_KEY})") }
                return .mask(fields: fields, method: method, key: key)
            case "filter":
                guard let text = body.string() else { return nil }
                return ExpressionReader.parse(text, body, declared: known, expecting: .bool).map { .filter($0) }
            case "compute":
                guard let pairs = body.pairs() else { return nil }
                var computed: [(String, SluiceCore.Expression)] = []
                for (name, _, value) in pairs {
                    guard let text = value.string(), let e = ExpressionReader.parse(text, value, declared: known) else { continue }
                    computed.append((name, e))
                    if let type = try? e.check({ known[$0]?.type }) { known.append(Field(name, type)) }
                }
                return .compute(computed)
            case "deduplicate":
                guard let o = body.object(allowed: ["key", "keep"]), let key = o.required("key")?.strings() else { return nil }
                return .deduplicate(key: key, keep: o["keep"]?.oneOf(DedupKeep.self, DedupKeep.allCases) ?? .first)
            default:
                if planned.contains(name) {
                    item.context.problem("\(item.path): the '\(name)' transform needs the expression language, which this version does not have", at: keyMark)
                } else {
                    item.context.problem("\(item.path): unknown transform '\(name)'" + Spelling.didYouMean(name, names + planned), at: keyMark)
                }
                return nil
            }
        }
    }

    /// `now()`, `source_file()`, `run_id()`, `pipeline()`, `'text'`, numbers, true/false, null.
    static func parseExpression(_ text: String, _ node: ConfigNode) -> FieldExpression? {
        let t = text.trimmingCharacters(in: .whitespaces)
        switch t.lowercased() {
        case "now()": return .now
        case "source_file()": return .sourceFile
        case "run_id()": return .runID
        case "pipeline()": return .pipelineName
        case "true": return .literal(.bool(true))
        case "false": return .literal(.bool(false))
        case "null": return .literal(.null)
        default: break
        }
        if t.count >= 2, t.hasPrefix("'"), t.hasSuffix("'") {
            return .literal(.string(String(t.dropFirst().dropLast()).replacingOccurrences(of: "''", with: "'")))
        }
        if let i = Int64(t) { return .literal(.int64(i)) }
        if let d = Double(t) { return .literal(.double(d)) }
        node.problem("\(node.path): '\(t)' is not a value: use now(), source_file(), run_id(), a number, or a quoted string like \"'eu'\"")
        return nil
    }
}

/// The `depends_on` graph.
public enum PipelineGraph {
    /// A cycle as a list of names (first repeated at the end), if there is one.
    public static func findCycle(_ pipelines: [PipelineConfig]) -> [String]? {
        findCycle(pipelines.map { ($0.name, $0.dependsOn) })
    }

    static func findCycle(_ edges: [(String, [String])]) -> [String]? {
        let deps = Dictionary(edges, uniquingKeysWith: { a, _ in a })
        var state: [String: Int] = [:]   // 1 visiting, 2 done
        var stack: [String] = []
        func visit(_ n: String) -> [String]? {
            if state[n] == 2 { return nil }
            if state[n] == 1 { return Array(stack[stack.firstIndex(of: n)!...]) + [n] }
            state[n] = 1
            stack.append(n)
            for d in deps[n] ?? [] where deps[d] != nil {
                if let c = visit(d) { return c }
            }
            stack.removeLast()
            state[n] = 2
            return nil
        }
        for (name, _) in edges { if let c = visit(name) { return c } }
        return nil
    }

    /// The named pipelines plus everything upstream of them, in file order.
    public static func closure(of names: [String], in pipelines: [PipelineConfig]) -> [PipelineConfig] {
        let byName = Dictionary(pipelines.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var wanted = Set<String>()
        func add(_ n: String) {
            guard wanted.insert(n).inserted, let p = byName[n] else { return }
            p.dependsOn.forEach(add)
        }
        names.forEach(add)
        return pipelines.filter { wanted.contains($0.name) }
    }
}

extension FileFormat {
    /// The format a file's name suggests (`orders.csv.gz` → csv), as the files source guesses it.
    public static func guessed(from path: String) -> FileFormat? { SourceReader.guessFormat(path) }
}
