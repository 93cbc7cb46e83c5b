import CZlib
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The endpoints of the test API and what they do.
///
/// - `GET /items`: `total` records (default `--records`), paginated by `style`:
///   - `page_number` (default): `page` (from 1), `per_page` → `{"data": […], "meta": {"page", "total_pages", "total", "has_more"}}`
///   - `offset`: `offset`, `limit` → `{"results": […], "total"}`
///   - `cursor`: `cursor`, `limit` → `{"items": […], "next_cursor": "…" | null}`; `loop=1` repeats a cursor
///   - `link_header`: `page`, `per_page` → a top-level array and `Link: <…>; rel="next"`
///   - `next_url`: `page`, `per_page` → `{"data": […], "links": {"next": "http://…" | null}}`
///   `since` keeps records updated after it (ISO 8601). Misbehaviour: `fail_rate` (share of
///   requests answered 500 or 503), `rate` (requests per second allowed, beyond which 429 with
///   `Retry-After: 1`), `slow_ms`, `malformed_page` (that page is cut-off JSON), `drop_page` (the
///   connection drops in the middle of that page), `auth` (`bearer`: `Authorization: Bearer
///   secret-token`; `api_key`: header `X-API-Key: k1` or query `api_key=k1`; `basic`: user
///   `sluice`, password `pa55`; `oauth`: a token from `/oauth/token`).
/// - `POST /oauth/token`: client credentials (`client_id=sluice`, `client_secret=s3cret`, form
///   body or basic auth) → `{"access_token", "token_type", "expires_in"}`; a token stops working
///   after `--token-ttl` requests (401, as if it expired).
/// - `GET /status/{code}`: that status, with a JSON error body; `GET /html`: a 200 HTML page.
/// - `GET /teams?count=30`: teams as a top-level array; `GET /teams/{id}/players?page=`: 2 pages of 5
///   players each (`{"data": […], "meta": {"total_pages": 2}}`); `GET /teams/{id}/games?page=`:
///   2 pages of 3 games; `GET /games/{id}/players?page=`: 2 pages of 4 players (without the game's
///   id, as nested resources often are). These take `slow_ms` too.
/// - `GET|POST /echo/…`: one record with the request's method, path, query, `X-Team` header and body.
/// - `gzip=1` on `/items`: the response is gzip-compressed when the client accepts it.
/// - `POST /_config` `{"fail_teams": [7]}`: those teams' games and players answer 500 until changed.
/// - `GET /_stats`: requests so far, per path, the most in any one second, tokens issued, gzipped responses;
///   `POST /_reset` clears them.
final class TestAPI: @unchecked Sendable {
    let records: Int
    let tokenTTL: Int
    private let lock = NSLock()
    private var requests: [String: Int] = [:]
    private var times: [Double] = []
    private var tokens: [String: Int] = [:]
    private var issued = 0
    private var gzipped = 0
    private var failTeams: Set<Int> = []
    private var rng = SystemRandomNumberGenerator()

    init(records: Int, tokenTTL: Int) {
        self.records = records
        self.tokenTTL = tokenTTL
    }

