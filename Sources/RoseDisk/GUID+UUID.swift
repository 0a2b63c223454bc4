import Foundation

// The recipe model names types and partitions with Foundation's `UUID`; the disk code with `GUID`.
// Both hold the 16 bytes in canonical (string) order, so converting is a copy of the bytes, never a
// round trip through text.
extension GUID {
  /// The same 16 bytes as `uuid`.
  public init(_ uuid: UUID) {
    let u = uuid.uuid
    let bytes = [
      u.0, u.1, u.2, u.3, u.4, u.5, u.6, u.7, u.8, u.9, u.10, u.11, u.12, u.13, u.14, u.15,
    ]
    var high: UInt64 = 0
    var low: UInt64 = 0
    for i in 0..<8 { high = high << 8 | UInt64(bytes[i]) }
    for i in 8..<16 { low = low << 8 | UInt64(bytes[i]) }
    self.init(high: high, low: low)
  }

  /// The same 16 bytes as a Foundation `UUID`.
  public var uuid: UUID {
    let c = canonicalBytes
    return UUID(
      uuid: (
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13],
        c[14], c[15]
      ))
  }
}
