/// Damages tar headers (ustar/pax) and recomputes each header's checksum.
public enum TarMutator {
  public static func mutate(_ pristine: [UInt8], _ rng: inout FuzzRandom) -> ([UInt8], String) {
    var tar = pristine
    // Header blocks: those whose checksum field matches their bytes.
    var headers: [Int] = []
    var at = 0
    while at + 512 <= tar.count {
      if isHeader(tar, at) { headers.append(at) }
      at += 512
    }
    guard !headers.isEmpty else { return (tar, "no header") }
    var notes: [String] = []
    for _ in 0..<1 + rng.below(3) {
      let h = headers[rng.below(headers.count)]
      // Fields: name 0, mode 100, uid 108, gid 116, size 124, mtime 136, type 156, linkname 157,
      // magic 257, uname 265, devmajor 329, devminor 337, prefix 345.
      let fields: [(Int, Int)] = [
        (0, 100), (100, 8), (108, 8), (116, 8), (124, 12), (136, 12), (156, 1), (157, 100),
        (329, 8), (337, 8), (345, 155),
      ]
      let (off, len) = fields[rng.below(fields.count)]
      let style = rng.below(6)
      switch style {
      case 0:  // octal digits, possibly huge
        let digits = String(rng.interesting(width: 8), radix: 8)
        let text = Array(digits.utf8.prefix(len))
        for i in 0..<len { tar[h + off + i] = i < text.count ? text[i] : 0 }
      case 1:  // base-256 (GNU binary numbers)
        tar[h + off] = 0x80 | UInt8(rng.below(2) * 0x7F)
        for i in 1..<len { tar[h + off + i] = UInt8(truncatingIfNeeded: rng.next()) }
      case 2:  // type flags
        let types: [UInt8] = Array("0123456789gxLKSDAVMN\0".utf8)
        tar[h + 156] = types[rng.below(types.count)]
      case 3:  // names: dots, slashes, long, empty
        let names = ["..", "../x", "/", "", "a/../../b", String(repeating: "n", count: 99), "./."]
        let text = Array(names[rng.below(names.count)].utf8)
        for i in 0..<len { tar[h + off + i] = i < text.count ? text[i] : 0 }
      case 4:  // a pax record body, when this header is an extended header
        let body = h + 512
        if body < tar.count {
          let records = [
            "30 size=99999999999999999999\n", "27 linkpath=\n", "20 uid=4294967296\n",
            "41 SCHILY.xattr.user.x=", "9 path=\n",
            "25 GNU.sparse.size=1e20\n", "10 size=-1\n",
          ]
          let text = Array(records[rng.below(records.count)].utf8)
          for (i, c) in text.enumerated() where body + i < tar.count { tar[body + i] = c }
        }
      default:  // random bytes
        tar[h + off + rng.below(len)] = UInt8(truncatingIfNeeded: rng.next())
      }
      fixChecksum(&tar, h)
      notes.append("header @\(h) field \(off) style \(style)")
    }
    return (tar, notes.joined(separator: "; "))
  }

  static func isHeader(_ t: [UInt8], _ at: Int) -> Bool {
    guard t[at..<at + 512].contains(where: { $0 != 0 }) else { return false }
    let stored = t[at + 148..<at + 156].filter { $0 >= 0x30 && $0 <= 0x37 }
    guard let v = Int(String(decoding: stored, as: UTF8.self), radix: 8) else { return false }
    return v == sum(t, at)
  }

  static func sum(_ t: [UInt8], _ at: Int) -> Int {
    var s = 0
    for i in 0..<512 { s += (i >= 148 && i < 156) ? 0x20 : Int(t[at + i]) }
    return s
  }

  static func fixChecksum(_ t: inout [UInt8], _ at: Int) {
    let text = Array(String(sum(t, at), radix: 8).leftPadded(6).utf8) + [0, 0x20]
    for i in 0..<8 { t[at + 148 + i] = text[i] }
  }
}
