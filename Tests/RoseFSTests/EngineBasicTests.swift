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
      _ = try e.symlink(parent: d.ino, name: Array("ln".utf8), target: Array("../hello".utf8), uid: 0, gid: 0)
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
    #expect(try e.read(try e.resolve("hello"), offset: 0, count: 100) == Array("hello, rose\n".utf8))
    var expected = testBytes(100_000, seed: 7)
    expected.replaceSubrange(3000..<8000, with: testBytes(5000, seed: 9))
    #expect(try e.read(try e.resolve("big"), offset: 0, count: 200_000) == expected)
    #expect(try e.readdir(try e.resolve("dir"), after: 0, limit: 1000).count == 61)
    let r = try img.reader()
    let hb = try r.headIndex(named: "b")
    #expect(try r.entries(ofDirectory: r.checkpoint.heads[hb].rootIno, head: hb).isEmpty)
  }
}
