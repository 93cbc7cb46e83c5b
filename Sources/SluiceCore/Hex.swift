extension Sequence<UInt8> {
    /// Lower-case hexadecimal, two digits a byte (digests in manifests, masks and file names).
    package var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in self { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
