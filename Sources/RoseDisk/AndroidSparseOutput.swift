import CChecksum
import Foundation
import RoseSizes

/// Android sparse image (`.simg`, libsparse format 1.0): 28-byte file header, 12-byte chunk
/// headers, little-endian. Used ranges of the AllocationMap become RAW chunks (or FILL chunks
/// for blocks that repeat one 32-bit word, including zero blocks, when `useFill` is on);
/// holes become DON'T CARE. A CRC32 chunk (and the header's image checksum) is written only
/// when `includeCRC` is set, because current fastboot rejects CRC chunks.
///
/// An image whose size is not a multiple of `blockSize` is padded with zeros to the next
/// block, so the expanded image (`simg2img`) is the raw image plus that padding. Plan disks
/// with automatic size (always a 4 KiB multiple) or a 4 KiB-multiple size to avoid padding.
public struct AndroidSparseOutput: Sendable {
  public static let magic: UInt32 = 0xED26_FF3A
  public static let chunkRaw: UInt16 = 0xCAC1
  public static let chunkFill: UInt16 = 0xCAC2
  public static let chunkDontCare: UInt16 = 0xCAC3
  public static let chunkCRC32: UInt16 = 0xCAC4

  public var blockSize: UInt32
  public var includeCRC: Bool
  public var useFill: Bool

  /// What was written.
  public struct Summary: Sendable, Equatable {
    public var totalBlocks: UInt32 = 0
    public var chunks: UInt32 = 0
    public var rawBlocks: UInt64 = 0
    public var fillBlocks: UInt64 = 0
    public var dontCareBlocks: UInt64 = 0
    /// Zero bytes added to reach a whole block.
    public var paddingBytes: UInt64 = 0
    /// CRC32 of the expanded image (only computed with `includeCRC`).
    public var checksum: UInt32 = 0
  }

  public init(blockSize: UInt32 = 4096, includeCRC: Bool = false, useFill: Bool = true) {
    self.blockSize = blockSize
    self.includeCRC = includeCRC
    self.useFill = useFill
  }

  private enum Pending {
    case none
    case dontCare(UInt64)
    case fill(UInt32, UInt64)
  }

  /// Converts `rawImage` into `output` using `map` for the used ranges.
  @discardableResult
  public func write(rawImage: String, map: AllocationMap, to output: String) throws -> Summary {
    let input = try FileIO.open(rawImage, flags: O_RDONLY)
    defer { close(input) }
    let imageSize = try FileIO.size(input, path: rawImage)
    let totalBlocks = try blocks(of: imageSize, path: rawImage)
    return try encode(
      input, path: rawImage, base: 0, size: imageSize, map: map, dataBlocks: 0..<totalBlocks,
      to: output)
  }

  /// Writes the bytes `[offset, offset + size)` of `rawImage` (one partition) as a sparse image
  /// of their own, for `fastboot flash PARTITION FILE`. `offset` must be a block multiple.
  @discardableResult
  public func writePartition(
    rawImage: String, map: AllocationMap, offset: UInt64, size: UInt64, to output: String
  ) throws -> Summary {
    let bs = UInt64(blockSize)
    guard offset % bs == 0 else {
      throw DiskError.invalidInput(
        path: output,
        reason: "partition offset \(offset) is not a multiple of the sparse block size \(bs)")
    }
    let input = try FileIO.open(rawImage, flags: O_RDONLY)
    defer { close(input) }
    let local = AllocationMap(
      unsorted: map.extents(inRange: offset, length: size).map {
        AllocationMap.Extent(offset: $0.offset - offset, length: $0.length)
      })
    let totalBlocks = try blocks(of: size, path: output)
    return try encode(
      input, path: rawImage, base: offset, size: size, map: local, dataBlocks: 0..<totalBlocks,
      to: output)
  }

