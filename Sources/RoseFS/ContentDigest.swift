import CChecksum

/// SHA-256 (FIPS 180-4) over what a pack writes, for the default volume UUID (FORMAT.md section 3):
/// two images with different content get different UUIDs, the same inputs the same one. RoseFS links
/// no crypto library; the block function is C (`rose_sha256_blocks`). The input is fed in many small
/// fields (a few per inode, 4 bytes per data block), so updates copy into a fixed 64-byte buffer
/// and never allocate.
struct ContentDigest {
  private var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
    0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab,
    0x5be0_cd19
  )
  /// Bytes not yet folded in (fewer than 64), at the start of this buffer.
  private var pending: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (
    0, 0, 0, 0, 0, 0, 0, 0
  )
  private var pendingCount = 0
  private var length: UInt64 = 0

  private mutating func fold(_ blocks: UnsafeRawPointer, count: Int) {
    withUnsafeMutableBytes(of: &state) { s in
      rose_sha256_blocks(s.baseAddress!.assumingMemoryBound(to: UInt32.self), blocks, count)
    }
  }

  mutating func update(_ bytes: UnsafeRawBufferPointer) {
    guard var src = bytes.baseAddress, !bytes.isEmpty else { return }
    var left = bytes.count
    length &+= UInt64(left)
    if pendingCount > 0 {
      let n = min(64 - pendingCount, left)
      let at = pendingCount
      withUnsafeMutableBytes(of: &pending) { p in
        (p.baseAddress! + at).copyMemory(from: src, byteCount: n)
      }
      pendingCount += n
      src += n
      left -= n
      guard pendingCount == 64 else { return }
      var full = pending
      withUnsafeBytes(of: &full) { fold($0.baseAddress!, count: 1) }
      pendingCount = 0
    }
    if left >= 64 {
      fold(src, count: left / 64)
      src += left / 64 * 64
      left %= 64
    }
    if left > 0 {
      withUnsafeMutableBytes(of: &pending) { p in
        p.baseAddress!.copyMemory(from: src, byteCount: left)
      }
      pendingCount = left
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

  mutating func finalize() -> [UInt8] {
    let bits = length &* 8
    var tail = [UInt8](repeating: 0, count: (pendingCount < 56 ? 56 : 120) - pendingCount)
    tail[0] = 0x80
    update(tail)
    update(bits.bigEndian)
    var out: [UInt8] = []
    out.reserveCapacity(32)
    withUnsafeBytes(of: &state) { s in
      for i in 0..<8 {
        withUnsafeBytes(of: s.load(fromByteOffset: 4 * i, as: UInt32.self).bigEndian) { out += $0 }
      }
    }
    return out
  }
}
