import Foundation
import Testing

@testable import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// Bytes the C heap holds in use, from glibc's `malloc_info` report (the last, process-wide
/// totals): arena bytes obtained from the system plus mmapped chunks, minus the free chunks. nil
/// where there is no glibc `malloc_info`.
private func heapBytesInUse() -> Int? {
  #if canImport(Glibc)
    typealias MallocInfo = @convention(c) (Int32, UnsafeMutablePointer<FILE>?) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_info") else {
      return nil
    }
    let mallocInfo = unsafeBitCast(symbol, to: MallocInfo.self)
    var buffer: UnsafeMutablePointer<CChar>?
    var length = 0
    guard let stream = open_memstream(&buffer, &length) else { return nil }
    let status = mallocInfo(0, stream)
    fclose(stream)
    defer { free(buffer) }
    guard status == 0, let buffer else { return nil }
    let text = String(cString: buffer)
    // The process-wide totals follow the last </heap>.
    guard
      let totals = text.range(of: "</heap>", options: .backwards).map({ text[$0.upperBound...] })
    else { return nil }
    func size(_ tag: String, _ type: String) -> Int? {
      guard let r = totals.range(of: "<\(tag) type=\"\(type)\"") else { return nil }
      let rest = totals[r.upperBound...]
      guard let s = rest.range(of: "size=\"") else { return nil }
      return Int(rest[s.upperBound...].prefix { $0.isNumber })
    }
    guard let current = size("system", "current"), let fast = size("total", "fast"),
      let rest = size("total", "rest"), let mmapped = size("total", "mmap")
    else { return nil }
    return current + mmapped - fast - rest
  #else
    return nil
  #endif
}

/// Issue 10: the packer's own per-entry state stays a few flat arrays. These fail if a per-entry
/// dictionary, set or stored form (the old `[UInt32: Inode]` views at about 100 bytes per entry, or
/// the `[ObjectIdentifier: AuxNodes]` plan at about 280) comes back. Measured as the smallest of several
/// heap deltas, so that allocations of tests running beside it do not decide the outcome.
@Suite struct PackerMemoryTests {
  static let entries = 30_000

  /// A root with `entries` empty files in directories of 100 (inline dirents: no tree nodes, whose
  /// 4 KiB blocks the plan holds until they are written), numbered as `finish` numbers them.
  static func tree(_ b: ImageBuilder) throws -> Inode {
    let t = Timestamp(seconds: 1_700_000_000)
    let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
    var dir = root
    for i in 0..<entries {
      if i % 100 == 0 {
        dir = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
        root.children[Name("d\(i / 100)")] = dir
      }
      let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: t)
      dir.children[Name("f\(i)")] = f
    }
    try b.assignInodeNumbers([Subvolume(name: "a", root: root)])
    return root
  }

  /// The smallest growth of the heap over up to twelve runs of `body`, per entry; whatever `body`
  /// returns is held while measuring. Tests running beside this one allocate into the same heap, so
  /// one run can read high: it stops at the first run under `limit`, and a regression (which reads
  /// high every time) still fails. Between runs it waits a little for the neighbours' churn to pass.
  static func bytesPerEntry<T>(under limit: Double, _ body: () throws -> T) rethrows -> Double? {
    var best: Int?
    for attempt in 0..<12 {
      if attempt > 0 { usleep(250_000) }
      guard let before = heapBytesInUse() else { return nil }
      let kept = try body()
      guard let after = heapBytesInUse() else { return nil }
      withExtendedLifetime(kept) {}
      best = min(best ?? Int.max, after - before)
      if let best, Double(best) / Double(entries) < limit { break }
    }
    return best.map { Double($0) / Double(entries) }
  }

  @Test func headViewAndNodePlanStayFlat() throws {
    guard heapBytesInUse() != nil else {
      print("skipped: no glibc malloc_info to measure the heap with")
      return
    }
    let tmp = TempImage()
    let b = try ImageBuilder(image: tmp.image, options: BuildOptions(sourceDateEpoch: 0))
    let root = try Self.tree(b)
    let view = try HeadView(root: root, inoLimit: b.nextIno, trackObjects: false)
    #expect(view.inodes.count == Self.entries + Self.entries / 100 + 1)
    // Inode? + nlink + parent per number: 16 bytes, with room for numbering gaps.
    let viewCost = try #require(
      try Self.bytesPerEntry(under: 40) {
        try HeadView(root: root, inoLimit: b.nextIno, trackObjects: false)
      })
    print("PackerMemoryTests: HeadView \(viewCost) bytes per entry")
    #expect(viewCost < 40, "HeadView holds \(viewCost) bytes per entry")
    // The plan keeps the object list (8 bytes per entry) and the forms of inodes with nodes only.
    let planCost = try #require(
      try Self.bytesPerEntry(under: 24) {
        try b.planNodes(views: [view], hashSeed: [UInt8](repeating: 0, count: 16))
      })
    print("PackerMemoryTests: node plan \(planCost) bytes per entry")
    #expect(planCost < 24, "the node plan holds \(planCost) bytes per entry")
  }
}
