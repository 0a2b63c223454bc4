/// A 16-byte GUID/UUID. Stored in canonical (string) byte order; `gptBytes` gives the
/// mixed-endian on-disk encoding used by GPT (first three fields little-endian).
public struct GUID: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
  /// Bytes 0-7 of the canonical form, big-endian.
  public let high: UInt64
  /// Bytes 8-15 of the canonical form, big-endian.
  public let low: UInt64

  public static let zero = GUID(high: 0, low: 0)

  public init(high: UInt64, low: UInt64) {
    self.high = high
    self.low = low
  }

  /// From 16 bytes in canonical (string) order; nil if the count is not 16.
  public init?(canonicalBytes bytes: [UInt8]) {
    guard bytes.count == 16 else { return nil }
    var h: UInt64 = 0
    var l: UInt64 = 0
    for i in 0..<8 { h = h << 8 | UInt64(bytes[i]) }
    for i in 8..<16 { l = l << 8 | UInt64(bytes[i]) }
    self.init(high: h, low: l)
  }

  /// The 16 bytes in canonical (string) order.
  public var canonicalBytes: [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
      + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
  }

  /// The 16 bytes as GPT stores them (mixed-endian).
  public var gptBytes: [UInt8] {
    let c = canonicalBytes
    return [c[3], c[2], c[1], c[0], c[5], c[4], c[7], c[6]] + Array(c[8..<16])
  }

  /// From 16 GPT-encoded (mixed-endian) bytes; nil if the count is not 16.
  public init?(gptBytes g: [UInt8]) {
    guard g.count == 16 else { return nil }
    self.init(canonicalBytes: [g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6]] + Array(g[8..<16]))
  }

  /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (any case, optional braces).
  public init(parsing text: String) throws {
    var s = Substring(text.trimmingWhitespace())
    if s.hasPrefix("{") && s.hasSuffix("}") && s.count >= 2 { s = s.dropFirst().dropLast() }
    let utf8 = Array(s.utf8)
    guard utf8.count == 36 else { throw DiskError.invalidGUID(text) }
    var bytes = [UInt8]()
    var nibble: UInt8? = nil
    for (i, ch) in utf8.enumerated() {
      if i == 8 || i == 13 || i == 18 || i == 23 {
        guard ch == UInt8(ascii: "-") else { throw DiskError.invalidGUID(text) }
        continue
      }
      let value: UInt8
      switch ch {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): value = ch - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): value = ch - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): value = ch - UInt8(ascii: "A") + 10
      default: throw DiskError.invalidGUID(text)
      }
      if let high = nibble {
        bytes.append(high << 4 | value)
        nibble = nil
      } else {
        nibble = value
      }
    }
    guard let guid = GUID(canonicalBytes: bytes) else { throw DiskError.invalidGUID(text) }
    self = guid
  }

  /// Lowercase `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
  public var description: String {
    let hex = SHA256Stream.hex(canonicalBytes)
    let chars = Array(hex)
    return String(chars[0..<8]) + "-" + String(chars[8..<12]) + "-" + String(chars[12..<16]) + "-"
      + String(chars[16..<20]) + "-" + String(chars[20..<32])
  }

  /// Uppercase form, as sfdisk and sgdisk print it.
  public var uppercased: String { description.uppercased() }

  /// Deterministic version-4-shaped GUID: first 16 bytes of SHA-256(seed + NUL + label),
  /// with the version nibble set to 4 and the RFC 4122 variant bits set.
  public static func derived(seed: String, label: String) -> GUID {
    var bytes = SHA256Stream.digest(Array(seed.utf8) + [0] + Array(label.utf8))
    bytes[6] = (bytes[6] & 0x0F) | 0x40
    bytes[8] = (bytes[8] & 0x3F) | 0x80
    return GUID(canonicalBytes: Array(bytes[0..<16])) ?? .zero
  }

  public static func < (a: GUID, b: GUID) -> Bool {
    (a.high, a.low) < (b.high, b.low)
  }

  public init(from decoder: Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    try self.init(parsing: text)
  }

  public func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(description)
  }
}

extension String {
  func trimmingWhitespace() -> Substring {
    var s = Substring(self)
    while let f = s.first, f.isWhitespace { s = s.dropFirst() }
    while let l = s.last, l.isWhitespace { s = s.dropLast() }
    return s
  }
}
