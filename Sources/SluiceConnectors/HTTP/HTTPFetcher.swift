import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SluiceConfig
import SluiceCore

/// A response the source reads: status, headers and the whole body (bounded by `max_response`).
struct HTTPPage: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
}

/// Sends one request the way the http source promises: authenticated, within the rate limit,
/// retried with exponential backoff and full jitter on connection errors, timeouts, 408, 425,
/// 429 and 5xx (honouring `Retry-After`), never retried on other 4xx, and refused at once while
/// the host's circuit breaker is open. Secrets never reach a message.
final class HTTPFetcher: @unchecked Sendable {
    let config: HTTPSourceConfig
    let retry: RetryConfig
    let client: HTTPClient
    let limiter: TokenBucket
    let breaker: CircuitBreaker
    private let tokens = OAuthTokenCache()
    static let component = "source http"

    init(config: HTTPSourceConfig, retry: RetryConfig) {
        self.config = config
        self.retry = retry
        var configuration = HTTPClient.Configuration()
        configuration.decompression = .enabled(limit: .ratio(100))
        configuration.timeout = .init(connect: .seconds(10))
        // Fan-out and the prefetched next page keep several requests to one host in flight.
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(8, 2 * (config.forEach?.concurrency ?? 1))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        limiter = TokenBucket(requestsPerSecond: config.requestsPerSecond, burst: config.burst)
        breaker = CircuitBreaker(threshold: config.circuitFailures, coolDown: .milliseconds(Int(config.circuitCoolDown * 1000)))
    }

    func shutdown() async { try? await client.shutdown() }

    /// `url` with secrets (an API key in the query) replaced by `***`, for messages.
    func redacted(_ url: String) -> String {
        guard case .apiKeyQuery(let name, let value) = config.auth, !value.isEmpty else { return url }
        return url.replacingOccurrences(of: "\(name)=\(value)", with: "\(name)=***")
            .replacingOccurrences(of: "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? value)", with: "\(name)=***")
    }

    /// What a request sends besides its URL; with `for_each` rendered per parent.
    struct Parts: Sendable {
        var headers: [(String, String)]
        var body: String?
    }

    func fetch(_ url: String, parts: Parts? = nil, logger: (@Sendable (String) -> Void)? = nil) async throws -> HTTPPage {
        let parts = parts ?? Parts(headers: config.headers, body: config.body)
        let host = URLComponents(string: url)?.host ?? url
        var attempt = 1
        var refreshedToken = false
        while true {
            guard await breaker.allow(host) else {
                throw SluiceError(.source, "the circuit for \(host) is open after repeated failures; no request was sent", component: Self.component,
                                  location: redacted(url), fix: "check the API's status; requests resume after the circuit_breaker cool_down (\(Int(config.circuitCoolDown)) s)")
            }
            try await limiter.acquire()
            let outcome: Result<HTTPPage, any Error>
            do {
                outcome = .success(try await send(url, parts))
            } catch {
                outcome = .failure(error)
            }
            var delay: Double?
            var failure: SluiceError
            switch outcome {
            case .success(let page) where (200..<300).contains(page.status):
                await breaker.succeeded(host)
                await honourRateLimitHeaders(page.headers)
                return page
            case .success(let page):
                if page.status == 401, case .oauth2ClientCredentials = config.auth, !refreshedToken {
                    // An expired token: fetch a new one and send the request again, once.
                    await tokens.invalidate()
                    refreshedToken = true
                    continue
                }
                let retryable = [408, 425, 429].contains(page.status) || page.status >= 500
                let excerpt = String(decoding: page.body.prefix(300), as: UTF8.self)
                failure = SluiceError(.source, "HTTP \(page.status) from \(redacted(url)): \(excerpt)", component: Self.component,
                                      location: redacted(url), fix: Self.fix(for: page.status))
                failure.code = "\(page.status)"
                failure.retryable = retryable
                if page.status >= 500, await breaker.failed(host) { logger?("Circuit opened for \(host) after repeated failures.") }
                delay = Self.retryAfter(page.headers)
                if !retryable { throw failure }
            case .failure(let error as SluiceError):
                throw error
            case .failure(let error):
                failure = SluiceError(.connection, "request to \(redacted(url)) failed: \(Self.describe(error))", component: Self.component,
                                      location: redacted(url), fix: "check that the API is reachable from here; the request was retried")
                failure.retryable = true
                if await breaker.failed(host) { logger?("Circuit opened for \(host) after repeated failures.") }
            }
            guard attempt < retry.attempts else {
                // Retried here already: the unit is not read again for the same failure.
                failure.retryable = false
                throw failure
            }
            // Full jitter: anywhere up to the exponential bound, unless the server said when.
            let bound = min(retry.max, retry.initial * pow(2, Double(attempt - 1)))
            let wait = delay ?? (retry.jitter ? Double.random(in: 0...bound) : bound)
            logger?("Request failed, retrying in \(String(format: "%.2f", wait)) s (attempt \(attempt) of \(retry.attempts)): \(failure.message)")
            try await Task.sleep(for: .milliseconds(Int(wait * 1000)))
            attempt += 1
        }
    }

