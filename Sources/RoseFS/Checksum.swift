import CChecksum

/// CRC-32C as FORMAT.md defines every RoseFS checksum: the standard CRC-32C of the volume UUID
/// followed by the covered bytes. Seeding with the UUID makes a block copied from another image fail.
public struct RoseChecksum: Sendable {
  /// Register state after the 16 UUID bytes (not yet finalised).
  public let seedState: UInt32

  public init(uuid: [UInt8]) {
    seedState = uuid.withUnsafeBytes { rose_crc32c_update(0xFFFF_FFFF, $0.baseAddress, $0.count) }
  }

  @inline(__always)
  public func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    rose_crc32c_update(seedState, bytes.baseAddress, bytes.count) ^ 0xFFFF_FFFF
  }

  /// Checksum of `bytes` with the 4-byte field at `fieldOffset` taken as zero.
  public func checksum(_ bytes: UnsafeRawBufferPointer, zeroingFieldAt fieldOffset: Int) -> UInt32 {
    var s = rose_crc32c_update(seedState, bytes.baseAddress, fieldOffset)
    var zero: UInt32 = 0
    s = withUnsafeBytes(of: &zero) { rose_crc32c_update(s, $0.baseAddress, 4) }
    let rest = fieldOffset + 4
    s = rose_crc32c_update(s, bytes.baseAddress.map { $0 + rest }, bytes.count - rest)
    return s ^ 0xFFFF_FFFF
  }

  public func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }
}

/// Plain CRC-32C (no seed), the check value of "123456789" is 0xE3069283.
public func crc32c(_ bytes: [UInt8]) -> UInt32 {
  bytes.withUnsafeBytes { rose_crc32c_update(0xFFFF_FFFF, $0.baseAddress, $0.count) } ^ 0xFFFF_FFFF
}

extension RoseChecksum {
  /// What to xor into a checksum of `length` covered bytes computed under `other`'s UUID to get the
  /// checksum under this one's. CRC is affine in its register: the UUID only sets the register before
  /// the covered bytes, so the difference is that register difference carried through `length` zero
  /// bytes. The packer uses it to checksum data before the content-derived UUID is known.
  public func correction(from other: RoseChecksum, length: Int) -> UInt32 {
    let zeros = [UInt8](repeating: 0, count: length)
    return zeros.withUnsafeBytes {
      rose_crc32c_update(seedState ^ other.seedState, $0.baseAddress, $0.count)
    }
  }
}
