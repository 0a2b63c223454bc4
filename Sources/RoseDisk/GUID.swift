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

  /// systemd's `id128_make_v4_uuid`: the first 16 bytes of `digest` with the version nibble set to 4
  /// and the RFC 4122 variant bits set.
  static func v4(_ digest: [UInt8]) -> GUID {
    var bytes = Array(digest.prefix(16))
    bytes[6] = (bytes[6] & 0x0F) | 0x40
    bytes[8] = (bytes[8] & 0x3F) | 0x80
    return GUID(canonicalBytes: bytes) ?? .zero
  }

  /// The disk GUID systemd-repart (252) gives a new partition table:
  /// `derive_uuid(seed, "disk-uuid")` = v4(HMAC-SHA256(key: seed bytes, "disk-uuid")).
  public static func repartDiskGUID(seed: GUID) -> GUID {
    v4(HMACSHA256.mac(key: seed.canonicalBytes, message: Array("disk-uuid".utf8)))
  }

  /// The partition GUID systemd-repart (252, `partition_acquire_uuid`) gives the `instance`-th
  /// (0-based) partition of type `type` on the disk: v4(HMAC-SHA256(key: seed, type bytes)) for the
  /// first, and v4(HMAC-SHA256(key: seed, type bytes || LE64(instance))) for later ones.
  public static func repartPartitionGUID(seed: GUID, type: GUID, instance: UInt64) -> GUID {
    var message = type.canonicalBytes
    if instance > 0 {
      message += (0..<8).map { UInt8(truncatingIfNeeded: instance >> (8 * UInt64($0))) }
    }
    return v4(HMACSHA256.mac(key: seed.canonicalBytes, message: message))
  }

  /// Parses a UUID as systemd's `sd_id128_from_string` does: 32 hex digits with or without the four
  /// dashes, any case; nil otherwise.
  public static func parseID128(_ text: String) -> GUID? {
    if let guid = try? GUID(parsing: text), !text.hasPrefix("{") { return guid }
    let utf8 = Array(text.utf8)
    guard utf8.count == 32 else { return nil }
    var bytes: [UInt8] = []
    var i = 0
    while i < 32 {
      guard let high = hexValue(utf8[i]), let low = hexValue(utf8[i + 1]) else { return nil }
      bytes.append(high << 4 | low)
      i += 2
    }
    return GUID(canonicalBytes: bytes)
  }

  static func hexValue(_ ch: UInt8) -> UInt8? {
    switch ch {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return ch - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return ch - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return ch - UInt8(ascii: "A") + 10
    default: return nil
    }
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

/// HMAC-SHA256 (RFC 2104), as systemd's `hmac_sha256` computes it for repart's UUIDs.
public enum HMACSHA256 {
  public static func mac(key: [UInt8], message: [UInt8]) -> [UInt8] {
    let blockSize = 64
    var block = key.count > blockSize ? SHA256Stream.digest(key) : key
    block += [UInt8](repeating: 0, count: blockSize - block.count)
    let inner = SHA256Stream.digest(block.map { $0 ^ 0x36 } + message)
    return SHA256Stream.digest(block.map { $0 ^ 0x5C } + inner)
  }
}
