import Foundation
import Testing

@testable import RoseFS

/// The data writer places a tail the moment it arrives whole (most small files come as one block of
/// the input), and the tail packer reuses the payload buffers of written blocks (issue 10). Both
/// must leave the image exactly as placing at `finishFile` into fresh zeroed blocks did.
@Suite struct TailPlacementTests {
  /// A builder on a fresh image file in its own directory (removed by `cleanup`).
  static func builder(_ tag: String) throws -> (ImageBuilder, URL) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "tailplace-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent("out.img").path
    #expect(FileManager.default.createFile(atPath: path, contents: nil))
    let image = try ImageFile(openPath: path, writable: true)
    return (try ImageBuilder(image: image, options: BuildOptions(sourceDateEpoch: 0)), dir)
  }

  /// File `i`'s bytes: distinct per file and per byte.
  static func bytes(_ i: Int, _ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ i &* 101 &+ 1) }
  }

  /// One sequence of files written twice: each file's data in one `write` (tails placed as they
  /// arrive), and in pieces (tails gathered and placed at `finishFile`). Every file gets the same
  /// extents (the same physical blocks: the block order did not change), the same tail reference
  /// and the same bytes. The sequence keeps a body block pending when the tail arrives after a
  /// hole, and opens more tail blocks than stay open, so placing a tail writes tail blocks.
  @Test func wholeTailsPlaceLikeTailsInPieces() throws {
    let (whole, wholeDir) = try Self.builder("whole")
    defer { try? FileManager.default.removeItem(at: wholeDir) }
    let (pieces, piecesDir) = try Self.builder("pieces")
    defer { try? FileManager.default.removeItem(at: piecesDir) }
    let bs = RoseLayout.blockSize
    // (size, ranges written): a gap between ranges is a hole.
    var files: [(size: Int, ranges: [Range<Int>])] = [
      (100, [0..<100]), (64, [0..<64]), (10, [0..<10]), (3000, [0..<3000]),
      (bs + 904, [0..<(bs + 904)]), (2 * bs + 1, [0..<(2 * bs + 1)]), (bs, [0..<bs]),
    ]
    for i in 0..<40 {
      // A body block with 100 bytes still open when the 4000-byte tail comes after a hole.
      files.append((2 * bs + 4000, [0..<100, (2 * bs)..<(2 * bs + 4000)]))
      files.append((500 + i * 37, [0..<(500 + i * 37)]))
    }
    var contents: [[FileContent]] = [[], []]
    for (n, data) in [whole.data, pieces.data].enumerated() {
      for (i, f) in files.enumerated() {
        let all = Self.bytes(i, f.size)
        try data.beginFile(ino: UInt32(100 + i), size: UInt64(f.size))
        for r in f.ranges {
          if n == 0 {
            try data.write(Array(all[r]), at: UInt64(r.lowerBound))
          } else {
            // In pieces of at most 7 bytes past the first: never the whole tail in one write.
            var at = r.lowerBound
            var piece = 1
            while at < r.upperBound {
              let end = min(r.upperBound, at + piece)
              try data.write(Array(all[at..<end]), at: UInt64(at))
              at = end
              piece = 7
            }
          }
        }
        contents[n].append(try data.finishFile())
      }
    }
    for (i, f) in files.enumerated() {
      let (a, b) = (contents[0][i], contents[1][i])
      #expect(a == b, "file \(i) (\(f.size) bytes): \(a) against \(b)")
      var want = [UInt8](repeating: 0, count: f.size)
      let all = Self.bytes(i, f.size)
      for r in f.ranges { want.replaceSubrange(r, with: all[r]) }
      #expect(try whole.data.readBack(a) == want, "file \(i) read back")
    }
    try whole.tails.flushAll()
    try pieces.tails.flushAll()
    #expect(whole.tails.addresses == pieces.tails.addresses)
  }

  /// A written tail block's payload buffer is reused without being zeroed, and only its fragments
  /// are copied to the staging buffer: the bytes past them must still reach the image as zeros,
  /// not as the old block's bytes or what the staging buffer held.
  @Test func reusedTailBlocksAreZeroPastTheirFragments() throws {
    let (builder, dir) = try Self.builder("reuse")
    defer { try? FileManager.default.removeItem(at: dir) }
    let data = builder.data
    // Every staging buffer first carries bytes that are not zero, so that a block not filled to
    // its end would show them.
    let blocks = StagingWriter.blocksPerBuffer * (StagingWriter.bufferCount + 1)
    _ = try data.store([UInt8](repeating: 0xCD, count: blocks * RoseLayout.blockSize), ino: 99)
    // 40 tails of 4000 bytes of 0xAB: one block each (two do not fit), 32 stay open, so blocks are
    // written and their buffers come back for the next blocks.
    for i in 0..<40 {
      let c = try data.store([UInt8](repeating: 0xAB, count: 4000), ino: UInt32(100 + i))
      #expect(c.tail != nil)
    }
    // 200 bytes fit in no open block (96 bytes free in each): a new block, on a reused buffer.
    let small = try data.store([UInt8](repeating: 0x01, count: 200), ino: 140)
    let ref = try #require(small.tail)
    #expect(ref.offset == 0)
    try builder.tails.flushAll()
    try builder.stream.flush()
    let block = try builder.stream.readBack(builder.tails.resolve(ref.block))
    #expect(Array(block[0..<200]) == [UInt8](repeating: 0x01, count: 200))
    #expect(
      block[200...].allSatisfy { $0 == 0 },
      "\(block[200...].filter { $0 != 0 }.count) stale bytes past the fragment")
    #expect(try data.readBack(small) == [UInt8](repeating: 0x01, count: 200))
  }
}
