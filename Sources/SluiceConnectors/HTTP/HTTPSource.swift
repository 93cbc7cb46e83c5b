import Foundation
import NIOHTTP1
import SluiceConfig
import SluiceCore
import SluiceFormats

/// `type: http`: a REST API read page by page into records.
///
/// The request chain of the URL is one unit: its pages are fetched in order (`HTTPFetcher`:
/// auth, rate limit, retries, circuit breaker) and their records — the array at `records_path` —
/// are parsed with the JSON reader the files source uses and typed with the same typer, so the
/// schema is inferred across pages. The chain ends on an empty page, on `has_more_path` false,
/// past `total_pages_path` or `total_path`, or when no next cursor / link / URL comes; the same
/// request twice is a loop and an error. With `incremental`, the largest `cursor_field` value of
/// the records is saved with them and sent as `param` next run.
///
/// With `for_each` every distinct parent (the `fields` of the records an upstream pipeline
/// loaded) is a unit of its own, with `{field}` filled in the request, its own cursor, and the
/// parent's fields added to its records when the API leaves them out. Up to `concurrency`
/// parents are fetched at once; all of them share the rate limit and the circuit breaker.
public final class HTTPSource: Source, @unchecked Sendable {
    let config: HTTPSourceConfig
    let schemaConfig: SchemaConfig
    let retry: RetryConfig
    /// The parent records, for `for_each` (loaded by the runtime from the upstream sink).
    let parents: [[String: Value]]
    private let lock = NSLock()
    /// Per unit id: the cursor saved by the last run, and the parent it fetches for.
    private var cursors: [String: String] = [:]
    private var parentOf: [String: [String: Value]] = [:]
    private var sharedFetcher: HTTPFetcher?
    static let component = "source http"
    static let cursorKey = "cursor"

    public init(config: HTTPSourceConfig, schema: SchemaConfig, retry: RetryConfig, parents: [[String: Value]] = []) {
        self.config = config
        schemaConfig = schema
        self.retry = retry
        self.parents = parents
    }

    public var unitConcurrency: Int { config.forEach?.concurrency ?? 1 }
    public var unitsRepeatEveryRun: Bool { config.forEach != nil }

    /// One client for all units, so fan-out shares connections, the rate limit and the breaker.
    private var fetcher: HTTPFetcher {
        lock.withLock {
            if let f = sharedFetcher { return f }
            let f = HTTPFetcher(config: config, retry: retry)
            sharedFetcher = f
            return f
        }
    }

    public func close() async {
        let f = lock.withLock { defer { sharedFetcher = nil }; return sharedFetcher }
        await f?.shutdown()
    }

    public func plan(state: [String: String], context: RunContext) async throws -> [WorkUnit] {
        guard let each = config.forEach else {
            let cursor = config.cursorField == nil ? nil : state[Self.cursorKey]
            lock.withLock { cursors = ["http:" + config.url: cursor].compactMapValues { $0 } }
            // Named after where it starts, so a lake gets one set of files per incremental run.
            return [WorkUnit(id: "http:" + config.url, location: config.url, start: cursor.map { "\(Self.cursorKey)=\($0)" })]
        }
        var units: [WorkUnit] = []
        var seen = Set<String>()
        var saved: [String: String] = [:], parentOf: [String: [String: Value]] = [:]
        let run = RequestTemplate.parameters(startedAt: context.startedAt)
        for parent in parents {
            let key = Self.parentKey(each, parent)
            guard seen.insert(key).inserted else { continue }
            let id = "http:\(config.url)#\(key)"
            let cursor = config.cursorField == nil ? nil : state["\(Self.cursorKey):\(key)"]
            saved[id] = cursor
            parentOf[id] = parent
            let location = RequestTemplate.render(config.url, fields: parent.mapValues(\.text), parameters: run, escape: Self.pathEscaped)
            units.append(WorkUnit(id: id, location: location, start: cursor.map { "\(Self.cursorKey)=\($0)" }))
        }
        lock.withLock { cursors = saved; self.parentOf = parentOf }
        return units
    }

