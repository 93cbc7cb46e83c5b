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
public final class HTTPSource: Source, @unchecked Sendable {
    let config: HTTPSourceConfig
    let schemaConfig: SchemaConfig
    let retry: RetryConfig
    private let typer: BatchTyper
    private let lock = NSLock()
    private var saved: String?
    static let component = "source http"
    static let cursorKey = "cursor"

    public init(config: HTTPSourceConfig, schema: SchemaConfig, retry: RetryConfig) {
        self.config = config
        schemaConfig = schema
        self.retry = retry
        typer = BatchTyper(declared: schema.declared, formats: schema.formats)
    }

    public func plan(state: [String: String], context: RunContext) async throws -> [WorkUnit] {
        let cursor = config.cursorField == nil ? nil : state[Self.cursorKey]
        lock.withLock { saved = cursor }
        // Named after where it starts, so a lake gets one set of files per incremental run.
        return [WorkUnit(id: "http:" + config.url, location: config.url, start: cursor.map { "\(Self.cursorKey)=\($0)" })]
    }

    public func read(_ unit: WorkUnit, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        let fetcher = HTTPFetcher(config: config, retry: retry)
        do {
            let entries = try await readChain(fetcher, context: context, emit: emit)
            await fetcher.shutdown()
            return entries
        } catch {
            await fetcher.shutdown()
            throw error
        }
    }

    private func readChain(_ fetcher: HTTPFetcher, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        let p = config.pagination
        var fixed = config.params
        if case .apiKeyQuery(let name, let value) = config.auth { fixed.append((name, value)) }
        if let param = config.cursorParam, let since = lock.withLock({ saved }) ?? config.cursorInitial { fixed.append((param, since)) }
        var page = p.startPage, offset = 0, fetched = 0
        var cursor: String?
        var next: String? = Self.url(config.url, fixed + firstPageParams())
        var seen = Set<String>()
        var highest: Value?
        var prefetched: (url: String, task: Task<HTTPPage, any Error>)?
        // Retries and circuit changes go to the run's log with the next batch.
        let notices = NoticeBox()
        let note: @Sendable (String) -> Void = { notices.add($0) }
        defer { prefetched?.task.cancel() }
        func predictedNext(page: Int, offset: Int) -> String? {
            switch p.type {
            case .page_number: Self.url(config.url, fixed + [(p.pageParam, "\(page + 1)")] + sizeParams())
            case .offset: p.pageSize.map { Self.url(config.url, fixed + [(p.offsetParam, "\(offset + $0)"), (p.limitParam, "\($0)")]) }
            default: nil
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
            if let ahead = prefetched, ahead.url == url { response = try await ahead.task.value } else { response = try await fetcher.fetch(url, logger: note) }
            prefetched = nil
            if let predicted = predictedNext(page: page, offset: offset) {
                prefetched = (predicted, Task { try await fetcher.fetch(predicted, logger: note) })
            }
            let location = "\(fetcher.redacted(url)) (page \(number))"
            let count = try await records(response.body, location: location, highest: &highest, notices: notices.drain(), emit: emit)
            fetched += count
            let json: Any? = needsBodyFields ? try? JSONSerialization.jsonObject(with: Data(response.body)) : nil
            next = nil
            if count == 0 { break }
            if let path = p.hasMorePath, JSONPath.bool(path, in: json) == false { break }
            if let path = p.totalPagesPath, let pages = JSONPath.int(path, in: json), page - p.startPage + 1 >= pages { break }
            if let path = p.totalPath, let total = JSONPath.int(path, in: json), fetched >= total { break }
            switch p.type {
            case .none:
                break
            case .page_number:
                page += 1
                next = Self.url(config.url, fixed + [(p.pageParam, "\(page)")] + sizeParams())
            case .offset:
                offset += p.pageSize ?? count
                next = Self.url(config.url, fixed + [(p.offsetParam, "\(offset)"), (p.limitParam, "\(p.pageSize ?? count)")])
            case .cursor:
                guard let value = JSONPath.string(p.cursorPath ?? "", in: json) else { break }
                if value == cursor {
                    throw SluiceError(.source, "pagination loops: the API sent cursor '\(value)' twice", component: Self.component,
                                      location: location, fix: "check cursor.cursor_path against the API's responses")
                }
                cursor = value
                next = Self.url(config.url, fixed + [(p.cursorParam, value)] + sizeParams())
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
        guard config.cursorField != nil, let highest else { return [] }
        return [StateEntry(key: Self.cursorKey, value: Self.text(highest))]
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
    private func records(_ body: [UInt8], location: String, highest: inout Value?, notices: [String],
                         emit: (SourceBatch) async throws -> Void) async throws -> Int {
        var notices = notices
        let reader = JSONDocumentReader(reader: MemoryReader(body), location: location,
                                        recordsPath: config.recordsPath.isEmpty ? nil : config.recordsPath)
        var count = 0
        while let raw = try reader.next(maxRows: 16_384, maxBytes: 8 << 20) {
            let (batch, rejected) = typer.type(raw)
            count += batch.rowCount + rejected.count
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