  /// Splits the image into sparse images of at most `maxBytes` each, as libsparse's
  /// `sparse_file_resparse` (fastboot) splits at the device's max-download-size: every piece
  /// describes the whole image, with DON'T CARE before and after its share of the data, so each
  /// is valid alone and flashing (or `simg2img`-ing) them in turn gives the image. `path(n)`
  /// names piece `n` (1-based). Returns the paths written.
  @discardableResult
  public func writeSplit(
    rawImage: String, map: AllocationMap, maxBytes: UInt64, path: (Int) -> String
  ) throws -> [String] {
    let input = try FileIO.open(rawImage, flags: O_RDONLY)
    defer { close(input) }
    let imageSize = try FileIO.size(input, path: rawImage)
    let totalBlocks = try blocks(of: imageSize, path: rawImage)
    let runs = try scanRuns(input, path: rawImage, imageSize: imageSize, map: map)
    let windows = try AndroidSparseOutput.splitWindows(
      runs: runs, blockSize: UInt64(blockSize), totalBlocks: totalBlocks, maxBytes: maxBytes,
      crc: includeCRC)
    var written: [String] = []
    for (n, window) in windows.enumerated() {
      let output = path(n + 1)
      try encode(
        input, path: rawImage, base: 0, size: imageSize, map: map,
        dataBlocks: window.clamped(to: 0..<totalBlocks), to: output)
      written.append(output)
    }
    return written
  }

  /// A run of mapped blocks that become one kind of chunk: RAW data, or FILL (one repeated
  /// 32-bit word, zero blocks included) when `useFill` is on.
  struct Run: Equatable {
    var first: UInt64
    var count: UInt64
    var fill: UInt32?
  }