    public func read(_ unit: WorkUnit, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        let (cursor, parent) = lock.withLock { (cursors[unit.id], parentOf[unit.id] ?? [:]) }
        let run = RequestTemplate.parameters(startedAt: context.startedAt)
        let fields = parent.mapValues(\.text)
        func fill(_ text: String) -> String { RequestTemplate.render(text, fields: fields, parameters: run) }
        let request = Request(url: RequestTemplate.render(config.url, fields: fields, parameters: run, escape: Self.pathEscaped),
                              params: config.params.map { ($0.0, fill($0.1)) },
                              parts: HTTPFetcher.Parts(headers: config.headers.map { ($0.0, fill($0.1)) },
                                                       body: config.body.map { RequestTemplate.render($0, fields: fields, parameters: run, escape: Self.jsonEscaped) }))
        let added = (config.forEach?.fields ?? []).compactMap { name in parent[name].map { (name, $0) } }
        // Types are inferred across the unit's pages; units read at the same time each have their own typer.
        let typer = BatchTyper(declared: schemaConfig.declared, formats: schemaConfig.formats)
        let highest = try await readChain(fetcher, request: request, typer: typer, since: cursor ?? config.cursorInitial, parentFields: added, emit: emit)
        guard config.cursorField != nil, let highest else { return [] }
        let key = config.forEach.map { "\(Self.cursorKey):" + Self.parentKey($0, parent) } ?? Self.cursorKey
        return [StateEntry(key: key, value: Self.text(highest))]
    }

    /// A parent's identity among the units and in the cursor's state key: `team_id=7,season=2024`.
    static func parentKey(_ each: HTTPSourceConfig.ForEach, _ parent: [String: Value]) -> String {
        each.fields.map { "\($0)=\(parent[$0]?.text ?? "")" }.joined(separator: ",")
    }

    /// One request chain as rendered for its unit.
    struct Request {
        var url: String
        var params: [(String, String)]
        var parts: HTTPFetcher.Parts
    }

    static func pathEscaped(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")) ?? value
    }

    static func jsonEscaped(_ value: String) -> String { String(JSONText.quoted(value).dropFirst().dropLast()) }

