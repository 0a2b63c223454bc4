import Foundation
import RoseTestSupport
import Testing

@testable import RoseFS
@testable import RoseIngest

#if canImport(Glibc)
  import Glibc
#endif

/// Issue 10: the in-memory tree costs well under 200 bytes per entry. Fails if the inode record grows
/// past one 80-byte malloc chunk, if short names go back to one heap array each, or if the per-entry
/// cost of ingest comes back (it was about 240 bytes here: a 160-byte inode chunk, a 48-byte name
/// array and the dictionary slot; 109 with the compact inode and name and a `[Name: Inode]` per
/// directory; 104 with `DirectoryEntries`, the 80-byte inode chunk plus a 24-byte entry).
@Suite struct TreeMemoryTests {
  static let entries = 30_000

  @Test func recordsStayCompact() {
    #expect(MemoryLayout<Name>.size == 16)
    #expect(MemoryLayout<FileContent>.size <= 25)
    let inode = Inode(kind: .regular, permissions: 0o644, mtime: Timestamp(seconds: 1_700_000_000))
    #if canImport(Glibc)
      // The object: 16-byte header plus stored fields; glibc gives a 72-byte request an 80-byte chunk.
      typealias UsableSize = @convention(c) (UnsafeMutableRawPointer?) -> Int
      if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_usable_size") {
        let usableSize = unsafeBitCast(symbol, to: UsableSize.self)
        let usable = usableSize(Unmanaged.passUnretained(inode).toOpaque())
        #expect(usable <= 72, "an Inode takes a \(usable)-byte malloc block")
      }
    #endif
    #expect(inode.extras == nil, "a plain inode allocates no side record")
  }

  /// A host file's atime and ctime (both differing from mtime) take the 40-byte times record, not
  /// the 80-byte `InodeExtras`, and keep every bit: 64-bit seconds, nanoseconds, through mtime edits,
  /// a clone, and a promotion to the full record (xattrs) and back.
  @Test func hostTimesTakeTheSmallRecord() throws {
    let m = Timestamp(seconds: 1_700_000_000, nanoseconds: 5)
    let a = Timestamp(seconds: 1_700_000_100, nanoseconds: 999_999_999)
    let c = Timestamp(seconds: -9_000_000_000, nanoseconds: 1)
    let inode = Inode(kind: .regular, permissions: 0o644, mtime: m, atime: a, ctime: c)
    guard case .times(let record) = inode.side else {
      Issue.record(
        "atime/ctime alone must use the times record, not \(String(describing: inode.side))")
      return
    }
    #if canImport(Glibc)
      typealias UsableSize = @convention(c) (UnsafeMutableRawPointer?) -> Int
      if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_usable_size") {
        let usable = unsafeBitCast(symbol, to: UsableSize.self)(
          Unmanaged.passUnretained(record).toOpaque())
        #expect(usable <= 40, "the times record takes a \(usable)-byte malloc block")
      }
    #endif
    #expect(inode.mtime == m && inode.atime == a && inode.ctime == c)
    let wide = Timestamp(seconds: 1 << 40, nanoseconds: 7)
    inode.mtime = wide
    #expect(inode.mtime == wide && inode.atime == a && inode.ctime == c && inode.extras != nil)
    inode.mtime = m
    guard case .times = inode.side else {
      Issue.record("back to the times record once mtime fits again")
      return
    }
    inode.setXattr(Xattr("user.x", [1]))
    #expect(inode.extras != nil && inode.atime == a && inode.ctime == c)
    inode.xattrs = []
    let copy = inode.clone()
    #expect(copy.atime == a && copy.ctime == c && copy.mtime == m && copy.extras == nil)
    copy.atime = m
    copy.ctime = m
    #expect(copy.side.map { _ in true } == nil, "times equal to mtime are stored once")
    #expect(inode.atime == a, "a clone's times are its own")
  }

  /// 30,000 empty files through `TreeEditor.addInline`, 1000 to a directory, named as bench.py's
  /// `make_tree` names them; the heap growth per entry, smallest of up to twelve tries (tests running
  /// beside it allocate into the same heap), stopping at the first under the bound.
  @Test func ingestCostPerEntry() throws {
    guard HeapMeter.bytesInUse() != nil else {
      print("skipped: no glibc malloc_info to measure the heap with")
      return
    }
    let limit = 120.0
    let perEntry = try #require(
      try HeapMeter.smallestGrowthPerEntry(
        entries: Self.entries, under: limit, prepare: { try Scratch(epoch: 0) },
        measure: { s in
          var path = [UInt8]()
          for i in 0..<Self.entries {
            path = Array(String(format: "d%04d/f%06d", i / 1000, i).utf8)
            try s.editor.addInline([], at: path)
          }
          #expect(s.editor.lookup(path)?.kind == .regular)
        }))
    print("TreeMemoryTests: ingest holds \(perEntry) bytes per entry")
    #expect(perEntry < limit, "the tree holds \(perEntry) bytes per entry")
  }

  /// The compact forms lose nothing: times to the nanosecond (atime/ctime kept when mtime moves,
  /// seconds outside Int32), xattrs, rdev, and names of every length compare and hash by bytes.
  @Test func compactFormsKeepEverything() {
    let t = Timestamp(seconds: 1_700_000_000, nanoseconds: 123_456_789)
    let inode = Inode(kind: .characterDevice, permissions: 0o600, mtime: t)
    #expect(inode.atime == t && inode.ctime == t && inode.extras == nil)
    let later = Timestamp(seconds: 1_800_000_000, nanoseconds: 1)
    inode.mtime = later
    #expect(inode.mtime == later && inode.atime == t && inode.ctime == t)
    inode.atime = later
    inode.ctime = later
    #expect(inode.extras == nil, "times equal to mtime are stored once")
    let far = Timestamp(seconds: -5_000_000_000, nanoseconds: 999_999_999)
    inode.mtime = far
    #expect(inode.mtime == far && inode.atime == later && inode.ctime == later)
    inode.rdevMajor = 4
    inode.rdevMinor = 65
    inode.setXattr(Xattr("user.b", [2]))
    inode.setXattr(Xattr("user.a", [1]))
    let copy = inode.clone()
    #expect(copy.mtime == far && copy.rdevMajor == 4 && copy.rdevMinor == 65)
    #expect(copy.xattrs.map { String(decoding: $0.name, as: UTF8.self) } == ["user.a", "user.b"])

    let samples: [[UInt8]] = [
      [], [0x61], Array("f000123".utf8), Array(repeating: 0x7A, count: 15),
      Array(repeating: 0x7A, count: 16), [0xFF, 0xFE, 0x80], Array(repeating: 0x61, count: 255),
      [0x61, 0x00, 0x62],
    ]
    for a in samples {
      #expect(Name(a).bytes == a && Name(a).count == a.count)
      for b in samples {
        #expect((Name(a) == Name(b)) == (a == b))
        #expect((Name(a) < Name(b)) == a.lexicographicallyPrecedes(b))
        if a == b { #expect(Name(a).hashValue == Name(b).hashValue) }
      }
    }
    var content = FileContent(size: 3, inline: [1, 2, 3])
    let pool = InlineBytesPool()
    let pooled = pool.pack(content)
    #expect(pooled == content && pooled.inline == [1, 2, 3] && pooled.size == 3)
    content = pooled
    content.size = 4
    content.inline = [1, 2, 3, 4]
    #expect(
      content.inline == [1, 2, 3, 4] && pooled.inline == [1, 2, 3], "edits never touch the pool")
  }

  /// Short names compare by words (`Name.<`'s fast path): the order must be the bytes' order for
  /// every position a difference can sit at, every byte value (high bytes too) and prefixes, and
  /// across the short and long forms.
  @Test func namesOrderAsTheirBytes() {
    var rng = SystemRandomNumberGenerator()
    var samples: [[UInt8]] = []
    for length in 0...17 {
      for _ in 0..<6 {
        samples.append((0..<length).map { _ in UInt8.random(in: 1...255, using: &rng) })
      }
    }
    // Names that differ in one byte only, at each position, by the smallest step and the largest.
    let base = Array(repeating: UInt8(0x80), count: 15)
    for position in 0..<15 {
      for value: UInt8 in [0x01, 0x7F, 0x81, 0xFF] {
        var n = base
        n[position] = value
        samples.append(n)
        samples.append(Array(n[0...position]))
      }
    }
    let names = samples.map { Name($0) }
    var wrong: [String] = []
    for i in samples.indices {
      for j in samples.indices
      where (names[i] < names[j]) != samples[i].lexicographicallyPrecedes(samples[j]) {
        wrong.append("\(Name.printable(samples[i])) < \(Name.printable(samples[j]))")
      }
    }
    let wrongCount = wrong.count
    #expect(wrongCount == 0, "pairs out of byte order, first five: \(wrong.prefix(5))")
  }
}