    private func send(_ url: String, _ parts: Parts) async throws -> HTTPPage {
        var request = HTTPClientRequest(url: url)
        request.method = config.method == "POST" ? .POST : .GET
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "sluice")
        // Compressed responses are inflated by the client (bounded to 100× the compressed size).
        request.headers.add(name: "Accept-Encoding", value: "gzip, deflate")
        for (name, value) in parts.headers { request.headers.replaceOrAdd(name: name, value: value) }
        switch config.auth {
        case .bearer(let token): request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)")
        case .apiKeyHeader(let name, let value): request.headers.replaceOrAdd(name: name, value: value)
        case .basic(let user, let password):
            request.headers.replaceOrAdd(name: "Authorization", value: "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
        case .oauth2ClientCredentials(let tokenURL, let id, let secret, let scope):
            let token = try await tokens.token { try await self.requestToken(tokenURL, id: id, secret: secret, scope: scope) }
            request.headers.replaceOrAdd(name: "Authorization", value: "Bearer \(token)")
        case .apiKeyQuery, nil: break
        }
        if let body = parts.body {
            request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await client.execute(request, timeout: .milliseconds(Int64(config.timeout * 1000)))
        var collected: ByteBuffer
        do {
            collected = try await response.body.collect(upTo: config.maxResponseBytes)
        } catch is NIOTooManyBytesError {
            throw SluiceError(.source, "the response from \(redacted(url)) is larger than \(config.maxResponseBytes) bytes", component: Self.component,
                              location: redacted(url), fix: "ask for smaller pages (page_size), or raise max_response on the source")
        }
        return HTTPPage(status: Int(response.status.code), headers: response.headers, body: collected.readBytes(length: collected.readableBytes) ?? [])
    }

    /// OAuth2 client credentials: a form POST to the token URL.
    private func requestToken(_ url: String, id: String, secret: String, scope: String?) async throws -> (String, Double) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        func escape(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? s }
        var form = "grant_type=client_credentials&client_id=\(escape(id))&client_secret=\(escape(secret))"
        if let scope { form += "&scope=\(escape(scope))" }
        request.body = .bytes(ByteBuffer(string: form))
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .milliseconds(Int64(config.timeout * 1000)))
        } catch {
            var e = SluiceError(.connection, "cannot reach the OAuth2 token URL \(url): \(Self.describe(error))", component: Self.component,
                                fix: "check auth.token_url")
            e.retryable = true
            throw e
        }
        var body = try await response.body.collect(upTo: 1 << 20)
        let json = try? JSONSerialization.jsonObject(with: Data(body.readBytes(length: body.readableBytes) ?? []))
        guard response.status.code == 200, let token = JSONPath.string("access_token", in: json) else {
            throw SluiceError(.source, "the OAuth2 token URL \(url) answered \(response.status.code) without an access_token", component: Self.component,
                              fix: "check auth.client_id, auth.client_secret and auth.scope")
        }
        return (token, Double(JSONPath.int("expires_in", in: json) ?? 3600))
    }

    /// `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset` (seconds to wait, or an epoch time).
    private func honourRateLimitHeaders(_ headers: HTTPHeaders) async {
        guard headers.first(name: "X-RateLimit-Remaining").flatMap(Int.init) == 0,
              let reset = headers.first(name: "X-RateLimit-Reset").flatMap(Double.init) else { return }
        let now = Date().timeIntervalSince1970
        let wait = reset > 1_000_000_000 ? reset - now : reset
        if wait > 0 { await limiter.pause(for: min(wait, 3600)) }
    }

    /// `Retry-After` in seconds or as an HTTP date.
    static func retryAfter(_ headers: HTTPHeaders) -> Double? {
        guard let value = headers.first(name: "Retry-After")?.trimmingCharacters(in: .whitespaces) else { return nil }
        if let seconds = Double(value) { return max(0, min(seconds, 3600)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return max(0, min(date.timeIntervalSinceNow, 3600))
    }

    static func fix(for status: Int) -> String? {
        switch status {
        case 401: "check the credentials under source.auth"
        case 403: "the credentials lack permission for this endpoint"
        case 404: "check the URL and its parameters"
        case 429: "lower rate_limit.requests_per_second; the request was retried"
        case 500...: "the API failed; the request was retried with backoff"
        default: nil
        }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError { return "\(e)" }
        return "\(error)"
    }
}

/// An OAuth2 access token, fetched once and shared until it expires (or the API refuses it).
actor OAuthTokenCache {
    private var token: String?
    private var expires = Date.distantPast

    func token(fetch: () async throws -> (String, Double)) async throws -> String {
        if let token, Date() < expires { return token }
        let (value, lifetime) = try await fetch()
        token = value
        // Renewed a little before it runs out.
        expires = Date().addingTimeInterval(max(1, lifetime - 30))
        return value
    }

    func invalidate() { token = nil }
}
