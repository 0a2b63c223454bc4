import Foundation
import Testing

@testable import RoseFS

/// The block stream hands full staging buffers to a writer thread (issue 10): what lands in the
/// image, what `readBack` returns while blocks are staged, queued or written, and the checksum
/// spool must all be what a plain sequential writer would give.
@Suite struct BlockStreamTests {
  /// Block `i`'s bytes: distinct per block and per byte, so a block written at the wrong address or
  /// twice shows.
  static func pattern(_ i: Int) -> [UInt8] {
    (0..<RoseLayout.blockSize).map {
      UInt8(truncatingIfNeeded: $0 &* 31 &+ i &* 7 &+ ($0 >> 8) &* i)
    }
  }

  @Test func blocksChecksumsAndReadBackMatchASequentialWriter() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "blockstream-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("out.img").path
    #expect(FileManager.default.createFile(atPath: path, contents: nil))
    let image = try ImageFile(openPath: path, writable: true)
    let checksum = RoseChecksum(uuid: Array(repeating: 0x5A, count: 16))
    let first = RoseLayout.mainStart
    // More blocks than all staging buffers hold together, so the packing thread waits for the writer.
    let count = StagingWriter.blocksPerBuffer * (StagingWriter.bufferCount + 3) + 17
    do {
      let stream = try BlockStream(image: image, checksum: checksum, firstBlock: first)
      for i in 0..<count {
        let bytes = Self.pattern(i)
        // Every third block is metadata inside the data phase: a zero spool entry.
        let addr = try bytes.withUnsafeBytes { try stream.append($0, dataChecksum: i % 3 != 0) }
        #expect(addr == first + UInt32(i))
        if i % 97 == 0 {
          // Staged, queued or written: each reads back as it was committed.
          for back in [0, i / 2, i] {
            #expect(
              try stream.readBack(first + UInt32(back)) == Self.pattern(back), "block \(back)")
          }
        }
      }
      try stream.flush()
      let spool = stream.crcSpool
      try spool.rewindForReading()
      for i in 0..<count {
        let expected = i % 3 != 0 ? checksum.checksum(Self.pattern(i)) : 0
        #expect(spool.next() == expected, "checksum of block \(i)")
      }
    }
    let written = try #require(FileManager.default.contents(atPath: path))
    let bs = RoseLayout.blockSize
    #expect(written.count == (Int(first) + count) * bs)
    for i in stride(from: 0, to: count, by: 1) {
      let start = (Int(first) + i) * bs
      #expect(Array(written[start..<start + bs]) == Self.pattern(i), "block \(i) in the file")
    }
  }

  /// The data writer reuses one buffer for the small bytes of every file; an inline file's content
  /// must be a copy of its own length, not the reused buffer with the capacity a larger tail grew
  /// it to (200,000 small files kept 21 MiB of spare capacity that way).
  @Test func inlineContentDoesNotKeepTheReusedBuffer() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
      "datawriter-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("out.img").path
    #expect(FileManager.default.createFile(atPath: path, contents: nil))
    let image = try ImageFile(openPath: path, writable: true)
    let builder = try ImageBuilder(image: image, options: BuildOptions(sourceDateEpoch: 0))
    let data = builder.data
    let tail = [UInt8](repeating: 7, count: RoseLayout.blockSize + 3000)
    let tailContent = try data.store(tail, ino: 100)
    #expect(tailContent.inline == nil && tailContent.tail != nil)
    let small = Array("tiny".utf8)
    #expect(InodeSlots.fileIsInline(size: UInt64(small.count)))
    let content = try data.store(small, ino: 101)
    let inline = try #require(content.inline)
    #expect(inline == small)
    #expect(inline.capacity < 64, "an inline file of 4 bytes keeps \(inline.capacity) bytes")
    #expect(try data.readBack(tailContent) == tail)
  }
}