    /// Reads the chain's pages; returns the largest `cursor_field` value seen.
    private func readChain(_ fetcher: HTTPFetcher, request: Request, typer: BatchTyper, since: String?, parentFields: [(String, Value)],
                           emit: (SourceBatch) async throws -> Void) async throws -> Value? {
        let p = config.pagination
        var fixed = request.params
        if case .apiKeyQuery(let name, let value) = config.auth { fixed.append((name, value)) }
        if let param = config.cursorParam, let since { fixed.append((param, since)) }
        let base = request.url
        var page = p.startPage, offset = 0, fetched = 0
        var cursor: String?
        var next: String? = Self.url(base, fixed + firstPageParams())
        var seen = Set<String>()
        var highest: Value?
        var prefetched: (url: String, task: Task<HTTPPage, any Error>)?
        // Once a page told how many there are, nothing past the last one is prefetched.
        var lastPage: Int?, total: Int?
        // Retries and circuit changes go to the run's log with the next batch.
        let notices = NoticeBox()
        let note: @Sendable (String) -> Void = { notices.add($0) }
        let parts = request.parts
        defer { prefetched?.task.cancel() }
        func predictedNext(page: Int, offset: Int) -> String? {
            switch p.type {
            case .page_number:
                if let lastPage, page - p.startPage + 1 >= lastPage { return nil }
                return Self.url(base, fixed + [(p.pageParam, "\(page + 1)")] + sizeParams())
            case .offset:
                guard let size = p.pageSize else { return nil }
                if let total, offset + size >= total { return nil }
                return Self.url(base, fixed + [(p.offsetParam, "\(offset + size)"), (p.limitParam, "\(size)")])
            default: return nil
            }
        }
        for number in 1...p.maxPages {
            guard let url = next else { break }
            guard seen.insert(url).inserted else {
                throw SluiceError(.source, "pagination loops: page \(number) would request \(fetcher.redacted(url)) again", component: Self.component,
                                  location: fetcher.redacted(url), fix: "check the pagination settings (cursor_path, next_url_path) against the API's responses")
            }
            // Page numbers and offsets say where the next page is before this one is read: it is
            // fetched meanwhile (and dropped if this page turns out to be the last).
            let response: HTTPPage
            if let ahead = prefetched, ahead.url == url { response = try await ahead.task.value } else { response = try await fetcher.fetch(url, parts: parts, logger: note) }
            prefetched = nil
            if let predicted = predictedNext(page: page, offset: offset) {
                prefetched = (predicted, Task { try await fetcher.fetch(predicted, parts: parts, logger: note) })
            }
            let location = "\(fetcher.redacted(url)) (page \(number))"
            let count = try await records(response.body, location: location, typer: typer, highest: &highest, parentFields: parentFields,
                                          notices: notices.drain(), emit: emit)
            fetched += count
            let json: Any? = needsBodyFields ? try? JSONSerialization.jsonObject(with: Data(response.body)) : nil
            next = nil
            if count == 0 { break }
            if let path = p.hasMorePath, JSONPath.bool(path, in: json) == false { break }
            if let path = p.totalPagesPath, let pages = JSONPath.int(path, in: json) {
                lastPage = pages
                if page - p.startPage + 1 >= pages { break }
            }
            if let path = p.totalPath, let all = JSONPath.int(path, in: json) {
                total = all
                if fetched >= all { break }
            }
            switch p.type {
            case .none:
                break
            case .page_number:
                page += 1
                next = Self.url(base, fixed + [(p.pageParam, "\(page)")] + sizeParams())
            case .offset:
                offset += p.pageSize ?? count
                next = Self.url(base, fixed + [(p.offsetParam, "\(offset)"), (p.limitParam, "\(p.pageSize ?? count)")])
            case .cursor:
                guard let value = JSONPath.string(p.cursorPath ?? "", in: json) else { break }
                if value == cursor {
                    throw SluiceError(.source, "pagination loops: the API sent cursor '\(value)' twice", component: Self.component,
                                      location: location, fix: "check cursor.cursor_path against the API's responses")
                }
                cursor = value
                next = Self.url(base, fixed + [(p.cursorParam, value)] + sizeParams())
            case .link_header:
                next = Self.nextLink(response.headers).map { absolute($0, relativeTo: url) }
            case .next_url:
                next = JSONPath.string(p.nextURLPath ?? "", in: json).map { absolute($0, relativeTo: url) }
            }
            if number == p.maxPages, next != nil {
                throw SluiceError(.source, "more than max_pages (\(p.maxPages)) pages", component: Self.component, location: location,
                                  fix: "raise pagination.max_pages, or check that the API's pages end")
            }
        }
        return highest
    }

    private var needsBodyFields: Bool {
        let p = config.pagination
        return p.hasMorePath != nil || p.totalPagesPath != nil || p.totalPath != nil || p.type == .cursor || p.type == .next_url
    }

    private func firstPageParams() -> [(String, String)] {
        let p = config.pagination
        switch p.type {
        case .page_number: return [(p.pageParam, "\(p.startPage)")] + sizeParams()
        case .offset: return [(p.offsetParam, "0"), (p.limitParam, "\(p.pageSize ?? 100)")]
        case .cursor, .link_header, .next_url: return sizeParams()
        case .none: return []
        }
    }

    private func sizeParams() -> [(String, String)] {
        guard let name = config.pagination.sizeParam, let size = config.pagination.pageSize else { return [] }
        return [(name, "\(size)")]
    }

