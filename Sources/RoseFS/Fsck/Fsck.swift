// `rosepack fsck`: exactly the checks of FORMAT.md section 14, numbered as there. Every problem is
// one line naming the block address, ino, nid or path; an empty list means the image is clean. The
// checker never traps on garbage: every read is bounds-checked, every walk bounded and cycle-checked.

public enum Fsck {
  /// Checks an image; returns one human-readable line per problem (empty when clean).
  public static func check(image: ImageFile, verifyData: Bool = true) -> [String] {
    let run = FsckRun(image: image, verifyData: verifyData)
    run.run()
    return run.problems
  }
}

/// What a main-area block is, as the trees say (per head).
enum BlockUse: Equatable, CustomStringConvertible {
  case data(ino: UInt32, lblk: UInt32)
  case tail
  case inodePage(nid: UInt32)
  case dirNode(nid: UInt32)
  case extentNode(nid: UInt32)
  case xattrNode(nid: UInt32)
  case meta(type: UInt8, head: UInt8, level: UInt8, index: UInt32)

  /// The SSA entry (kind, owner, index) this use requires (FORMAT.md 6.4).
  var ssa: (kind: UInt8, owner: UInt32, index: UInt32) {
    switch self {
    case .data(let ino, let lblk): (SSAKind.data, ino, lblk)
    case .tail: (SSAKind.tail, 0, 0)  // owner and index: the inode pages, checked in item 8
    case .inodePage(let nid), .dirNode(let nid), .extentNode(let nid), .xattrNode(let nid):
      (SSAKind.node, nid, 0)
    case .meta(let t, let h, let l, let i):
      (SSAKind.meta, SSAEntry.metaOwner(type: t, head: Int(h), level: l), i)
    }
  }

  var description: String {
    switch self {
    case .data(let ino, let lblk): "data block \(lblk) of ino \(ino)"
    case .tail: "tail block"
    case .inodePage(let nid): "inode page nid \(nid)"
    case .dirNode(let nid): "directory node nid \(nid)"
    case .extentNode(let nid): "extent node nid \(nid)"
    case .xattrNode(let nid): "xattr node nid \(nid)"
    case .meta(let t, let h, let l, let i):
      "\(["?", "NAT", "VBM", "SSA"][Int(min(t, 3))]) block (head \(h), level \(l), index \(i))"
    }
  }
}

/// One inode's use of a tail block: its head, inode page, and fragment.
struct TailFragmentUse: Equatable {
  var head: Int
  var ino: UInt32
  var offset: Int
  var length: Int
  var nid: UInt32 { ino / UInt32(RoseLayout.inodesPerPage) }
}

final class FsckRun {
  let image: ImageFile
  let verifyData: Bool
  private(set) var problems: [String] = []
  private var problemSet = Set<String>()
  static let maxProblems = 10_000

  var sb: Superblock?
  var cp: Checkpoint?
  var reader: ImageReader?
  var ck = RoseChecksum(uuid: [UInt8](repeating: 0, count: 16))
  var nHeads = 0

  /// Per head: every block the head reaches, and what it is.
  var uses: [[UInt32: BlockUse]] = []
  /// Per head: nid -> block address (non-zero NAT entries, journal applied).
  var natMap: [[UInt32: UInt32]] = []
  /// Per head with its own bitmap: VBM content block index -> block bytes.
  var vbmBlocks: [Int: [UInt32: [UInt8]]] = [:]
  var ssaBlocks: [UInt32: [UInt8]] = [:]
  /// Per head: inodes reached, nids reached (inode pages and tree/xattr nodes).
  var reachedInodes: [Set<UInt32>] = []
  var reachedNids: [Set<UInt32>] = []
  /// Per head: slots each reached inode takes (its `nslots`).
  var inodeSlots: [[UInt32: Int]] = []
  /// Tail fragments by tail block (item 8): every head's inodes naming the block.
  var tailFragments: [UInt32: [TailFragmentUse]] = [:]
  var pageCache: [UInt32: [UInt8]] = [:]
  /// Incompat features found in use but not set in the superblock (each reported once).
  var missingFeatures = Set<UInt32>()

  init(image: ImageFile, verifyData: Bool) {
    self.image = image
    self.verifyData = verifyData
  }

