import Foundation
import RoseFS
import Testing

@testable import RoseIngest

/// A plain tar is read ahead on a second thread (issue 10): entries that straddle the read-ahead
/// buffers must come out whole, and inputs libarchive reads out of order (zip) must not go that way.
@Suite struct ReadAheadTests {
  @Test func entriesAcrossManyBuffersComeOutWhole() throws {
    let dir = try tempDir("readahead")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // Python's tarfile writes it; sizes chosen so headers and data cross the 256 KiB buffers.
    let p = try craft(
      dir, "spanning.tar",
      """
      f('big', bytes(range(256)) * 12289)
      for n in range(300): f('d/f%d' % n, bytes([n % 251]) * (n * 37 % 9000))
      f('last', b'end')
      """)
    let head = try #require(FileHandle(forReadingAtPath: p)?.readData(ofLength: 512))
    #expect(ReadAhead.isStreamed(head: Array(head)), "a ustar input must take the read-ahead path")
    let s = try Scratch()
    try ArchiveReader(path: p).read(into: s.editor)
    let big = try #require(s.editor.lookup("big"))
    #expect(try s.builder.data.readBack(big.content) == Array((0..<12289).flatMap { _ in 0...255 }))
    for n in 0..<300 {
      let f = try #require(s.editor.lookup("d/f\(n)"), "d/f\(n)")
      #expect(
        try s.builder.data.readBack(f.content)
          == [UInt8](repeating: UInt8(n % 251), count: n * 37 % 9000), "d/f\(n)")
    }
    let last = try #require(s.editor.lookup("last"))
    #expect(try s.builder.data.readBack(last.content) == Array("end".utf8))
  }

  @Test func onlyInputsReadInOrderAreReadAhead() {
    var tar = [UInt8](repeating: 0, count: 512)
    tar.replaceSubrange(257..<262, with: Array("ustar".utf8))
    #expect(ReadAhead.isStreamed(head: tar))
    #expect(ReadAhead.isStreamed(head: [0x1F, 0x8B, 8, 0]))
    #expect(ReadAhead.isStreamed(head: Array("070701".utf8) + [0x30]))
    // A zip is read from its central directory when libarchive can seek: never read ahead.
    #expect(!ReadAhead.isStreamed(head: [0x50, 0x4B, 3, 4] + [UInt8](repeating: 0, count: 508)))
    #expect(!ReadAhead.isStreamed(head: []))
  }
}
