import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

@Suite struct EngineBasicTests {
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
