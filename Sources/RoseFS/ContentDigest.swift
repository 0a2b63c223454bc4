import CNettle

/// SHA-256 (FIPS 180-4) over what a pack writes, for the default volume UUID (FORMAT.md section 3):
/// two images with different content get different UUIDs, the same inputs the same one. The hash is
/// nettle's (see CNettle's shim.h). The input is fed in many small fields (a few per inode, 4 bytes
/// per data block), so updates gather into a fixed 4 KiB buffer and reach nettle a buffer at a time: one call per field would cost more than the
/// hashing. Not copyable: it owns the buffer.
struct ContentDigest: ~Copyable {
  private static let bufferSize = 4096
  private var context = sha256_ctx()
  private let buffer: UnsafeMutableRawPointer
  /// Bytes gathered at the start of `buffer`, not yet given to nettle.
  private var pending = 0

  init() {
    nettle_sha256_init(&context)
    buffer = .allocate(byteCount: Self.bufferSize, alignment: 16)
  }

  deinit {
    buffer.deallocate()
  }

  private mutating func drain() {
    guard pending > 0 else { return }
    nettle_sha256_update(&context, pending, buffer)
    pending = 0
  }

  mutating func update(_ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
    if pending + bytes.count > Self.bufferSize { drain() }
    if bytes.count >= Self.bufferSize {
      nettle_sha256_update(&context, bytes.count, base)
    } else {
      (buffer + pending).copyMemory(from: base, byteCount: bytes.count)
      pending += bytes.count
    }
  }

  mutating func update(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { update($0) }
  }

  /// Integers are fed little-endian, names and byte strings with their length first, so that no two
  /// different sequences of fields feed the same bytes.
  mutating func update<T: FixedWidthInteger>(_ v: T) {
    withUnsafeBytes(of: v.littleEndian) { update($0) }
  }

  mutating func update(field bytes: [UInt8]) {
    update(UInt64(bytes.count))
    update(bytes)
  }

  /// The 32-byte digest of everything fed so far; the digest is spent after this.
  mutating func finalize() -> [UInt8] {
    drain()
    var out = [UInt8](repeating: 0, count: 32)
    out.withUnsafeMutableBufferPointer { nettle_sha256_digest(&context, 32, $0.baseAddress) }
    return out
  }
}
