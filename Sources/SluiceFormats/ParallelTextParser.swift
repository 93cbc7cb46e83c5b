import SluiceCore

/// Parses and types one CSV or JSONL file on all cores, emitting its batches in file order.
///
/// The reading task cuts the stream into blocks of whole records (`RecordBlockCutter`); tasks
/// parse and type the blocks concurrently, numbering lines from the block's start; the reading
/// task takes the results in order, renumbers them and emits them. The result is what one parser
/// reading the file in order gives, because:
/// - a block whose parse did not end at a record end (a CSV cut misled by a stray quote), that
///   failed, or that the cutter could not cut, is read again in order, with the rest of the file,
///   by one parser — which also reports errors at their real line;
/// - inferred column types depend on the batches before: a block typed from other inferred types
///   than the ones in force when its turn comes is typed again, in turn, from the raw values.
public struct ParallelTextParser {
    public enum Format: Sendable {
        case csv(CSVOptions)
        case jsonl
    }

    let format: Format
    let location: String
    let typer: BatchTyper
    let batchRows: Int
    let batchBytes: Int
    /// Blocks parsed at once, besides the one being emitted.
    let parallelism: Int
    /// A fixed block size instead of one sized for a batch per block (tests cut small inputs
    /// into many blocks with it).
    let blockBytes: Int?

    public init(format: Format, location: String, typer: BatchTyper, batchRows: Int, batchBytes: Int, parallelism: Int,
                blockBytes: Int? = nil) {
        self.format = format
        self.location = location
        self.typer = typer
        self.batchRows = batchRows
        self.batchBytes = batchBytes
        self.parallelism = max(1, parallelism)
        self.blockBytes = blockBytes
    }

    /// What one block parsed to, with lines and rows numbered from the block's start.
    struct Parsed: Sendable {
        var raw: [RawBatch]
        var typed: [(RecordBatch, [Rejection])]
        var lines: Int
        var endedInsideRecord: Bool
        var inferred: [String: DataType]
    }

    struct Pending {
        let bytes: [UInt8]
        let rawBytes: Int
        let isLast: Bool
        let inferredAtStart: [String: DataType]
        let task: Task<Parsed, Error>
    }

    public func run(reader: ByteReader, emit: (SourceBatch) async throws -> Void) async throws {
        let records: RecordBlockCutter.Records
        if case .csv(let options) = format { records = .csv(quote: options.quote) } else { records = .lines }
        // The first block is sized from the batch size; later ones from the bytes per row seen.
        let cutter = RecordBlockCutter(reader: reader, records: records, blockBytes: blockBytes ?? max(1 << 20, batchBytes))
        var header: [String]?
        var pending: [Pending] = []
        var nextLine = 1
        // The columns emitted so far, in order: a JSON key, once seen, stays a column (as in one
        // parser, whose columns carry over from batch to batch).
        var columns: [String] = []
        var counted: Int64 = 0
        var cutterDone = false, cutterGaveUp = false
        var isFirst = true
        var sizing: BatchSizing?
        defer { for p in pending { p.task.cancel() } }

        while true {
            while !cutterDone, pending.count <= parallelism {
                switch try cutter.next() {
                case .end: cutterDone = true
                case .noBoundary: cutterDone = true; cutterGaveUp = true
                case .block(let bytes, let rawBytes, let isLast):
                    if isFirst, case .csv(let options) = format {
                        // The header, for the blocks after the first one.
                        let names = try CSVReader(reader: MemoryReader(bytes), options: options, location: location).header
                        guard !names.isEmpty else {
                            // No header and no column names: the first record decides the
                            // columns, so read the file in order.
                            return try await readInOrder(cutter.remainder(after: [bytes], counted: 0), firstLine: 1, header: nil, emit: emit)
                        }
                        header = names
                    }
                    let inferred = typer.inferred
                    let job = Job(format: format, location: location, header: header, startsFile: isFirst,
                                  declared: typer.declared, formats: typer.formats, inferred: inferred,
                                  batchRows: batchRows, batchBytes: batchBytes, sizing: sizing)
                    pending.append(Pending(bytes: bytes, rawBytes: rawBytes, isLast: isLast, inferredAtStart: inferred,
                                           task: Task.detached { try job.parse(bytes) }))
                    isFirst = false
                    if isLast { cutterDone = true }
                }
            }
            guard !pending.isEmpty else { break }
            let block = pending.removeFirst()
            let parsed: Parsed
            do {
                parsed = try await block.task.value
                if parsed.endedInsideRecord, !block.isLast { throw CutBetweenRecords() }
            } catch {
                if Task.isCancelled { throw CancellationError() }
                // Read this block and all after it in order, so the outcome (rows, rejections or
                // the error, at its real line) is exactly a sequential read's.
                for p in pending { p.task.cancel() }
                let rest = cutter.remainder(after: [block.bytes] + pending.map(\.bytes), counted: counted)
                pending = []
                return try await readInOrder(rest, firstLine: nextLine, header: nextLine == 1 ? nil : header, emit: emit)
            }
            try await emitInOrder(parsed, block: block, firstLine: nextLine, columns: &columns, emit: emit)
            if let first = parsed.raw.first, first.rowCount > sizing?.rows ?? 0 { sizing = BatchSizing(first) }
            nextLine += parsed.lines
            counted += Int64(block.rawBytes)
            let rows = parsed.raw.reduce(0) { $0 + $1.rowCount + $1.rejected.count }
            if rows > 0, blockBytes == nil {
                // Aim for one batch per block.
                cutter.blockBytes = min(16 << 20, max(64 << 10, block.bytes.count * batchRows / rows * 97 / 100))
            }
        }
        if cutterGaveUp {
            try await readInOrder(cutter.remainder(after: [], counted: counted), firstLine: nextLine, header: nextLine == 1 ? nil : header, emit: emit)
        }
    }

