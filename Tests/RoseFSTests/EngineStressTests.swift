import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// Files written and their content seeds, for checking after the fact without keeping the bytes.
struct WrittenFile {
  var dir: UInt32
  var name: String
  var size: Int
  var seed: UInt64
}

@Suite struct EngineFullVolumeTests {
  /// Fills with files of `sizes` (cycled by a seeded choice) until ENOSPC. Returns the files.
  static func fill(
    _ e: RoseEngine, sizes: [Int], seed: UInt64, prefix: String, dirs: inout [UInt32]
  ) throws -> [WrittenFile] {
    var rng = SplitMix(state: seed)
    var out: [WrittenFile] = []
    var i = 0
    while true {
      if i % 500 == 0 {
        do throws(EngineError) {
          let d = try e.mkdir(
            parent: e.rootIno, name: Array("\(prefix)-d\(i / 500)".utf8), mode: 0o755, uid: 0,
            gid: 0)
          dirs.append(d.ino)
        } catch {
          #expect(error.errno == ENOSPC, "\(error)")
          return out
        }
      }
      let dir = dirs[dirs.count - 1]
      let size = sizes[Int(rng.below(UInt64(sizes.count)))]
      let name = "\(prefix)-\(i)"
      let fileSeed = seed &* 1_000_003 &+ UInt64(i)
      do throws(EngineError) {
        let ino = try e.createFile(dir, name)
        do throws(EngineError) {
          try e.writeAll(ino, testBytes(size, seed: fileSeed))
        } catch {
          #expect(error.errno == ENOSPC, "\(error)")
          // A clean ENOSPC: whatever part of the file was written is dropped with it.
          try e.unlink(parent: dir, name: Array(name.utf8))
          return out
        }
      } catch {
        #expect(error.errno == ENOSPC, "\(error)")
        return out
      }
      out.append(WrittenFile(dir: dir, name: name, size: size, seed: fileSeed))
      i += 1
    }
  }

  static func verify(_ e: RoseEngine, _ files: [WrittenFile]) throws -> Int {
    var bad = 0
    for f in files {
      let ino = try e.lookup(parent: f.dir, name: Array(f.name.utf8)).ino
      if try e.read(ino, offset: 0, count: f.size + 1) != testBytes(f.size, seed: f.seed) {
        bad += 1
      }
    }
    return bad
  }

  func run(sizes: [Int], label: String) throws -> (firstShare: Double, refill: Int, deleted: Int) {
    // The issue's 64 MiB volume takes minutes in a debug build: ROSEPACK_LONG_TESTS=1 (or
    // ROSEPACK_FULL_VOLUME_MIB) for it; the normal suite fills 16 MiB.
    let env = ProcessInfo.processInfo.environment
    let mib =
      UInt64(env["ROSEPACK_FULL_VOLUME_MIB"] ?? "") ?? (env["ROSEPACK_LONG_TESTS"] == "1" ? 64 : 16)
    let volume: UInt64 = mib << 20
    let img = try emptyVolume(size: volume)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    var e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    var dirs: [UInt32] = []
    let first = try Self.fill(e, sizes: sizes, seed: 1, prefix: "a", dirs: &dirs)
    let liveBytes = first.reduce(0) { $0 + $1.size }
    let share = Double(liveBytes) / Double(volume)
    print(
      "full volume (\(label)): \(first.count) files, \(liveBytes) bytes of file data at the first ENOSPC = \(String(format: "%.1f", share * 100))% of the \(mib) MiB volume"
    )
    // ENOSPC is clean: the volume still checkpoints, unmounts and checks clean.
    try e.sync()
    #expect(try Self.verify(e, first) == 0)
    try e.unmount()
    var problems = try fsckProblems(blocks: dev.blocks, device: dev)
    #expect(problems.isEmpty, "\(label) after fill: \(problems.prefix(10).joined(separator: "\n"))")
    e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    var kept: [WrittenFile] = []
    var deletedBytes = 0
    for (i, f) in first.enumerated() {
      if i % 2 == 0 {
        try e.unlink(parent: f.dir, name: Array(f.name.utf8))
        deletedBytes += f.size
      } else {
        kept.append(f)
      }
    }
    let second = try Self.fill(e, sizes: sizes, seed: 2, prefix: "b", dirs: &dirs)
    let refillBytes = second.reduce(0) { $0 + $1.size }
    print(
      "full volume (\(label)): deleted \(deletedBytes) bytes in \(first.count - kept.count) files, refilled \(refillBytes) bytes in \(second.count) files"
    )
    #expect(Double(refillBytes) >= 0.8 * Double(deletedBytes), "freed space is not reused")
    print("full volume (\(label)): cleaner after the refill: \(e.cleaningStats)")
    #expect(try Self.verify(e, kept) == 0)
    #expect(try Self.verify(e, second) == 0)
    try e.unmount()
    problems = try fsckProblems(blocks: dev.blocks, device: dev)
    #expect(
      problems.isEmpty, "\(label) after refill: \(problems.prefix(10).joined(separator: "\n"))")
    let again = try RoseEngine.open(device: dev, subvolume: nil, readOnly: true)
    #expect(try Self.verify(again, kept + second) == 0)
    return (share, refillBytes, deletedBytes)
  }

  @Test func oneKiBFilesFillToENOSPCAndRefill() throws {
    _ = try run(sizes: [1024], label: "1 KiB files")
  }

  @Test func mixedFilesFillToENOSPCAndRefill() throws {
    _ = try run(sizes: [1024, 16 << 10, 1 << 20], label: "mixed 1 KiB / 16 KiB / 1 MiB files")
  }
}

