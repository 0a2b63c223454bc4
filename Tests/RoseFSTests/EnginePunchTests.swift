import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// fallocate's punch hole and zero range, against the host kernel's own on a file in the temporary
/// directory: the same writes, truncates, punches and zeroings on both, compared after every step.
@Suite struct EnginePunchTests {
  static let keepSize: Int32 = 0x01
  static let punchHole: Int32 = 0x02
  static let zeroRange: Int32 = 0x10

  /// glibc's fallocate(2) wrapper, which Swift's Glibc module does not export (it needs _GNU_SOURCE).
  static let hostFallocate: (@convention(c) (Int32, Int32, Int, Int) -> Int32)? = {
    guard let h = dlopen(nil, RTLD_NOW), let f = dlsym(h, "fallocate") else { return nil }
    return unsafeBitCast(f, to: (@convention(c) (Int32, Int32, Int, Int) -> Int32).self)
  }()

  static func fallocate(_ fd: Int32, _ mode: Int32, _ offset: off_t, _ length: off_t) -> Int32 {
    hostFallocate.map { $0(fd, mode, Int(offset), Int(length)) } ?? -1
  }

  /// A host file on which punching works, or why not.
  static let hostSupport: String? = {
    let path = NSTemporaryDirectory() + "rosefs-punch-probe-\(getpid())"
    let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
    defer {
      close(fd)
      unlink(path)
    }
    guard fd >= 0, ftruncate(fd, 65536) == 0 else { return "cannot create \(path)" }
    guard hostFallocate != nil else { return "glibc has no fallocate symbol" }
    if fallocate(fd, punchHole | keepSize, 4096, 8192) != 0 {
      return
        "the host's temporary directory cannot punch holes (\(String(cString: strerror(errno))))"
    }
    return nil
  }()

  @Test(
    .enabled(
      if: hostSupport == nil, Comment(rawValue: "skipped: \(hostSupport ?? "")")),
    arguments: 0..<24)
  func punchAndZeroMatchTheHostKernel(seed: UInt64) throws {
    let img = try emptyVolume(size: 32 << 20)
    let e = try RoseEngine.open(
      device: try FileBlockDevice(path: img.path, writable: true), subvolume: nil, readOnly: false)
    let f = try e.createFile(e.rootIno, "f")
    let hostPath = NSTemporaryDirectory() + "rosefs-punch-\(getpid())-\(seed)"
    let fd = open(hostPath, O_CREAT | O_RDWR | O_TRUNC, 0o600)
    #expect(fd >= 0)
    defer {
      close(fd)
      unlink(hostPath)
    }
    var rng = SplitMix(state: seed &* 0x9E37_79B9 &+ 1)
    var log: [String] = []
    for step in 0..<40 {
      let size = UInt64(try e.getattr(f).size)
      // Offsets near the current size, block edges and the inline limit, so every case is met.
      let bases: [UInt64] = [0, 300, 368, 4096, 4095, size, size / 2, 12_288, 100_000]
      let offset = bases[Int(rng.below(UInt64(bases.count)))] + rng.below(3) * rng.below(5000)
      let length = 1 + rng.below(4) * rng.below(20_000) + rng.below(3000)
      let what = rng.below(10)
      if what < 4 {
        let bytes = testBytes(Int(length), seed: seed &* 1000 &+ UInt64(step))
        log.append("write \(offset) +\(length)")
        try e.writeAll(f, bytes, at: offset)
        let wrote = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        #expect(wrote == bytes.count)
      } else if what < 7 {
        log.append("punch \(offset) +\(length)")
        try e.punchHole(f, offset: offset, length: length)
        #expect(
          Self.fallocate(fd, Self.punchHole | Self.keepSize, off_t(offset), off_t(length)) == 0)
      } else if what < 9 {
        let keep = rng.below(2) == 0
        log.append("zero \(offset) +\(length) keep \(keep)")
        try e.zeroRange(f, offset: offset, length: length, keepSize: keep)
        #expect(
          Self.fallocate(
            fd, Self.zeroRange | (keep ? Self.keepSize : 0), off_t(offset), off_t(length))
            == 0)
      } else {
        let to = rng.below(200_000)
        log.append("truncate \(to)")
        _ = try e.setattr(f, AttributeChanges(size: to))
        #expect(ftruncate(fd, off_t(to)) == 0)
      }
      var st = stat()
      #expect(fstat(fd, &st) == 0)
      let a = try e.getattr(f)
      let got = try e.read(f, offset: 0, count: Int(a.size) + 10)
      var want = [UInt8](repeating: 0, count: Int(st.st_size))
      let n = want.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
      #expect(n == want.count)
      if got != want || a.size != UInt64(st.st_size) {
        let common = min(got.count, want.count)
        let first = (0..<common).first { got[$0] != want[$0] } ?? common
        Issue.record(
          "seed \(seed): after \(log.joined(separator: "; ")): size \(a.size) vs host \(st.st_size), first difference at \(first)"
        )
        return
      }
    }
    try e.unmount()
    #expect(try fsckProblems(path: img.path) == [])
    // What the checkpoint stored reads back the same.
    let again = try RoseEngine.open(
      device: try FileBlockDevice(path: img.path, writable: false), subvolume: nil, readOnly: true)
    var st = stat()
    #expect(fstat(fd, &st) == 0)
    var want = [UInt8](repeating: 0, count: Int(st.st_size))
    _ = want.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    #expect(try again.read(f, offset: 0, count: want.count + 10) == want, "seed \(seed) reopened")
  }

  /// Punching frees the blocks it covers whole (the block count stat shows drops), keeps the size,
  /// and frees them in the volume (statfs).
  @Test func punchFreesWholeBlocks() throws {
    let img = try emptyVolume(size: 32 << 20)
    let e = try RoseEngine.open(
      device: try FileBlockDevice(path: img.path, writable: true), subvolume: nil, readOnly: false)
    let f = try e.createFile(e.rootIno, "f")
    try e.writeAll(f, testBytes(1 << 20, seed: 3))
    try e.sync()
    #expect(try e.getattr(f).blocks == 2048)
    try e.punchHole(f, offset: 5000, length: 300_000)
    let a = try e.getattr(f)
    #expect(a.size == 1 << 20)
    // Blocks 2..73 are covered whole (8192..<303104); blocks 1 and 74 are zeroed in part.
    #expect(a.blocks == 2048 - 72 * 8)
    try e.sync()
    let before = try e.statfs().freeBlocks
    try e.punchHole(f, offset: 0, length: 1 << 30)
    #expect(try e.getattr(f).blocks == 0)
    #expect(try e.getattr(f).size == 1 << 20)
    try e.sync()
    #expect(try e.statfs().freeBlocks >= before + 256 - 72 - 4)
    #expect(try e.read(f, offset: 0, count: 1 << 21) == [UInt8](repeating: 0, count: 1 << 20))
    try e.unmount()
    #expect(try fsckProblems(path: img.path) == [])
  }
}
