import Foundation

/// Requests per second with bursts (`rate_limit`), plus pauses the server asks for
/// (`X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`): `acquire` waits until a request may go.
actor TokenBucket {
    private let rate: Double?
    private let capacity: Double
    private var tokens: Double
    private var refilled = ContinuousClock.now
    private var pausedUntil: ContinuousClock.Instant?

    init(requestsPerSecond: Double?, burst: Int) {
        rate = requestsPerSecond
        capacity = Double(max(1, burst))
        tokens = capacity
    }

    func acquire() async throws {
        if let until = pausedUntil, until > .now { try await Task.sleep(until: until) }
        guard let rate else { return }
        while true {
            let now = ContinuousClock.now
            let elapsed = now - refilled
            tokens = min(capacity, tokens + rate * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
            refilled = now
            if tokens >= 1 {
                tokens -= 1
                return
            }
            try await Task.sleep(for: .seconds((1 - tokens) / rate))
        }
    }

    /// No request before `seconds` from now.
    func pause(for seconds: Double) {
        let until = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        if pausedUntil.map({ until > $0 }) ?? true { pausedUntil = until }
    }
}

/// Per host: after `threshold` consecutive failures the circuit opens and requests fail at once
/// for `coolDown`; then one probe goes through (half-open), and its outcome closes or reopens it.
actor CircuitBreaker {
    enum State: Equatable { case closed, open(until: ContinuousClock.Instant), halfOpen }
    private var failures: [String: Int] = [:]
    private var states: [String: State] = [:]
    let threshold: Int
    let coolDown: Duration

    init(threshold: Int, coolDown: Duration) {
        self.threshold = threshold
        self.coolDown = coolDown
    }

    /// Whether a request to `host` may go now; moves an open circuit whose cool-down is over to half-open.
    func allow(_ host: String) -> Bool {
        switch states[host] ?? .closed {
        case .closed, .halfOpen: return true
        case .open(let until):
            guard until <= .now else { return false }
            states[host] = .halfOpen
            return true
        }
    }

    func succeeded(_ host: String) {
        failures[host] = 0
        states[host] = .closed
    }

    /// Returns true when this failure opened the circuit.
    func failed(_ host: String) -> Bool {
        let n = (failures[host] ?? 0) + 1
        failures[host] = n
        if states[host] == .halfOpen || n >= threshold {
            states[host] = .open(until: .now + coolDown)
            return true
        }
        return false
    }
}