  func problem(_ s: String) {
    guard problems.count < Self.maxProblems else { return }
    if problemSet.insert(s).inserted {
      problems.append(s)
      if problems.count == Self.maxProblems {
        problems.append("too many problems; stopping the list here")
      }
    }
  }

  func report(_ e: Error, _ context: String = "") {
    let msg: String
    if case RoseFSError.corrupt(let m) = e { msg = m } else { msg = "\(e)" }
    problem(context.isEmpty ? msg : "\(context): \(msg)")
  }

  func run() {
    guard checkSuperblock(), checkCheckpoint() else { return }
    checkReservedBlocks()
    do {
      reader = try ImageReader(image: image)
    } catch {
      report(error)
      return
    }
    checkMetaFiles()
    inodeSlots = [[UInt32: Int]](repeating: [:], count: nHeads)
    for h in 0..<nHeads { walkHead(h) }
    checkTailBlocks()
    checkOwnership()
    checkValidity()
    checkRollForward()
  }

  // MARK: Helpers

  var mainStart: UInt64 { UInt64(sb?.mainBlkaddr ?? RoseLayout.mainStart) }
  var mainBlocks: UInt64 { UInt64(sb?.mainBlocks ?? 0) }
  func inMain(_ a: UInt32) -> Bool { UInt64(a) >= mainStart && UInt64(a) < mainStart + mainBlocks }
  func inMain(_ a: UInt32, count: UInt32) -> Bool {
    count > 0 && UInt64(a) >= mainStart && UInt64(a) + UInt64(count) <= mainStart + mainBlocks
  }

  func readBlock(_ a: UInt32) -> [UInt8]? {
    do { return try image.readBlock(a) } catch {
      report(error, "block \(a)")
      return nil
    }
  }

  /// Index of the first non-zero byte of `b[r]` (clamped to the array), scanning 8 bytes at a time.
  static func firstNonZero(_ b: [UInt8], _ r: Range<Int>) -> Int? {
    let lo = max(0, min(r.lowerBound, b.count))
    let hi = max(lo, min(r.upperBound, b.count))
    return b.withUnsafeBytes { p -> Int? in
      var i = lo
      while i + 8 <= hi {
        if p.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { break }
        i += 8
      }
      while i < hi {
        if p[i] != 0 { return i }
        i += 1
      }
      return nil
    }
  }

  static func allZero(_ b: [UInt8], _ r: Range<Int>) -> Bool { firstNonZero(b, r) == nil }

  func requireZero(_ b: [UInt8], _ r: Range<Int>, _ what: @autoclosure () -> String) {
    if let first = Self.firstNonZero(b, r) {
      problem("\(what()): byte \(first) is \(b[first]), must be zero")
    }
  }

  /// Every field of `layout` named "reserved", in `b` at `base`, is zero (FORMAT.md's zero rule).
  func requireReservedZero<L: OnDiskLayout>(
    _ b: [UInt8], at base: Int, _ layout: L.Type, _ what: String
  ) {
    for f in L.fields where f.name == "reserved" {
      let at = base + f.offset
      requireZero(b, at..<at + f.size, "\(what) reserved 0x\(String(at, radix: 16))")
    }
  }

  /// Reads a header block and checks range, magic, checksum and blkaddr; nil (and a problem) if bad.
  func headerBlock(_ a: UInt32, magic: UInt32, _ what: String) -> [UInt8]? {
    guard inMain(a) else {
      problem("\(what): block address \(a) is outside the main area")
      return nil
    }
    guard let b = readBlock(a) else { return nil }
    do {
      try ImageReader.verifyHeader(b, addr: a, magic: magic, checksum: ck, what: what)
    } catch {
      report(error)
      return nil
    }
    return b
  }

  func use(_ h: Int, _ a: UInt32, _ u: BlockUse, _ context: @autoclosure () -> String) {
    guard inMain(a) else {
      problem("head \(h): \(u) at block \(a) (\(context())) is outside the main area")
      return
    }
    if let old = uses[h][a] {
      if old == .tail && u == .tail { return }
      problem("head \(h): block \(a) is used twice: as \(old) and as \(u) (\(context()))")
      return
    }
    uses[h][a] = u
  }
}
