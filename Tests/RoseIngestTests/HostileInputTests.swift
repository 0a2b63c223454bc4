import Foundation
import RoseFS
import Testing

@testable import RoseIngest

/// Archives a real tool would not make, written with Python's tarfile.
func craft(_ dir: String, _ name: String, _ python: String) throws -> String {
  let out = dir + "/" + name
  let script = """
    import tarfile, io
    t = tarfile.open('\(out)', 'w', format=tarfile.PAX_FORMAT)
    def f(name, data=b'x', **kw):
        i = tarfile.TarInfo(name); i.size = len(data)
        for k, v in kw.items(): setattr(i, k, v)
        t.addfile(i, io.BytesIO(data))
    def e(name, type, **kw):
        i = tarfile.TarInfo(name); i.type = type
        for k, v in kw.items(): setattr(i, k, v)
        t.addfile(i)
    \(python)
    t.close()
    """
  try script.write(toFile: dir + "/craft.py", atomically: true, encoding: .utf8)
  try sh("python3 \(dir)/craft.py")
  return out
}

func ingestError(_ path: String) throws -> IngestError? {
  let s = try Scratch()
  do {
    try ArchiveReader(path: path).read(into: s.editor)
    return nil
  } catch let e as IngestError {
    return e
  }
}

@Suite struct HostileInputTests {
  let dir: String
  init() throws { dir = try tempDir("hostile") }