    func routes(_ router: Router<BasicRequestContext>) {
        router.get("/items") { request, _ in try await self.items(request) }
        router.get("/echo/**") { request, _ in try await self.echo(request) }
        router.post("/echo/**") { request, _ in try await self.echo(request) }
        router.post("/oauth/token") { request, _ in try await self.token(request) }
        router.get("/html") { request, _ in
            self.count(request)
            return Response(status: .ok, headers: [.contentType: "text/html"], body: .init(byteBuffer: ByteBuffer(string: "<html><body>Maintenance</body></html>")))
        }
        router.get("/status/:code") { request, context in
            self.count(request)
            let code = context.parameters.get("code", as: Int.self) ?? 500
            return Self.error(HTTPResponse.Status(code: code), "status \(code) as asked")
        }
        router.get("/teams") { request, _ in
            self.count(request)
            let teams = max(1, request.uri.queryParameters.get("count", as: Int.self) ?? 30)
            return Self.json((1...teams).map { "{\"team_id\":\($0),\"name\":\"Team \($0)\"}" }.joined(separator: ",").wrapped("[", "]"))
        }
        router.get("/teams/:team/games") { request, context in
            try await self.slow(request)
            let team = context.parameters.get("team", as: Int.self) ?? 0
            if self.locked({ self.failTeams.contains(team) }) { return Self.error(.internalServerError, "team \(team) is broken") }
            return Self.twoPages(request, perPage: 3) { "{\"game_id\":\(team * 100 + $0 + 1),\"team_id\":\(team),\"week\":\($0 + 1)}" }
        }
        router.get("/games/:game/players") { request, context in
            try await self.slow(request)
            let game = context.parameters.get("game", as: Int.self) ?? 0
            return Self.twoPages(request, perPage: 4) { "{\"player_id\":\(game * 10 + $0),\"name\":\"Player \(game * 10 + $0)\"}" }
        }
        router.get("/teams/:team/players") { request, context in
            try await self.slow(request)
            let team = context.parameters.get("team", as: Int.self) ?? 0
            if self.locked({ self.failTeams.contains(team) }) { return Self.error(.internalServerError, "team \(team) is broken") }
            return Self.twoPages(request, perPage: 5) { "{\"player_id\":\(team * 100 + $0),\"team_id\":\(team),\"name\":\"Player \(team * 100 + $0)\"}" }
        }
        router.post("/_config") { request, _ in
            let body = try await request.body.collect(upTo: 1 << 16)
            let object = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] ?? [:]
            self.locked { self.failTeams = Set((object["fail_teams"] as? [Int]) ?? []) }
            return Self.json("{}")
        }
        router.get("/_stats") { _, _ in
            self.locked {
                let perPath = self.requests.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
                return Self.json("{\"requests\":\(self.requests.values.reduce(0, +)),\"by_path\":{\(perPath)},\"max_per_second\":\(self.maxPerSecond()),\"tokens_issued\":\(self.issued),\"gzipped\":\(self.gzipped)}")
            }
        }
        router.post("/_reset") { _, _ in
            self.locked {
                self.requests = [:]
                self.times = []
                self.issued = 0
                self.gzipped = 0
            }
            return Self.json("{}")
        }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T { try lock.withLock(body) }

    /// Counts the request and waits `slow_ms` (simulated network latency).
    private func slow(_ request: Request) async throws {
        count(request)
        if let ms = request.uri.queryParameters.get("slow_ms", as: Int.self), ms > 0 { try await Task.sleep(for: .milliseconds(ms)) }
    }

    private func count(_ request: Request) {
        locked {
            requests[request.uri.path, default: 0] += 1
            times.append(Date().timeIntervalSince1970)
        }
    }

    /// The most requests that fell into any window of one second.
    private func maxPerSecond() -> Int {
        var best = 0, start = 0
        for end in times.indices {
            while times[end] - times[start] >= 1 { start += 1 }
            best = max(best, end - start + 1)
        }
        return best
    }

    // MARK: Items