    private struct CutBetweenRecords: Error {}

    /// `raw` with `columns` first, in that order (all null where it lacks them), then its others.
    static func withColumns(_ columns: [String], _ raw: RawBatch) -> RawBatch {
        guard !raw.names.starts(with: columns) else { return raw }
        var out = raw
        let index = Dictionary(raw.names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        out.names = columns + raw.names.filter { !columns.contains($0) }
        out.columns = out.names.map { index[$0].map { raw.columns[$0] } ?? RawColumn(nulls: raw.rowCount) }
        return out
    }

    private func emitInOrder(_ parsed: Parsed, block: Pending, firstLine: Int, columns: inout [String],
                             emit: (SourceBatch) async throws -> Void) async throws {
        let typed: [(RecordBatch, [Rejection])]
        if block.inferredAtStart == typer.inferred, parsed.raw.allSatisfy({ $0.names.starts(with: columns) }) {
            typed = parsed.typed
            typer.adopt(parsed.inferred)
        } else {
            // Types were inferred meanwhile from earlier blocks, or the block lacks JSON keys seen
            // before (or met them in another order): type it in turn, with the columns one
            // parser would have had by now.
            typed = parsed.raw.map { typer.type(Self.withColumns(columns, $0)) }
        }
        if let last = typed.last?.0.schema.fields.map(\.name), last.count > columns.count { columns = last }
        for (i, (batch, rejected)) in typed.enumerated() {
            var batch = batch
            batch.shiftOrigins(by: firstLine - 1)
            var rejected = rejected
            for r in rejected.indices { rejected[r].origin = rejected[r].origin.map { $0 + firstLine - 1 } }
            try await emit(SourceBatch(batch: batch, rejected: rejected, bytesRead: i == typed.count - 1 ? block.rawBytes : 0))
        }
    }

    /// One parser over `reader`, as `FilesSource` reads small files.
    private func readInOrder(_ reader: ByteReader, firstLine: Int, header: [String]?, emit: (SourceBatch) async throws -> Void) async throws {
        let next: () throws -> RawBatch?
        switch format {
        case .csv(var options):
            if let header {
                // Past the header already: the columns are known.
                options.header = false
                options.columnNames = header
            }
            let csv = try CSVReader(reader: reader, options: options, location: location, firstLine: firstLine, startsFile: header == nil)
            next = { try csv.next(maxRows: batchRows, maxBytes: batchBytes) }
        case .jsonl:
            let jsonl = JSONLReader(reader: reader, location: location, firstLine: firstLine, startsFile: firstLine == 1)
            next = { try jsonl.next(maxRows: batchRows, maxBytes: batchBytes) }
        }
        while let raw = try next() {
            let (batch, rejected) = typer.type(raw)
            try await emit(SourceBatch(batch: batch, rejected: rejected, bytesRead: raw.bytesRead))
        }
    }

    /// Parsing one block: everything it needs, by value, for another thread.
    struct Job: Sendable {
        let format: Format
        let location: String
        let header: [String]?
        let startsFile: Bool
        let declared: Schema
        let formats: [String: String]
        let inferred: [String: DataType]
        let batchRows: Int
        let batchBytes: Int
        /// How big a batch of an earlier block was, to size this block's buffers by.
        let sizing: BatchSizing?

        func parse(_ bytes: [UInt8]) throws -> Parsed {
            let typer = BatchTyper(declared: declared, formats: formats, inferred: inferred)
            var parsed = Parsed(raw: [], typed: [], lines: 0, endedInsideRecord: false, inferred: [:])
            let next: () throws -> RawBatch?
            let linesRead: () -> Int
            let endedInside: () -> Bool
            switch format {
            case .csv(var options):
                if !startsFile, let header {
                    options.header = false
                    options.columnNames = header
                }
                let csv = try CSVReader(reader: MemoryReader(bytes), options: options, location: location, startsFile: startsFile)
                if let sizing { csv.sizeLike(sizing) }
                next = { try csv.next(maxRows: batchRows, maxBytes: batchBytes) }
                linesRead = { csv.nextLine - 1 }
                endedInside = { csv.endedInsideQuotes }
            case .jsonl:
                let jsonl = JSONLReader(reader: MemoryReader(bytes), location: location, startsFile: startsFile)
                if let sizing { jsonl.sizeLike(sizing) }
                next = { try jsonl.next(maxRows: batchRows, maxBytes: batchBytes) }
                linesRead = { jsonl.nextLine - 1 }
                endedInside = { false }
            }
            while let raw = try next() {
                try Task.checkCancellation()
                parsed.typed.append(typer.type(raw))
                parsed.raw.append(raw)
            }
            parsed.lines = linesRead()
            parsed.endedInsideRecord = endedInside()
            parsed.inferred = typer.inferred
            return parsed
        }
    }
}