  func expectRefused(_ file: String, _ python: String, mentions: [String]) throws -> IngestError? {
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let p = try craft(dir, file, python)
    let e = try ingestError(p)
    #expect(e != nil, "\(file) was accepted")
    let msg = e.map { "\($0)" } ?? ""
    #expect(msg.contains(p), "\(msg)")
    for m in mentions { #expect(msg.contains(m), "\(msg) should mention \(m)") }
    return e
  }

  @Test func dotDot() throws {
    let e = try expectRefused(
      "dotdot.tar", "f('ok'); f('a/../../evil')", mentions: ["a/../../evil", ".."])
    guard case .dotDotComponent = e else {
      Issue.record("\(String(describing: e))")
      return
    }
  }

  @Test func throughSymlink() throws {
    let e = try expectRefused(
      "symlink.tar", "e('etc', tarfile.SYMTYPE, linkname='/etc'); f('etc/passwd')",
      mentions: ["etc/passwd"])
    guard case .parentNotDirectory = e else {
      Issue.record("\(String(describing: e))")
      return
    }
  }

  @Test func throughFile() throws {
    let e = try expectRefused("file.tar", "f('a'); f('a/b')", mentions: ["a/b"])
    guard case .parentNotDirectory = e else {
      Issue.record("\(String(describing: e))")
      return
    }
  }

  @Test func longName() throws {
    let e = try expectRefused("long.tar", "f('d/' + 'n' * 256)", mentions: ["256"])
    guard case .nameTooLong = e else {
      Issue.record("\(String(describing: e))")
      return
    }
  }

  @Test func hardLinkMissing() throws {
    let e = try expectRefused(
      "hlmissing.tar", "e('h', tarfile.LNKTYPE, linkname='nothere')", mentions: ["nothere", "'h'"])
    guard case .hardLinkTargetMissing = e else {
      Issue.record("\(String(describing: e))")
      return
    }
  }

  @Test func hardLinkDirectory() throws {
    let e = try expectRefused(
      "hldir.tar", "e('dir', tarfile.DIRTYPE); e('h', tarfile.LNKTYPE, linkname='dir')",
      mentions: ["'dir'"])
    guard case .hardLinkToDirectory = e else {
      Issue.record("\(String(describing: e))")
      return
    }
  }

  @Test func hardLinkDotDot() throws {
    let e = try expectRefused(
      "hldotdot.tar", "f('a'); e('h', tarfile.LNKTYPE, linkname='../a')",
      mentions: ["'h (hard link to ../a)'"])
    guard case .dotDotComponent = e else {
      Issue.record("\(String(describing: e))")
      return
    }
  }

  @Test func notAnArchive() throws {
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let p = dir + "/notes.txt"
    try String(repeating: "just some text, not a tarball\n", count: 100).write(
      toFile: p, atomically: true, encoding: .utf8)
    let e = try ingestError(p)
    guard case .notAnArchive = e else {
      Issue.record("\(String(describing: e))")
      return
    }
    #expect("\(e!)".contains(p))
    let empty = dir + "/empty.tar"
    _ = FileManager.default.createFile(atPath: empty, contents: Data())
    guard case .notAnArchive = try ingestError(empty) else {
      Issue.record("empty file accepted")
      return
    }
  }

  @Test func truncatedGzip() throws {
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // Big enough that the first entries decompress before the cut.
    try sh(
      "cd '\(dir)' && mkdir t && for i in 1 2 3 4 5 6; do head -c 300000 /dev/urandom > t/f$i; done && tar -czf full.tar.gz -C t . && head -c 1000000 full.tar.gz > trunc.tar.gz"
    )
    let p = dir + "/trunc.tar.gz"
    let e = try ingestError(p)
    guard case .corruptArchive(let input, let entry, let offset, _) = e else {
      Issue.record("\(String(describing: e))")
      return
    }
    #expect(input == p)
    #expect(entry != nil)
    #expect(offset > 0)
    #expect("\(e!)".contains("near byte"))
  }

  @Test func corruptBytes() throws {
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let src = try fixture.dir + "/ustar.tar"
    let p = dir + "/corrupt.tar"
    // Overwrite the second header block region with garbage (the first header stays valid).
    try sh(
      "cp '\(src)' '\(p)' && printf 'GARBAGEGARBAGEGARBAGE%.0s' {1..40} | dd of='\(p)' bs=1 seek=1536 conv=notrunc status=none"
    )
    let e = try ingestError(p)
    guard case .corruptArchive = e else {
      Issue.record("\(String(describing: e))")
      return
    }
    #expect("\(e!)".contains(p))
  }

  @Test func randomGarbageNeverCrashes() throws {
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var rng = SplitMix(seed: 0x5EED)
    let zst = try Array(Data(contentsOf: URL(fileURLWithPath: try fixture.dir + "/pax.tar.zst")))
    for i in 0..<10 {
      var bytes = zst
      for _ in 0..<8 { bytes[rng.below(bytes.count)] = UInt8(truncatingIfNeeded: rng.next()) }
      if i % 3 == 0 { bytes = Array(bytes.prefix(1 + rng.below(bytes.count - 1))) }
      let p = dir + "/fuzz\(i)"
      _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
      _ = try ingestError(p)  // any outcome but a crash
    }
    // Header and pax-record mutations with a valid header checksum, so the parsers see them.
    for name in ["pax.tar", "gnu.tar", "pax10.tar", "bsd.tar"] {
      let tar = try Array(Data(contentsOf: URL(fileURLWithPath: try fixture.dir + "/" + name)))
      let headers = stride(from: 0, to: tar.count - 512, by: 512).filter {
        tar[$0 + 257..<$0 + 262].elementsEqual(Array("ustar".utf8))
      }
      for i in 0..<15 {
        var bytes = tar
        let h = headers[rng.below(headers.count)]
        // Mutate the header, or the block after it (pax records, sparse maps, file data).
        let target = rng.below(2) == 0 ? h : h + 512
        for _ in 0..<(1 + rng.below(4)) {
          bytes[target + rng.below(512)] =
            rng.below(2) == 0 ? UInt8(truncatingIfNeeded: rng.next()) : 0x37
        }
        var sum = 0
        for k in 0..<512 { sum += (148..<156).contains(k) ? 0x20 : Int(bytes[h + k]) }
        let field = Array(String(sum, radix: 8).leftPad(6).utf8) + [0, 0x20]
        bytes.replaceSubrange(h + 148..<h + 156, with: field)
        let p = dir + "/tfuzz-\(name)-\(i)"
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        _ = try ingestError(p)
      }
    }
  }
}

/// A small deterministic generator, so a fuzz failure reproduces.
struct SplitMix {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
}

extension String {
  func leftPad(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
