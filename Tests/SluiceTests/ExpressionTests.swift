import Foundation
import Sluice
import Testing

/// The expression language of `filter`, `compute` and the `expression` rule, evaluated over real
/// column buffers.
@Suite struct ExpressionTests {
    /// A batch from columns of values.
    func batch(_ columns: [(String, DataType, [Value])]) -> RecordBatch {
        RecordBatch(schema: Schema(columns.map { Field($0.0, $0.1) }), columns: columns.map { name, type, values in
            var c = Column(type: type)
            for v in values { c.append(v) }
            return c
        })
    }

    var sample: RecordBatch {
        batch([
            ("a", .int64, [.int64(1), .int64(2), .null, .int64(-7)]),
            ("b", .int64, [.int64(3), .int64(0), .int64(5), .int64(2)]),
            ("x", .double, [.double(1.5), .double(-0.5), .double(2), .null]),
            ("amount", .decimal(precision: 12, scale: 2), [.decimal(1050, scale: 2), .decimal(-5, scale: 2), .null, .decimal(0, scale: 2)]),
            ("email", .string, [.string("Ann@Example.com"), .string("  bob@x.io "), .null, .string("zoë@über.de")]),
            ("status", .string, [.string("paid"), .string("new"), .string("test"), .null]),
            ("created_at", .timestamp, [.timestamp(1_704_067_200_000_000), .timestamp(0), .null, .timestamp(-86_400_000_000)]),
            ("day", .date, [.date(19_723), .date(0), .date(-1), .null]),
            ("flag", .bool, [.bool(true), .bool(false), .null, .bool(true)]),
        ])
    }

    func values(_ text: String, _ b: RecordBatch? = nil) throws -> [Value] {
        let batch = b ?? sample
        let c = try Expression(text).evaluate(batch, now: 1_800_000_000_000_000)
        return (0..<c.count).map { c.value(at: $0) }
    }