    /// Parses the page's records into batches; returns how many there were.
    private func records(_ body: [UInt8], location: String, typer: BatchTyper, highest: inout Value?, parentFields: [(String, Value)], notices: [String],
                         emit: (SourceBatch) async throws -> Void) async throws -> Int {
        var notices = notices
        let reader = JSONDocumentReader(reader: MemoryReader(body), location: location,
                                        recordsPath: config.recordsPath.isEmpty ? nil : config.recordsPath)
        var count = 0
        while let raw = try reader.next(maxRows: 16_384, maxBytes: 8 << 20) {
            var (batch, rejected) = typer.type(raw)
            count += batch.rowCount + rejected.count
            for (name, value) in parentFields where batch[name] == nil && batch.rowCount > 0 {
                batch.setColumn(Field(name, value.dataType), Column(repeating: value, count: batch.rowCount))
            }
            if let field = config.cursorField, let column = batch[field] {
                for row in 0..<batch.rowCount where !column.isNull(row) {
                    let v = column.value(at: row)
                    if highest.map({ Self.less($0, v) }) ?? true { highest = v }
                }
            }
            var out = SourceBatch(batch: batch, rejected: rejected, bytesRead: raw.bytesRead)
            out.notices = notices
            notices = []
            try await emit(out)
        }
        return count
    }

    static func less(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.int64(let x), .int64(let y)), (.timestamp(let x), .timestamp(let y)): x < y
        case (.double(let x), .double(let y)): x < y
        default: a.text < b.text
        }
    }

    /// A cursor value as it is saved and sent back: timestamps in ISO 8601 UTC.
    static func text(_ v: Value) -> String {
        if case .timestamp(let micros) = v { return Temporal.formatTimestamp(micros) }
        return v.text
    }

    /// `sluice doctor`: the first page, with the credentials, once (no retries).
    public static func probe(_ config: HTTPSourceConfig, retry: RetryConfig) async -> (ok: Bool, message: String, fix: String?) {
        if let each = config.forEach, !RequestTemplate.fields(in: config.url).isEmpty {
            return (true, "\(config.url) is requested once per record of \(each.pipeline); not probed", nil)
        }
        var once = retry
        once.attempts = 1
        let fetcher = HTTPFetcher(config: config, retry: once)
        let source = HTTPSource(config: config, schema: SchemaConfig(), retry: once)
        var params = config.params
        if case .apiKeyQuery(let name, let value) = config.auth { params.append((name, value)) }
        let url = url(config.url, params + source.firstPageParams())
        let result: (Bool, String, String?)
        do {
            let page = try await fetcher.fetch(url)
            result = (true, "\(fetcher.redacted(url)) answered \(page.status) with \(page.body.count) bytes", nil)
        } catch let e as SluiceError {
            result = (false, e.message, e.fix)
        } catch {
            result = (false, "\(error)", nil)
        }
        await fetcher.shutdown()
        return result
    }

    /// `base` with `params` added to its query.
    static func url(_ base: String, _ params: [(String, String)]) -> String {
        guard var components = URLComponents(string: base) else { return base }
        var items = components.queryItems ?? []
        for (name, value) in params {
            items.removeAll { $0.name == name }
            items.append(URLQueryItem(name: name, value: value))
        }
        components.queryItems = items.isEmpty ? nil : items
        // `+` would read as a space on most servers.
        components.percentEncodedQuery = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        return components.string ?? base
    }

    private func absolute(_ link: String, relativeTo url: String) -> String {
        guard let base = URL(string: url), let resolved = URL(string: link, relativeTo: base) else { return link }
        return resolved.absoluteString
    }

    /// The `rel="next"` target of an RFC 8288 `Link` header.
    static func nextLink(_ headers: HTTPHeaders) -> String? {
        for header in headers[canonicalForm: "Link"] {
            for part in header.split(separator: ",") {
                let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let target = pieces.first, target.hasPrefix("<"), target.hasSuffix(">") else { continue }
                let isNext = pieces.dropFirst().contains { p in
                    let attr = p.replacingOccurrences(of: " ", with: "").lowercased()
                    return attr == "rel=\"next\"" || attr == "rel=next" || (attr.hasPrefix("rel=\"") && attr.dropFirst(5).dropLast().split(separator: " ").contains("next"))
                }
                if isNext { return String(target.dropFirst().dropLast()) }
            }
        }
        return nil
    }
}

/// Messages gathered while requests run (possibly on a prefetching task), handed on in order.
final class NoticeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.withLock { items.append(s) } }
    func drain() -> [String] { lock.withLock { defer { items = [] }; return items } }
}
