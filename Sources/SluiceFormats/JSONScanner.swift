import SluiceCore

/// Low-level JSON scanning over a complete span of bytes (one record, one line). Strings are
/// unescaped into a scratch buffer; nested values are validated and returned as their text.
struct JSONScanner {
    let p: UnsafeRawBufferPointer
    var i: Int
    static let maxDepth = 512

    init(_ p: UnsafeRawBufferPointer, at i: Int = 0) {
        self.p = p
        self.i = i
    }

    struct Failure: Error { var message: String; var offset: Int }

    func fail(_ message: String) -> Failure { Failure(message: message, offset: i) }

    @inline(__always) mutating func skipWhitespace() {
        while i < p.count {
            let c = p[i]
            guard c == 32 || c == 10 || c == 13 || c == 9 else { return }
            i += 1
        }
    }

    @inline(__always) var atEnd: Bool { i >= p.count }
    @inline(__always) var current: UInt8 { p[i] }

    mutating func expect(_ c: UInt8) throws {
        skipWhitespace()
        guard i < p.count, p[i] == c else {
            throw fail(i < p.count ? "expected '\(Character(UnicodeScalar(c)))' but found '\(Character(UnicodeScalar(p[i])))'" : "unexpected end of input")
        }
        i += 1
    }

    /// Parses a string at `i` (which is at the opening quote). Returns the raw span when it has no
    /// escapes (no copy); otherwise unescapes into `scratch` and returns nil.
    mutating func string(scratch: inout [UInt8]) throws -> Range<Int>? {
        i += 1
        let start = i
        i = nextSpecialByte(from: i)
        guard i < p.count else { throw fail("unterminated string") }
        if p[i] == 34 { i += 1; return start..<(i - 1) }
        if p[i] < 0x20 { throw fail("control character in string") }
        scratch.removeAll(keepingCapacity: true)
        var run = start   // start of the bytes not copied yet
        while true {
            // At a special byte: copy the plain bytes before it in one go.
            if i > run { scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[run..<i])) }
            guard i < p.count else { throw fail("unterminated string") }
            let c = p[i]
            if c == 34 { i += 1; return nil }
            if c < 0x20 { throw fail("control character in string") }
            i += 1   // a backslash
            guard i < p.count else { throw fail("unterminated string") }
            let e = p[i]
            i += 1
            switch e {
            case 34: scratch.append(34)
            case 92: scratch.append(92)
            case 47: scratch.append(47)
            case 98: scratch.append(8)
            case 102: scratch.append(12)
            case 110: scratch.append(10)
            case 114: scratch.append(13)
            case 116: scratch.append(9)
            case 117:
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar), i + 1 < p.count, p[i] == 92, p[i + 1] == 117 {
                    i += 2
                    let low = try hex4()
                    if (0xDC00..<0xE000).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        appendScalar(0xFFFD, to: &scratch)
                        scalar = low
                    }
                }
                appendScalar((0xD800..<0xE000).contains(scalar) ? 0xFFFD : scalar, to: &scratch)
            default: throw fail("invalid escape '\\\(Character(UnicodeScalar(e)))' in string")
            }
            run = i
            i = nextSpecialByte(from: i)
        }
    }

    /// The offset of the first quote, backslash or control character at or after `from` (`p.count`
    /// if none): sixteen bytes at a time (vector compares; the first hit's lane from the bits of
    /// the marked lanes), the last few byte by byte.
    @inline(__always) func nextSpecialByte(from: Int) -> Int {
        var j = from
        let quote = SIMD16<UInt8>(repeating: 0x22), backslash = SIMD16<UInt8>(repeating: 0x5C), space = SIMD16<UInt8>(repeating: 0x20)
        while j + 16 <= p.count {
            let v = p.loadUnaligned(fromByteOffset: j, as: SIMD16<UInt8>.self)
            let special = (v .== quote) .| (v .== backslash) .| (v .< space)
            if any(special) {
                let marked = SIMD16<UInt8>(repeating: 0).replacing(with: 0xFF, where: special)
                let (low, high) = unsafeBitCast(marked, to: (UInt64, UInt64).self)
                return j + (low != 0 ? low.trailingZeroBitCount : 64 + high.trailingZeroBitCount) / 8
            }
            j += 16
        }
        while j < p.count {
            let c = p[j]
            if c == 34 || c == 92 || c < 0x20 { return j }
            j += 1
        }
        return j
    }

    private mutating func hex4() throws -> UInt32 {
        // Offset at the end of the data: the escape may continue in bytes not read yet.
        guard i + 4 <= p.count else { throw Failure(message: "truncated \\u escape", offset: p.count) }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = p[i]
            let d: UInt32
            switch c {
            case 48...57: d = UInt32(c - 48)
            case 97...102: d = UInt32(c - 87)
            case 65...70: d = UInt32(c - 55)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private func appendScalar(_ v: UInt32, to out: inout [UInt8]) {
        switch v {
        case 0..<0x80: out.append(UInt8(v))
        case 0x80..<0x800: out += [UInt8(0xC0 | v >> 6), UInt8(0x80 | v & 0x3F)]
        case 0x800..<0x10000: out += [UInt8(0xE0 | v >> 12), UInt8(0x80 | v >> 6 & 0x3F), UInt8(0x80 | v & 0x3F)]
        default: out += [UInt8(0xF0 | v >> 18), UInt8(0x80 | v >> 12 & 0x3F), UInt8(0x80 | v >> 6 & 0x3F), UInt8(0x80 | v & 0x3F)]
        }
    }

    /// Scans a number at `i`, validating JSON number syntax; returns its span.
    mutating func number() throws -> Range<Int> {
        let start = i
        if i < p.count, p[i] == 45 { i += 1 }
        let intStart = i
        while i < p.count, p[i] &- 48 < 10 { i += 1 }
        guard i > intStart else { throw fail("invalid number") }
        if i - intStart > 1, p[intStart] == 48 { throw fail("invalid number (leading zero)") }
        if i < p.count, p[i] == 46 {
            i += 1
            let f = i
            while i < p.count, p[i] &- 48 < 10 { i += 1 }
            guard i > f else { throw fail("invalid number") }
        }
        if i < p.count, p[i] | 0x20 == 101 {
            i += 1
            if i < p.count, p[i] == 43 || p[i] == 45 { i += 1 }
            let e = i
            while i < p.count, p[i] &- 48 < 10 { i += 1 }
            guard i > e else { throw fail("invalid number") }
        }
        return start..<i
    }

    mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        let available = min(n, p.count - i)
        for k in 0..<available where p[i + k] != word.utf8Start[k] { throw fail("invalid literal") }
        guard available == n else { throw Failure(message: "unexpected end of input", offset: p.count) }
        i += n
    }

    /// Skips any value (validating it), without recursion so deep nesting cannot overflow the stack.
    mutating func skipValue() throws {
        var scratch: [UInt8] = []
        var stack: [UInt8] = []   // expected closers
        var expectValue = true
        while true {
            skipWhitespace()
            guard i < p.count else { throw fail("unexpected end of input") }
            let c = p[i]
            if expectValue {
                switch c {
                case 123, 91:
                    guard stack.count < JSONScanner.maxDepth else { throw fail("nesting deeper than \(JSONScanner.maxDepth) levels") }
                    stack.append(c == 123 ? 125 : 93)
                    i += 1
                    skipWhitespace()
                    if i < p.count, p[i] == stack.last! { i += 1; stack.removeLast(); expectValue = false; break }
                    if c == 123 {
                        guard i < p.count, p[i] == 34 else { throw fail("expected a key") }
                        _ = try string(scratch: &scratch)
                        try expect(58)
                    }
                    continue
                case 34: _ = try string(scratch: &scratch)
                case 116: try literal("true")
                case 102: try literal("false")
                case 110: try literal("null")
                default: _ = try number()
                }
                expectValue = false
            }
            if stack.isEmpty { return }
            skipWhitespace()
            guard i < p.count else { throw fail("unexpected end of input") }
            let d = p[i]
            if d == stack.last! { i += 1; stack.removeLast(); if stack.isEmpty { return }; continue }
            guard d == 44 else { throw fail("expected ',' or '\(Character(UnicodeScalar(stack.last!)))'") }
            i += 1
            if stack.last! == 125 {
                skipWhitespace()
                guard i < p.count, p[i] == 34 else { throw fail("expected a key") }
                _ = try string(scratch: &scratch)
                try expect(58)
            }
            expectValue = true
        }
    }
}