@Suite struct EngineABTests {
  /// A packed image with subvolumes a and b (b a snapshot of a with one file changed); thousands
  /// of random operations through b; a's content is unchanged and none of a's blocks is written.
  @Test func writesThroughBLeaveAIntact() throws {
    let img = try TestImage(options: BuildOptions(size: 32 << 20, sourceDateEpoch: 1_700_000_000)) {
      b in
      let t = Timestamp(seconds: 1_700_000_000)
      let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
      for i in 0..<40 {
        let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
        f.content = try b.data.store(
          testBytes([10, 1000, 5000, 70_000][i % 4], seed: UInt64(i)), ino: f.ino)
        root.children[Name("f\(i)")] = f
      }
      let sub = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
      for i in 0..<300 { sub.children[Name("entry-\(i)")] = root.children[Name("f\(i % 40)")]! }
      root.children[Name("sub")] = sub
      let broot = b.snapshot(root)
      let changed = b.makeInode(kind: .regular, permissions: 0o600, mtime: t)
      changed.content = try b.data.store(Array("b only".utf8), ino: changed.ino)
      broot.children[Name("f0")] = changed
      return [Subvolume(name: "a", root: root), Subvolume(name: "b", root: broot)]
    }
    func exportA(_ r: ImageReader) throws -> [String: [UInt8]] {
      let h = try r.headIndex(named: "a")
      var out: [String: [UInt8]] = [:]
      func walk(_ ino: UInt32, _ path: String) throws {
        for e in try r.entries(ofDirectory: ino, head: h) {
          let p = path + "/" + String(decoding: e.name, as: UTF8.self)
          let rec = try r.readInodeRecord(e.ino, head: h)
          out[p] = [UInt8](String(rec.mode, radix: 8).utf8)
          if rec.kind == .directory {
            try walk(e.ino, p)
          } else {
            out[p]! += try r.readAll(ino: e.ino, head: h)
          }
        }
      }
      try walk(r.checkpoint.heads[h].rootIno, "")
      return out
    }
    let before = try exportA(try img.reader())
    let dev = try RecordingBlockDevice(imagePath: img.path)
    dev.recording = false
    let e = try RoseEngine.open(device: dev, subvolume: "b", readOnly: false)
    // Blocks a reaches that are not meta-file blocks shared with b's rewriting (data, tails,
    // inode pages, tree nodes, a's NAT): none of them may ever be written.
    let a = 0
    var protected = Set<UInt32>()
    for k in 0..<e.mainBlocks where e.vbm[a].get(k) {
      let addr = e.mainStart + UInt32(k)
      let (owner, info) = e.ssaEntry(addr)
      let kind = UInt8(info >> 28)
      if kind != SSAKind.meta || (owner & 0xFF == UInt32(MetaType.nat) && (owner >> 8) & 0xFF == 0)
      {
        protected.insert(addr)
      }
    }
    #expect(protected.count > 40)
    var rng = SplitMix(state: 42)
    var names = (0..<40).map { "f\($0)" }
    let sub = try e.resolve("sub")
    for step in 0..<3000 {
      let choice = rng.below(10)
      let name = names[Int(rng.below(UInt64(names.count)))]
      switch choice {
      case 0...5:
        guard let ino = try? e.resolve(name) else { continue }
        let off = rng.below(200_000)
        try e.writeAll(ino, testBytes(Int(rng.below(9000)), seed: UInt64(step)), at: off)
      case 6:
        guard let ino = try? e.resolve(name) else { continue }
        _ = try e.setattr(ino, AttributeChanges(size: rng.below(100_000)))
      case 7:
        let n = "new\(step)"
        _ = try e.createFile(e.rootIno, n)
        names.append(n)
      case 8:
        try? e.unlink(parent: e.rootIno, name: Array(name.utf8))
        try? e.unlink(parent: sub, name: Array("entry-\(rng.below(300))".utf8))
      default:
        if step % 50 == 0 { try e.sync() }
      }
    }
    try e.unmount()
    let written = dev.writeCounts
    let hit = protected.filter { written[$0] != nil }
    #expect(hit.isEmpty, "blocks of a written through b: \(hit.sorted().prefix(20))")
    let path = NSTemporaryDirectory() + "rosefs-ab-\(UUID().uuidString).img"
    defer { unlink(path) }
    try dev.writeImage(dev.blocks, to: path)
    let problems = try fsckProblems(path: path)
    #expect(problems.isEmpty, "\(problems.prefix(10).joined(separator: "\n"))")
    let after = try exportA(try ImageReader(image: try ImageFile(openPath: path)))
    #expect(after == before, "subvolume a changed")
    print(
      "A/B: 3000 operations through b, \(written.count) blocks written, none of a's \(protected.count)"
    )
  }
}

