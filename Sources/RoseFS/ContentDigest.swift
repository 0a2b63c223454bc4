import CCrypto

/// SHA-256 (FIPS 180-4) over what a pack writes, for the default volume UUID (FORMAT.md section 3):
/// two images with different content get different UUIDs, the same inputs the same one. The hash is
/// libcrypto's (EVP). The input is fed in many small fields (a few per inode, 4 bytes per data
/// block), so updates gather into a fixed 4 KiB buffer and reach libcrypto a buffer at a time: one
/// EVP call per field would cost more than the hashing. Not copyable: it owns the libcrypto context.
struct ContentDigest: ~Copyable {
  private static let bufferSize = 4096
  private let context: OpaquePointer
  private let buffer: UnsafeMutableRawPointer
  /// Bytes gathered at the start of `buffer`, not yet given to libcrypto.
  private var pending = 0

  /// Throws only when libcrypto cannot set up the context (out of memory; SHA-256 is in every
  /// libcrypto build): reported as an error of the pack, not a crash.
  init() throws(RoseFSError) {
    guard let context = EVP_MD_CTX_new() else {
      throw .internalInvariant("libcrypto could not allocate a SHA-256 context")
    }
    guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
      EVP_MD_CTX_free(context)
      throw .internalInvariant("libcrypto could not start a SHA-256 digest")
    }
    self.context = context
    buffer = .allocate(byteCount: Self.bufferSize, alignment: 16)
  }

  deinit {
    EVP_MD_CTX_free(context)
    buffer.deallocate()
  }

  private mutating func drain() {
    guard pending > 0 else { return }
    EVP_DigestUpdate(context, buffer, pending)
    pending = 0
  }

  mutating func update(_ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
    if pending + bytes.count > Self.bufferSize { drain() }
    if bytes.count >= Self.bufferSize {
      EVP_DigestUpdate(context, base, bytes.count)
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
    var length: UInt32 = 0
    out.withUnsafeMutableBufferPointer { _ = EVP_DigestFinal_ex(context, $0.baseAddress, &length) }
    return out
  }
}
