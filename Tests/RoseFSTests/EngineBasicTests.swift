import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

@Suite struct EngineBasicTests {
  /// The key-ordered entries a directory keeps up to date entry by entry (no sort per create) equal
  /// a fresh sort after creates, replacements, renames and removals.
  @Test func incrementallySortedEntriesEqualAFreshSort() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    let dir = try e.mkdir(parent: e.rootIno, name: Array("d".utf8), mode: 0o755, uid: 0, gid: 0).ino
    func fresh() throws -> [EncodedDirent] {
      let d = try e.directory(dir)
      return sortedDirents(
        d.entries.map { (Name($0.key), $0.value.ino, $0.value.type) }, seed: e.sb.hashSeed)
    }
    func same() throws -> Bool {
      let kept = e.sortedEntries(try e.directory(dir))
      let want = try fresh()
      return kept.map(\.key) == want.map(\.key) && kept.map(\.name) == want.map(\.name)
        && kept.map(\.ino) == want.map(\.ino)
    }
    _ = e.sortedEntries(try e.directory(dir))  // the cache exists from here on
    for i in 0..<300 {
      _ = try e.createFile(dir, "f\(i)")
      if i % 50 == 0 { #expect(try same(), "after create \(i)") }
    }
    for i in stride(from: 0, to: 300, by: 3) {
      try e.unlink(parent: dir, name: Array("f\(i)".utf8))
    }
    for i in stride(from: 1, to: 300, by: 7) where i % 3 != 0 {
      try e.rename(
        parent: dir, name: Array("f\(i)".utf8), newParent: dir, newName: Array("g\(i)".utf8),
        flags: RenameFlags())
    }
    #expect(try same())
    #expect(e.sortedEntries(try e.directory(dir)).count == 300 - 100)
    try e.unmount()
  }

  @Test func createWriteReadUnmountFsckClean() throws {
    let img = try emptyVolume(size: 16 << 20, heads: ["a", "b"])
    do {
      let dev = try FileBlockDevice(path: img.path, writable: true)
      let e = try RoseEngine.open(device: dev, subvolume: "a", readOnly: false)
      let f = try e.createFile(e.rootIno, "hello")
      try e.writeAll(f, Array("hello, rose\n".utf8))
      let big = try e.createFile(e.rootIno, "big")
      let data = testBytes(100_000, seed: 7)
      try e.writeAll(big, data)
      let d = try e.mkdir(parent: e.rootIno, name: Array("dir".utf8), mode: 0o755, uid: 1, gid: 2)
      for i in 0..<60 { _ = try e.createFile(d.ino, "file-number-\(i)") }
      _ = try e.symlink(
        parent: d.ino, name: Array("ln".utf8), target: Array("../hello".utf8), uid: 0, gid: 0)
      try e.setxattr(f, name: Array("user.k".utf8), value: [1, 2, 3], mode: .create)
      #expect(try e.read(big, offset: 0, count: 200_000) == data)
      try e.sync()
      #expect(try e.read(big, offset: 0, count: 200_000) == data)
      try e.writeAll(big, testBytes(5000, seed: 9), at: 3000)
      try e.unmount()
    }
    let problems = try fsckProblems(path: img.path)
    #expect(problems.isEmpty, "\(problems.prefix(30).joined(separator: "\n"))")
    let dev = try FileBlockDevice(path: img.path, writable: false)
    let e = try RoseEngine.open(device: dev, subvolume: "a", readOnly: true)
    #expect(
      try e.read(try e.resolve("hello"), offset: 0, count: 100) == Array("hello, rose\n".utf8))
    var expected = testBytes(100_000, seed: 7)
    expected.replaceSubrange(3000..<8000, with: testBytes(5000, seed: 9))
    #expect(try e.read(try e.resolve("big"), offset: 0, count: 200_000) == expected)
    #expect(try e.readdir(try e.resolve("dir"), after: 0, limit: 1000).count == 61)
    let r = try img.reader()
    let hb = try r.headIndex(named: "b")
    #expect(try r.entries(ofDirectory: r.checkpoint.heads[hb].rootIno, head: hb).isEmpty)
  }
}

@Suite struct EngineHeadTests {
  /// rosepack update's sequence: b becomes a snapshot of a (replacing what b had), then changes go
  /// through b; a third head is created as a snapshot; the default head moves. fsck stays clean and
  /// a keeps its content.
  @Test func snapshotReplaceCreateAndDefault() throws {
    let img = try emptyVolume(size: 16 << 20, heads: ["a", "b"])
    do {
      let dev = try FileBlockDevice(path: img.path, writable: true)
      let a = try RoseEngine.open(device: dev, subvolume: "a", readOnly: false)
      let f = try a.createFile(a.rootIno, "shared")
      try a.writAllChecked(f, testBytes(50_000, seed: 1))
      try a.unmount()
    }
    var problems = try fsckProblems(path: img.path)
    #expect(problems.isEmpty, "\(problems.prefix(10).joined(separator: "\n"))")
    do {
      let dev = try FileBlockDevice(path: img.path, writable: true)
      let b = try RoseEngine.open(device: dev, subvolume: "b", readOnly: false)
      _ = try b.createFile(b.rootIno, "only-in-old-b")
      try b.sync()
      try b.snapshotHead(from: "a", to: "b")
      #expect((try? b.resolve("only-in-old-b")) == nil)
      let shared = try b.resolve("shared")
      #expect(try b.read(shared, offset: 0, count: 60_000) == testBytes(50_000, seed: 1))
      try b.writAllChecked(shared, testBytes(3000, seed: 2), at: 10_000)
      let n = try b.createFile(b.rootIno, "new-in-b")
      try b.writAllChecked(n, testBytes(9000, seed: 3))
      try b.snapshotHead(from: "b", to: "c")
      try b.setDefaultHead("b")
      try b.unmount()
    }
    problems = try fsckProblems(path: img.path)
    #expect(problems.isEmpty, "\(problems.prefix(10).joined(separator: "\n"))")
    let dev = try FileBlockDevice(path: img.path, writable: false)
    let d = try RoseEngine.open(device: dev, subvolume: nil, readOnly: true)
    #expect(d.subvolumeName == "b")
    #expect(d.headNames == ["a", "b", "c"])
    var expected = testBytes(50_000, seed: 1)
    expected.replaceSubrange(10_000..<13_000, with: testBytes(3000, seed: 2))
    #expect(try d.read(try d.resolve("shared"), offset: 0, count: 60_000) == expected)
    let c = try RoseEngine.open(device: dev, subvolume: "c", readOnly: true)
    #expect(
      try c.read(try c.resolve("new-in-b"), offset: 0, count: 10_000) == testBytes(9000, seed: 3))
    let a = try RoseEngine.open(device: dev, subvolume: "a", readOnly: true)
    #expect(
      try a.read(try a.resolve("shared"), offset: 0, count: 60_000) == testBytes(50_000, seed: 1))
    #expect((try? a.resolve("new-in-b")) == nil)
  }
}

extension RoseEngine {
  func writAllChecked(_ ino: UInt32, _ bytes: [UInt8], at offset: UInt64 = 0) throws {
    try writeAll(ino, bytes, at: offset)
    #expect(try read(ino, offset: offset, count: bytes.count) == bytes)
  }
}