@Suite struct EngineCrashTests {
  /// Records the device writes of a sequence with fsyncs, then rebuilds the image at every prefix of
  /// the log, and at each flush boundary with the writes since the previous flush reordered (a
  /// random subset applied) or one of them torn; each image must be fsck-clean, open, and hold every
  /// file fsync'd before the cut with exactly its content.
  @Test func everyPrefixIsConsistent() throws {
    let img = try emptyVolume(size: 16 << 20)
    let dev = try RecordingBlockDevice(imagePath: img.path)
    let e = try RoseEngine.open(device: dev, subvolume: nil, readOnly: false)
    var rng = SplitMix(state: 7)
    var durable: [(name: String, data: [UInt8], at: Int)] = []
    let dir = try e.mkdir(parent: e.rootIno, name: Array("d".utf8), mode: 0o755, uid: 0, gid: 0).ino
    for i in 0..<14 {
      let name = "file\(i)"
      let data = testBytes(
        Int(rng.below(3) == 0 ? rng.below(60_000) : rng.below(3000)), seed: UInt64(i))
      let ino = try e.createFile(i % 2 == 0 ? e.rootIno : dir, name)
      try e.writeAll(ino, data)
      // Noise that is never fsync'd: a scratch file rewritten and truncated.
      let scratch = try e.createFile(e.rootIno, "scratch\(i)")
      try e.writeAll(scratch, testBytes(Int(rng.below(20_000)), seed: 100 + UInt64(i)))
      if i % 3 == 1 { try e.unlink(parent: e.rootIno, name: Array("scratch\(i - 1)".utf8)) }
      if rng.below(3) != 0 {
        try e.fsync(ino, dataOnly: false)
        durable.append((i % 2 == 0 ? name : "d/" + name, data, dev.events.count))
      }
    }
    try e.unmount()
    let events = dev.events
    var checked = 0
    func check(_ blocks: [UInt32: [UInt8]], durableUpTo n: Int, _ what: String) throws {
      checked += 1
      try expectConsistent(blocks, of: dev, holding: durable.filter { $0.at <= n }, what)
    }
    for n in 0...events.count {
      try check(dev.image(afterEvents: n), durableUpTo: n, "prefix \(n) of \(events.count)")
    }
    // Reorderings and torn writes inside each flush epoch.
    for (prevFlush, i, epoch) in flushEpochs(events) where !epoch.isEmpty {
      let base = dev.image(afterEvents: prevFlush)
      for trial in 0..<3 {
        var blocks = base
        for w in epoch where rng.below(2) == 0 { blocks[w.0] = w.1 }
        try check(blocks, durableUpTo: prevFlush, "epoch \(prevFlush)..<\(i) subset \(trial)")
      }
      let t = epoch[Int(rng.below(UInt64(epoch.count)))]
      var blocks = base
      var torn = base[t.0] ?? [UInt8](repeating: 0, count: RoseLayout.blockSize)
      torn.replaceSubrange(0..<2048, with: t.1[0..<2048])
      blocks[t.0] = torn
      for w in epoch where w.0 != t.0 && rng.below(2) == 0 { blocks[w.0] = w.1 }
      try check(blocks, durableUpTo: prevFlush, "epoch \(prevFlush)..<\(i) torn block \(t.0)")
    }
    print(
      "crash test: \(events.count) events, \(checked) images checked, \(durable.count) files fsync'd"
    )
  }
}