  /// Reads the mapped blocks once and classifies them as `encode` will, so that a split can
  /// count FILL runs at their 16 bytes instead of as data. Memory follows the runs.
  func scanRuns(_ input: Int32, path: String, imageSize: UInt64, map: AllocationMap) throws
    -> [Run]
  {
    let bs = UInt64(blockSize)
    let batchBlocks = UInt64(FileIO.chunkSize) / bs
    let buffer = FileIO.allocate(Int(batchBlocks * bs))
    defer { buffer.deallocate() }
    var runs: [Run] = []
    for range in map.blockRanges(blockSize: bs, imageSize: imageSize) {
      var block = range.first
      while block <= range.last {
        let count = min(batchBlocks, range.last - block + 1)
        let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(count * bs)])
        try RawImageOutput.readMapped(input, path: path, map: nil, offset: block * bs, into: chunk)
        guard let base = chunk.baseAddress else { break }
        for i in 0..<count {
          let p = base + Int(i * bs)
          let fill: UInt32? =
            useFill && memcmp(p, p + 4, Int(bs) - 4) == 0 ? p.loadUnaligned(as: UInt32.self) : nil
          if var last = runs.last, last.first + last.count == block + i, last.fill == fill {
            last.count += 1
            runs[runs.count - 1] = last
          } else {
            runs.append(Run(first: block + i, count: 1, fill: fill))
          }
        }
        block += count
      }
    }
    return runs
  }

  /// Block ranges of the pieces of a split image, packed greedily: a RAW run costs its blocks
  /// plus a chunk header per read batch, a FILL run 16 bytes, each gap a DON'T CARE header.
  static func splitWindows(
    runs: [Run], blockSize bs: UInt64, totalBlocks: UInt64, maxBytes: UInt64, crc: Bool
  ) throws -> [Range<UInt64>] {
    let batch = max(UInt64(FileIO.chunkSize) / bs, 1)
    // File header, leading and trailing DON'T CARE, CRC chunk.
    let fixed: UInt64 = 28 + 12 + 12 + (crc ? 16 : 0)
    func cost(_ blocks: UInt64, fill: Bool) -> UInt64 {
      fill ? 12 + 16 : 12 + 12 * (blocks / batch + 1) + blocks * bs
    }
    guard maxBytes >= fixed + cost(1, fill: false) else {
      throw DiskError.invalidInput(
        path: "MaxDownloadSize", reason: "\(maxBytes) bytes cannot hold one \(bs)-byte block")
    }
    var windows: [Range<UInt64>] = []
    var start: UInt64 = 0
    var used = fixed
    for run in runs {
      var first = run.first
      let end = run.first + run.count
      while first < end {
        let left = end - first
        if used + cost(left, fill: run.fill != nil) <= maxBytes {
          used += cost(left, fill: run.fill != nil)
          break
        }
        // A FILL run moves whole to the next piece; a RAW run gives this piece what fits.
        var fit: UInt64 = 0
        if run.fill == nil && maxBytes > used + cost(0, fill: false) {
          fit = min(left, (maxBytes - used - cost(0, fill: false)) / bs)
          while fit > 0 && used + cost(fit, fill: false) > maxBytes { fit -= 1 }
        }
        let cut = first + fit
        if cut > start { windows.append(start..<cut) }
        start = cut
        first = cut
        used = fixed
      }
    }
    windows.append(start..<totalBlocks)
    return windows
  }

  func blocks(of size: UInt64, path: String) throws -> UInt64 {
    let bs = UInt64(blockSize)
    guard bs >= 1024, bs % 4 == 0, bs <= UInt64(FileIO.chunkSize) else {
      throw DiskError.invalidInput(
        path: path, reason: "sparse block size \(bs) must be a multiple of 4 >= 1024")
    }
    let totalBlocks = (size + bs - 1) / bs
    guard totalBlocks <= UInt64(UInt32.max) else {
      throw DiskError.invalidInput(
        path: path,
        reason: "image of \(formatSize(size, exact: true)) has more than 2^32 blocks of \(bs) bytes"
      )
    }
    return totalBlocks
  }

  /// Writes one sparse image of `size` bytes whose block `b` is the input's bytes at
  /// `base + b * blockSize`: mapped blocks inside `dataBlocks` become RAW or FILL chunks,
  /// everything else DON'T CARE. Bytes past `size` in the last block read as zeros.
  @discardableResult
  func encode(
    _ input: Int32, path rawImage: String, base origin: UInt64, size imageSize: UInt64,
    map fullMap: AllocationMap, dataBlocks: Range<UInt64>, to output: String
  ) throws -> Summary {
    let bs = UInt64(blockSize)
    let totalBlocks = (imageSize + bs - 1) / bs
    var summary = Summary()
    summary.totalBlocks = UInt32(totalBlocks)
    summary.paddingBytes = totalBlocks * bs - imageSize
    let map = AllocationMap(
      unsorted: fullMap.extents(
        inRange: dataBlocks.lowerBound * bs,
        length: (dataBlocks.upperBound - dataBlocks.lowerBound) * bs))

    let file = try AtomicOutputFile(path: output)
    let writer = BufferedWriter(fd: file.fd, path: file.temporaryPath, offset: 28)
    let batchBlocks = UInt64(FileIO.chunkSize) / bs
    let buffer = FileIO.allocate(Int(batchBlocks * bs))
    defer { buffer.deallocate() }
    let zeros = FileIO.allocate(Int(bs))
    defer { zeros.deallocate() }
    if let zeroBase = zeros.baseAddress { memset(zeroBase, 0, Int(bs)) }
    var crc: UInt32 = 0xFFFF_FFFF
    var pending = Pending.none

    func chunkHeader(_ type: UInt16, blocks: UInt64, totalSize: UInt32) throws {
      var h = [UInt8](repeating: 0, count: 12)
      h.storeLE(type, at: 0)
      h.storeLE(UInt32(truncatingIfNeeded: blocks), at: 4)
      h.storeLE(totalSize, at: 8)
      try writer.write(h)
      summary.chunks += 1
    }
    func flushPending() throws {
      switch pending {
      case .none: break
      case .dontCare(let count):
        try chunkHeader(AndroidSparseOutput.chunkDontCare, blocks: count, totalSize: 12)
        summary.dontCareBlocks += count
      case .fill(let pattern, let count):
        try chunkHeader(AndroidSparseOutput.chunkFill, blocks: count, totalSize: 16)
        try withUnsafeBytes(of: pattern) { try writer.write($0) }
        summary.fillBlocks += count
      }
      pending = .none
    }
    func addDontCare(_ count: UInt64) throws {
      guard count > 0 else { return }
      if case .dontCare(let n) = pending {
        pending = .dontCare(n + count)
      } else {
        try flushPending()
        pending = .dontCare(count)
      }
      if includeCRC {
        for _ in 0..<count { crc = rose_crc32_update(crc, zeros.baseAddress, Int(bs)) }
      }
    }

    func emitRaw(_ pointer: UnsafeMutableRawPointer, blocks: Int) throws {
      try chunkHeader(
        AndroidSparseOutput.chunkRaw, blocks: UInt64(blocks),
        totalSize: UInt32(12 + blocks * Int(bs)))
      try writer.write(UnsafeRawBufferPointer(start: pointer, count: blocks * Int(bs)))
      summary.rawBlocks += UInt64(blocks)
    }

    var cursor: UInt64 = 0
    for range in map.blockRanges(blockSize: bs, imageSize: imageSize) {
      try addDontCare(range.first - cursor)
      var block = range.first
      while block <= range.last {
        let count = min(batchBlocks, range.last - block + 1)
        let bytes = Int(count * bs)
        let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes])
        try RawImageOutput.readMapped(
          input, path: rawImage, map: nil, offset: origin + block * bs, into: chunk)
        let inside = imageSize > block * bs ? imageSize - block * bs : 0
        if inside < UInt64(bytes), let start = chunk.baseAddress {
          memset(start + Int(inside), 0, bytes - Int(inside))
        }
        guard let base = chunk.baseAddress else { break }
        if includeCRC { crc = rose_crc32_update(crc, base, bytes) }
        var rawStart: Int? = nil
        for i in 0..<Int(count) {
          let p = base + i * Int(bs)
          let isFill = useFill && memcmp(p, p + 4, Int(bs) - 4) == 0
          if isFill {
            if let start = rawStart {
              try emitRaw(base + start * Int(bs), blocks: i - start)
              rawStart = nil
            }
            let pattern = p.loadUnaligned(as: UInt32.self)
            if case .fill(let current, let n) = pending, current == pattern {
              pending = .fill(pattern, n + 1)
            } else {
              try flushPending()
              pending = .fill(pattern, 1)
            }
          } else if rawStart == nil {
            try flushPending()
            rawStart = i
          }
        }
        if let start = rawStart { try emitRaw(base + start * Int(bs), blocks: Int(count) - start) }
        block += count
      }
      cursor = range.last + 1
    }
    try addDontCare(totalBlocks - cursor)
    try flushPending()

    crc ^= 0xFFFF_FFFF
    if includeCRC {
      summary.checksum = crc
      try chunkHeader(AndroidSparseOutput.chunkCRC32, blocks: 0, totalSize: 16)
      var value = [UInt8](repeating: 0, count: 4)
      value.storeLE(crc, at: 0)
      try writer.write(value)
    }
    try writer.flush()

    var header = [UInt8](repeating: 0, count: 28)
    header.storeLE(AndroidSparseOutput.magic, at: 0)
    header.storeLE(UInt16(1), at: 4)
    header.storeLE(UInt16(0), at: 6)
    header.storeLE(UInt16(28), at: 8)
    header.storeLE(UInt16(12), at: 10)
    header.storeLE(blockSize, at: 12)
    header.storeLE(UInt32(totalBlocks), at: 16)
    header.storeLE(summary.chunks, at: 20)
    header.storeLE(includeCRC ? crc : 0, at: 24)
    try FileIO.write(file.fd, header, at: 0, path: file.temporaryPath)
    try file.commit()
    return summary
  }
}