    /// 2024-01-01T00:00:00Z plus `seconds`, in ISO 8601 (formatted by hand: this is per record).
    static func timestamp(_ seconds: Int) -> String {
        var days = seconds / 86_400
        let rest = seconds % 86_400
        var year = 2024, month = 1
        func monthDays(_ y: Int, _ m: Int) -> Int {
            m == 2 ? (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) ? 29 : 28) : [4, 6, 9, 11].contains(m) ? 30 : 31
        }
        while days >= monthDays(year, month) {
            days -= monthDays(year, month)
            month += 1
            if month > 12 { month = 1; year += 1 }
        }
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(year)-\(two(month))-\(two(days + 1))T\(two(rest / 3600)):\(two(rest / 60 % 60)):\(two(rest % 60))Z"
    }

    func record(_ i: Int) -> String {
        let updated = Self.timestamp(i)
        return "{\"id\":\(i),\"name\":\"item \(i)\",\"team_id\":\(i % 30 + 1),\"score\":\(Double(i) * 1.5),\"updated_at\":\"\(updated)\","
            + "\"tags\":[\"a\",\"b\"],\"meta\":{\"source\":\"test-api\",\"n\":\(i)}}"
    }

    private func items(_ request: Request) async throws -> Response {
        count(request)
        let q = request.uri.queryParameters
        if let slow = q.get("slow_ms", as: Int.self) { try await Task.sleep(for: .milliseconds(slow)) }
        if let problem = authProblem(request) { return problem }
        if let rate = q.get("rate", as: Double.self), rate > 0 {
            let recent = locked { times.filter { Date().timeIntervalSince1970 - $0 < 1 }.count }
            if Double(recent) > rate {
                var response = Self.error(.tooManyRequests, "slow down")
                response.headers[.retryAfter] = "1"
                return response
            }
        }
        if let failRate = q.get("fail_rate", as: Double.self), Double.random(in: 0..<1, using: &rng) < failRate {
            return Self.error(Bool.random() ? .internalServerError : .serviceUnavailable, "injected failure")
        }
        var ids = Array(1...max(1, q.get("total", as: Int.self) ?? records))
        if q.get("total", as: Int.self) == 0 { ids = [] }
        if let since = q.get("since"), let date = ISO8601DateFormatter().date(from: since) {
            let floor = Int(date.timeIntervalSince1970 - 1_704_067_200)
            ids = ids.filter { $0 > floor }
        }
        let style = q.get("style") ?? "page_number"
        let base = "http://\(request.head.authority ?? "127.0.0.1")/items"
        var page = 1, body: String, headers = HTTPFields()
        func slice(_ from: Int, _ count: Int) -> [String] { from < ids.count ? ids[from..<min(ids.count, from + count)].map(record) : [] }
        switch style {
        case "offset":
            let offset = q.get("offset", as: Int.self) ?? 0, limit = q.get("limit", as: Int.self) ?? 100
            page = offset / max(1, limit) + 1
            body = "{\"results\":[\(slice(offset, limit).joined(separator: ","))],\"total\":\(ids.count)}"
        case "cursor":
            let limit = q.get("limit", as: Int.self) ?? 100
            let offset = q.get("cursor").flatMap { Int($0.dropFirst(2)) } ?? 0
            page = offset / max(1, limit) + 1
            let next = offset + limit < ids.count ? "\"c-\(q.get("loop") == "1" ? offset : offset + limit)\"" : "null"
            body = "{\"items\":[\(slice(offset, limit).joined(separator: ","))],\"next_cursor\":\(next)}"
        default:
            page = q.get("page", as: Int.self) ?? 1
            let perPage = q.get("per_page", as: Int.self) ?? 100
            let pages = (ids.count + perPage - 1) / perPage
            let rows = slice((page - 1) * perPage, perPage).joined(separator: ",")
            var others = q.filter { $0.key != "page" }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
            if !others.isEmpty { others += "&" }
            switch style {
            case "link_header":
                body = "[\(rows)]"
                if page < pages { headers[HTTPField.Name("Link")!] = "<\(base)?\(others)page=\(page + 1)>; rel=\"next\", <\(base)?\(others)page=\(pages)>; rel=\"last\"" }
            case "next_url":
                let next = page < pages ? "\"\(base)?\(others)page=\(page + 1)\"" : "null"
                body = "{\"data\":[\(rows)],\"links\":{\"next\":\(next)}}"
            default:
                body = "{\"data\":[\(rows)],\"meta\":{\"page\":\(page),\"total_pages\":\(pages),\"total\":\(ids.count),\"has_more\":\(page < pages)}}"
            }
        }
        if q.get("malformed_page", as: Int.self) == page { body = String(body.prefix(body.count / 2)) }
        headers[.contentType] = "application/json"
        if q.get("gzip") == "1", request.headers[.acceptEncoding]?.contains("gzip") == true {
            headers[.contentEncoding] = "gzip"
            locked { gzipped += 1 }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: Self.gzip(Array(body.utf8)))))
        }
        if q.get("drop_page", as: Int.self) == page {
            let half = ByteBuffer(string: String(body.prefix(body.count / 2)))
            return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: body.utf8.count) { writer in
                try await writer.write(half)
                throw CancellationError()   // the connection closes with the body half sent
            })
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    // MARK: Auth

    private func authProblem(_ request: Request) -> Response? {
        let q = request.uri.queryParameters
        guard let kind = q.get("auth") else { return nil }
        let authorization = request.headers[.authorization] ?? ""
        switch kind {
        case "bearer":
            return authorization == "Bearer secret-token" ? nil : Self.error(.unauthorized, "bad token")
        case "api_key":
            return request.headers[HTTPField.Name("X-API-Key")!] == "k1" || q.get("api_key") == "k1" ? nil : Self.error(.unauthorized, "bad key")
        case "basic":
            return authorization == "Basic " + Data("sluice:pa55".utf8).base64EncodedString() ? nil : Self.error(.unauthorized, "bad credentials")
        case "oauth":
            guard authorization.hasPrefix("Bearer ") else { return Self.error(.unauthorized, "no token") }
            let token = String(authorization.dropFirst(7))
            let ok: Bool = locked {
                guard let used = tokens[token], used < tokenTTL else { return false }
                tokens[token] = used + 1
                return true
            }
            return ok ? nil : Self.error(.unauthorized, "token expired")
        default:
            return Self.error(.badRequest, "unknown auth \(kind)")
        }
    }

    private func token(_ request: Request) async throws -> Response {
        count(request)
        let body = String(buffer: try await request.body.collect(upTo: 1 << 16))
        var form: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            if kv.count == 2 { form[kv[0]] = kv[1] }
        }
        let basic = "Basic " + Data("sluice:s3cret".utf8).base64EncodedString()
        guard form["grant_type"] == "client_credentials",
              (form["client_id"] == "sluice" && form["client_secret"] == "s3cret") || request.headers[.authorization] == basic else {
            return Self.error(.unauthorized, "invalid client")
        }
        let token: String = locked {
            issued += 1
            let t = "tok-\(issued)"
            tokens[t] = 0
            return t
        }
        return Self.json("{\"access_token\":\"\(token)\",\"token_type\":\"bearer\",\"expires_in\":3600}")
    }

    // MARK: Responses

    /// Page `page` of two, `perPage` records each (`record(i)`: the i-th record, from 0), in
    /// `{"data": […], "meta": {"page", "total_pages": 2}}`; past page 2, empty.
    static func twoPages(_ request: Request, perPage: Int, _ record: (Int) -> String) -> Response {
        let page = request.uri.queryParameters.get("page", as: Int.self) ?? 1
        let items = (1...2).contains(page) ? (0..<perPage).map { record((page - 1) * perPage + $0) } : []
        return json("{\"data\":[\(items.joined(separator: ","))],\"meta\":{\"page\":\(page),\"total_pages\":2}}")
    }

    /// `body` as a gzip stream (zlib with the gzip wrapper).
    static func gzip(_ body: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return body }
        defer { deflateEnd(&stream) }
        var input = body
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(body.count))) + 32)
        let produced: Int = input.withUnsafeMutableBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                stream.next_in = src.baseAddress
                stream.avail_in = UInt32(src.count)
                stream.next_out = dst.baseAddress
                stream.avail_out = UInt32(dst.count)
                _ = deflate(&stream, Z_FINISH)
                return dst.count - Int(stream.avail_out)
            }
        }
        return Array(output.prefix(produced))
    }

    /// `/echo…`: one record describing the request (to check what a templated request sent).
    private func echo(_ request: Request) async throws -> Response {
        count(request)
        let body = String(buffer: try await request.body.collect(upTo: 1 << 16))
        let query = request.uri.query ?? ""
        let header = request.headers[HTTPField.Name("X-Team")!] ?? ""
        // A one-element JSON array minus its brackets: the string, quoted and escaped.
        func quoted(_ s: String) -> Substring {
            String(decoding: (try? JSONSerialization.data(withJSONObject: [s])) ?? Data("[\"\"]".utf8), as: UTF8.self).dropFirst().dropLast()
        }
        return Self.json("[{\"method\":\(quoted(request.method.rawValue)),\"path\":\(quoted(request.uri.path)),\"query\":\(quoted(query)),"
                         + "\"x_team\":\(quoted(header)),\"body\":\(quoted(body))}]")
    }

    static func json(_ text: String) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{\"error\":\"\(message)\"}")))
    }
}

private extension String {
    func wrapped(_ open: String, _ close: String) -> String { open + self + close }
}
