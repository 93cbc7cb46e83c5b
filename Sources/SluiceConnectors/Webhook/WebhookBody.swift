import SluiceCore
import SluiceFormats

/// Request bodies as records: a JSON object (one record), a JSON array of objects, or NDJSON (one
/// object per line). Origins are NDJSON line numbers, or array positions counted from 1.
public enum WebhookBody {
    /// The format a request declares, or that its first byte shows.
    public static func format(contentType: String?, body: [UInt8]) -> SpoolFrame.BodyFormat {
        let type = (contentType ?? "").lowercased()
        if type.contains("ndjson") || type.contains("jsonl") || type.contains("json-seq") { return .ndjson }
        if type.contains("json") { return .json }
        // No usable content type: NDJSON when there are several lines and each starts an
        // object; anything else (an array, one object, pretty-printed or not) is a document.
        var lines = 0
        var atLineStart = true
        for byte in body {
            if byte == 10 { atLineStart = true; continue }
            if byte == 32 || byte == 9 || byte == 13 { continue }
            if atLineStart {
                guard byte == UInt8(ascii: "{") else { return .json }
                lines += 1
                atLineStart = false
            }
        }
        return lines > 1 ? .ndjson : .json
    }

    /// All records of one body, in one batch. Throws when the body as a whole is not JSON (an
    /// NDJSON body's bad lines are rejected records instead).
    public static func parse(_ body: [UInt8], format: SpoolFrame.BodyFormat, location: String) throws -> RawBatch {
        let reader = MemoryReader(body)
        switch format {
        case .ndjson:
            return try JSONLReader(reader: reader, location: location).next(maxRows: .max, maxBytes: .max) ?? RawBatch()
        case .json:
            let doc = JSONDocumentReader(reader: reader, location: location, recordsPath: nil)
            doc.originIsIndex = true
            doc.rejectsTrailingContent = true
            return try doc.next(maxRows: .max, maxBytes: .max) ?? RawBatch()
        }
    }
}
