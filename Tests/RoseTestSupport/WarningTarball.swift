import Foundation

/// A tar whose pax header holds a malformed record ("garbage record", no length): libarchive
/// reads the entry after it and returns ARCHIVE_WARN "Ignoring malformed pax extended attributes"
/// (bsdtar 3.6 prints the same warning for it).
public enum WarningTarball {
  static func header(name: String, size: Int, type: UInt8) -> [UInt8] {
    var block = [UInt8](repeating: 0, count: 512)
    func put(_ text: String, at offset: Int) {
      for (i, byte) in text.utf8.enumerated() { block[offset + i] = byte }
    }
    put(name, at: 0)
    put("0000644", at: 100)
    put("0000000", at: 108)
    put("0000000", at: 116)
    put(String(size, radix: 8).leftPadded(to: 11), at: 124)
    put("00000000000", at: 136)
    block[156] = type
    put("ustar\u{0}00", at: 257)
    put("        ", at: 148)
    let sum = block.reduce(0) { $0 + Int($1) }
    put(String(sum, radix: 8).leftPadded(to: 6) + "\u{0} ", at: 148)
    return block
  }

  static func padded(_ bytes: [UInt8]) -> [UInt8] {
    bytes + [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512)
  }

  /// `entry` holding "hi\n", behind the malformed pax header.
  public static func bytes(entry: String = "etc/motd") -> [UInt8] {
    let record = Array("garbage record\n".utf8)
    return header(name: "PaxHeaders/x", size: record.count, type: UInt8(ascii: "x"))
      + padded(record) + header(name: entry, size: 3, type: UInt8(ascii: "0"))
      + padded(Array("hi\n".utf8)) + [UInt8](repeating: 0, count: 1024)
  }
}

extension String {
  fileprivate func leftPadded(to width: Int) -> String {
    String(repeating: "0", count: max(0, width - count)) + self
  }
}