    @Test(arguments: ExpressionTests.arithmeticCases)
    func arithmetic(_ text: String, _ expected: [Value]) throws {
        let got = try values(text)
        #expect(got.count == expected.count)
        for (g, e) in zip(got, expected) {
            if case .double(let x) = g, case .double(let y) = e { #expect(abs(x - y) < 1e-9, "\(text): \(g) vs \(e)") } else { #expect(g == e, "\(text): \(got)") }
        }
    }

    @Test(arguments: ExpressionTests.predicatesCases)
    func predicates(_ text: String, _ expected: [Value]) throws {
        #expect(try values(text) == expected, "\(text)")
    }

    @Test(arguments: ExpressionTests.functionsAndCaseCases)
    func functionsAndCase(_ text: String, _ expected: [Value]) throws {
        #expect(try values(text) == expected, "\(text)")
    }

    @Test(arguments: ExpressionTests.typeAndSyntaxErrorsPointAtTheProblemCases)
    func typeAndSyntaxErrorsPointAtTheProblem(_ text: String, _ message: String, _ position: Int) {
        let types: [String: DataType] = Dictionary(uniqueKeysWithValues: sample.schema.fields.map { ($0.name, $0.type) })
        do {
            let e = try Expression(text)
            try e.check { types[$0] }
            Issue.record("\(text) should not check")
        } catch {
            #expect(error.message.contains(message), "\(text): \(error)")
            #expect(error.position == position, "\(text): \(error)")
        }
    }

    @Test func unknownColumnsAreCheckedWhenTheDataArrives() throws {
        // At validate time the type of an inferred column is not known …
        let e = try Expression("total * 2 > 10")
        #expect(try e.check { _ in nil } == .bool)
        // … and when the batch has it as text, evaluation says so.
        let b = batch([("total", .string, [.string("12")])])
        #expect(throws: ExpressionError.self) { try e.evaluate(b, now: 0) }
        #expect(e.columns == ["total"])
    }

    @Test func emptyBatchesAndAllNullColumns() throws {
        let empty = batch([("a", .int64, []), ("s", .string, [])])
        #expect(try Expression("a + 1 > 0 AND s LIKE '%'").evaluate(empty, now: 0).count == 0)
        let nulls = batch([("a", .int64, [.null, .null])])
        #expect(try values("a + 1 > 0 OR a IS NULL", nulls) == [.bool(true), .bool(true)])
        #expect(try values("NULL = NULL", nulls) == [.null, .null])
    }

    static let arithmeticCases: [(String, [Value])] = [
        ("a + b * 2", [Value.int64(7), .int64(2), .null, .int64(-3)]),
        ("a - b", [.int64(-2), .int64(2), .null, .int64(-9)]),
        ("a % b", [.int64(1), .null, .null, .int64(-1)]),
        ("a / b", [.double(1.0 / 3), .null, .null, .double(-3.5)]),
        ("-a", [.int64(-1), .int64(-2), .null, .int64(7)]),
        ("x * 2 + a", [.double(4), .double(1), .null, .null]),
        ("amount * 2", [.double(21), .double(-0.1), .null, .double(0)]),
        ("a * 9223372036854775807", [.int64(.max), .null, .null, .null]),
        ("-9223372036854775808 + 0", [.int64(.min), .int64(.min), .int64(.min), .int64(.min)]),
        ("abs(a)", [.int64(1), .int64(2), .null, .int64(7)]),
        ("round(x * 1.2345, 2)", [.double(1.85), .double(-0.62), .double(2.47), .null]),
    ]

    static let predicatesCases: [(String, [Value])] = [
        ("a > 1", [Value.bool(false), .bool(true), .null, .bool(false)]),
        ("a >= 1 AND b > 0", [.bool(true), .bool(false), .null, .bool(false)]),
        ("a IS NULL OR b = 0", [.bool(false), .bool(true), .bool(true), .bool(false)]),
        ("NOT flag", [.bool(false), .bool(true), .null, .bool(false)]),
        ("flag AND a > 100", [.bool(false), .bool(false), .null, .bool(false)]),          // NULL AND NULL = NULL
        ("flag AND b > 100", [.bool(false), .bool(false), .bool(false), .bool(false)]),   // NULL AND false = false
        ("flag OR a > 100", [.bool(true), .bool(false), .null, .bool(true)]),             // NULL OR false = NULL
        ("status IN ('paid', 'new')", [.bool(true), .bool(true), .bool(false), .null]),
        ("status NOT IN ('paid', NULL)", [.bool(false), .null, .null, .null]),
        ("a IN (1, 2.0)", [.bool(true), .bool(true), .null, .bool(false)]),
        ("email LIKE '%@%.%'", [.bool(true), .bool(true), .null, .bool(true)]),
        ("email LIKE 'zo_@%'", [.bool(false), .bool(false), .null, .bool(true)]),
        ("email NOT LIKE 'A%'", [.bool(false), .bool(true), .null, .bool(true)]),
        ("b BETWEEN 1 AND 3", [.bool(true), .bool(false), .bool(false), .bool(true)]),
        ("x NOT BETWEEN 0 AND 1.5", [.bool(false), .bool(true), .bool(true), .null]),
        ("amount >= 0", [.bool(true), .bool(false), .null, .bool(true)]),
        ("created_at >= '2024-01-01'", [.bool(true), .bool(false), .null, .bool(false)]),
        ("created_at < '1970-01-01T00:00:00Z'", [.bool(false), .bool(false), .null, .bool(true)]),
        ("day = created_at", [.bool(true), .bool(true), .null, .null]),
        ("status <> 'test'", [.bool(true), .bool(true), .bool(false), .null]),
        ("regexp_matches(email, '^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$')", [.bool(true), .bool(false), .null, .bool(true)]),
        ("now() > created_at", [.bool(true), .bool(true), .null, .bool(true)]),
    ]

    static let functionsAndCaseCases: [(String, [Value])] = [
        ("lower(email)", [Value.string("ann@example.com"), .string("  bob@x.io "), .null, .string("zoë@über.de")]),
        ("upper(status)", [.string("PAID"), .string("NEW"), .string("TEST"), .null]),
        ("trim(email)", [.string("Ann@Example.com"), .string("bob@x.io"), .null, .string("zoë@über.de")]),
        ("length(email)", [.int64(15), .int64(11), .null, .int64(11)]),
        ("substr(email, 1, 3)", [.string("Ann"), .string("  b"), .null, .string("zoë")]),
        ("substr(status, 2)", [.string("aid"), .string("ew"), .string("est"), .null]),
        ("split_part(trim(email), '@', 2)", [.string("Example.com"), .string("x.io"), .null, .string("über.de")]),
        ("split_part(email, '@', 5)", [.string(""), .string(""), .null, .string("")]),
        ("coalesce(status, 'none')", [.string("paid"), .string("new"), .string("test"), .string("none")]),
        ("coalesce(a, b)", [.int64(1), .int64(2), .int64(5), .int64(-7)]),
        ("concat(status, '-', a)", [.string("paid-1"), .string("new-2"), .string("test-"), .string("--7")]),
        ("status || '/' || b", [.string("paid/3"), .string("new/0"), .string("test/5"), .null]),
        ("year(created_at)", [.int64(2024), .int64(1970), .null, .int64(1969)]),
        ("month(day) * 100 + day(day)", [.int64(101), .int64(101), .int64(1231), .null]),
        ("date_part('hour', created_at)", [.int64(0), .int64(0), .null, .int64(0)]),
        ("CASE WHEN a > 1 THEN 'big' WHEN a IS NULL THEN 'none' ELSE 'small' END", [.string("small"), .string("big"), .string("none"), .string("small")]),
        ("CASE WHEN flag THEN x END", [.double(1.5), .null, .null, .null]),
        ("CAST(status AS int64)", [.null, .null, .null, .null]),
        ("cast(b AS string) || 'x'", [.string("3x"), .string("0x"), .string("5x"), .string("2x")]),
        ("CAST('2024-02-03' AS date)", [.date(19_756), .date(19_756), .date(19_756), .date(19_756)]),
        ("\"status\"", [.string("paid"), .string("new"), .string("test"), .null]),
        ("missing_column", [.null, .null, .null, .null]),
    ]

    static let typeAndSyntaxErrorsPointAtTheProblemCases: [(String, String, Int)] = [
        ("email + 1", "'+' needs numbers, but column email is string", 1),
        ("a > 'x'", "cannot compare column a (int64) with 'x' (string)", 3),
        ("a >", "ends too early", 4),
        ("status = 'paid", "unterminated string", 10),
        ("lower(a)", "lower() needs text as argument 1, but column a is int64", 7),
        ("frobnicate(a)", "unknown function frobnicate()", 1),
        ("substr(email)", "substr() takes 2 to 3 arguments, not 1", 1),
        ("a AND b", "AND needs a true/false condition, but column a is int64", 1),
        ("CASE WHEN a THEN 1 END", "WHEN needs a true/false condition", 11),
        ("created_at > 'yesterday'", "'yesterday' is not a date or timestamp", 14),
        ("regexp_matches(email, '[')", "not a valid regular expression", 23),
        ("a = 1 b", "unexpected b", 7),
        ("CAST(a AS money)", "unknown type 'money'", 11),
        ("", "the expression is empty", 1),
        ("a # 2", "unexpected character '#'", 3),
        ("CASE WHEN flag THEN 1 ELSE 'x' END", "the results mix int64 and string", 28),
    ]
}

/// The byte-level regex engine against the standard library's `Regex` on the same inputs.
@Suite struct PatternTests {
    static let patterns = [
        "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", "^\\d{3}-\\d{4}$", "ab|cd", "^(ab|a)c$", "colou?r", "^[A-Z][a-z]*$",
        "x{2,3}", "^.{3}$", "^[^a-c]+$", "\\.", "^(?:\\w+\\s?)+$", "^$", "[-+]?\\d+(\\.\\d+)?", "^a.*b$", "\\$\\d",
        "^(a|b)*abb$", "[\\]x]", "^\\W+$", "é", "^[^@\\s]+$", "\\s", "^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$",
    ]
    static let inputs = [
        "", "a", "ab", "abc", "ac", "abcd", "cd", "color", "colour", "colouur", "Hello", "hello", "HELLO", "xx", "xxxx", "x",
        "abb", "aabb", "babb", "abab", "zoë", "zoé", "über", "a\nb", "ab\n", "123-4567", "12-34567", "+12.5", "-3", "1.",
        "$5", "5$", "]", "x", "!!", "!a", "ann@example.com", "a b@c.de", "a@b.c", "a@b.cd", "ö@ü.de", "a@@b.cd", "  ",
        "12345678-1234-1234-1234-123456789abc", "12345678-1234-1234-1234-123456789abz", "one two three", "one  two", "a\u{00A0}b", "\u{2003}",
        String(repeating: "a", count: 500) + "b",
    ]

    @Test func agreesWithTheStandardLibrary() throws {
        for pattern in Self.patterns {
            let compiled = try #require(Expression.Pattern(pattern))
            let reference = try Regex(pattern)
            for input in Self.inputs {
                var copy = input
                let bytes = copy.withUTF8 { compiled.matches(UnsafeRawBufferPointer($0)) }
                let expected = input.contains(reference)
                #expect(bytes == expected, "\(pattern) on \(input.debugDescription)")
                #expect(compiled.matches(input) == expected)
            }
        }
        #expect(Expression.Pattern("[") == nil)
        #expect(Expression.Pattern("a(?=b)")?.matches("ab") == true, "look-ahead: the full engine")
        #expect(Expression.Pattern("a(?=b)")?.matches("ac") == false)
    }

    @Test func hostileInputStaysFast() throws {
        let p = try #require(Expression.Pattern("^(a|a)*(a|a)*b$"))
        let input = String(repeating: "a", count: 100_000)
        let clock = ContinuousClock()
        let took = clock.measure { #expect(!p.matches(input)) }
        #expect(took < .seconds(1), "\(took)")
    }
}
