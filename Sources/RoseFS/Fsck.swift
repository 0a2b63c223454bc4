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
    case .data(let ino, let lblk): (1, ino, lblk)
    case .tail: (3, 0, 0)
    case .inodePage(let nid), .dirNode(let nid), .extentNode(let nid), .xattrNode(let nid):
      (2, nid, 0)
    case .meta(let t, let h, let l, let i): (4, UInt32(t) | UInt32(h) << 8 | UInt32(l) << 16, i)
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
  /// Tail blocks already checked (item 8): address -> table entries (ino, off, len), nil when bad.
  var tailTables: [UInt32: [(ino: UInt32, off: UInt16, len: UInt16)]?] = [:]
  var pageCache: [UInt32: [UInt8]] = [:]

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
    for h in 0..<nHeads { walkHead(h) }
    checkOwnership()
    checkValidity()
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

  // MARK: 1. Superblock

  func checkSuperblock() -> Bool {
    let size = image.fileSize > image.baseOffset ? image.fileSize - image.baseOffset : 0
    if size < UInt64(RoseLayout.mainStart) * 4096 {
      problem("image is \(size) bytes, smaller than the 64 KiB fixed area")
    }
    guard let b0 = readBlock(0), let b1 = readBlock(1) else { return false }
    let sbRange =
      RoseLayout.superblockOffset..<RoseLayout.superblockOffset + RoseLayout.superblockSize
    let raw0 = Array(b0[sbRange])
    var sb: Superblock?
    do { sb = try Superblock.decode(raw0) } catch { report(error, "superblock copy 0 (block 0)") }
    if Array(b1[sbRange]) != raw0 { problem("superblock copy 1 (block 1) differs from copy 0") }
    for (i, b) in [b0, b1].enumerated() {
      requireZero(b, 0..<RoseLayout.superblockOffset, "block \(i) (before the superblock)")
      requireZero(b, sbRange.upperBound..<RoseLayout.blockSize, "block \(i) (after the superblock)")
    }
    if sb == nil {
      sb = try? Superblock.decode(Array(b1[sbRange]))
      guard sb != nil else {
        problem("no valid superblock in block 0 or block 1; nothing more can be checked")
        return false
      }
    } else {
      let r = ByteReader(raw0)
      if r.u32(0x0C) != 0 { problem("superblock: feature_compat \(hex32(r.u32(0x0C))) is not 0") }
      if r.u32(0x14) & ~Feature.roCompatKnown != 0 {
        problem("superblock: unknown ro_compat features \(hex32(r.u32(0x14)))")
      }
      requireZero(raw0, 0x90..<0x100, "superblock reserved bytes 0x90..0x100")
      let label = r.slice(0x50, 32)
      if let nul = label.firstIndex(of: 0) {
        requireZero(label, nul..<32, "superblock label padding")
      }
    }
    guard let sb else { return false }
    self.sb = sb
    ck = RoseChecksum(uuid: sb.uuid)
    if sb.rsvSegments >= sb.segmentCount {
      problem("superblock: rsv_segments \(sb.rsvSegments) >= segment_count \(sb.segmentCount)")
    }
    if UInt64(sb.segmentCount) << UInt64(sb.logBlocksPerSegment) > UInt64(UInt32.max) {
      problem("superblock: segment_count \(sb.segmentCount) gives more than 2^32 main-area blocks")
    }
    if size / 4096 < sb.blockCount {
      problem("image is truncated: \(size) bytes, the volume has \(sb.blockCount) blocks")
    }
    return true
  }

  // MARK: 2. Checkpoint

  func checkCheckpoint() -> Bool {
    guard let sb, let s0 = readBlock(2), let s1 = readBlock(3) else { return false }
    let slots = [s0, s1].map { Checkpoint.decode($0, checksum: ck) }
    for (i, s) in slots.enumerated() where s == nil && ![s0, s1][i].allSatisfy({ $0 == 0 }) {
      problem(
        "checkpoint slot \(i) (block \(2 + i)) is neither valid (magic, checksum) nor all zero")
    }
    var chosen: Int?
    for i in 0..<2 {
      if let c = slots[i], chosen.map({ c.cpVer > (slots[$0]?.cpVer ?? 0) }) ?? true { chosen = i }
    }
    guard let chosen, let cp = slots[chosen] else {
      problem("no valid checkpoint in block 2 or block 3; nothing more can be checked")
      return false
    }
    if let a = slots[0], let b = slots[1], a.cpVer == b.cpVer {
      problem("both checkpoint slots have cp_ver \(a.cpVer)")
    }
    let raw = chosen == 0 ? s0 : s1
    let r = ByteReader(raw)
    let w = "checkpoint (block \(2 + chosen))"
    if cp.cpVer < 1 { problem("\(w): cp_ver is 0") }
    let n = Int(r.u8(0x60))
    guard (1...RoseLayout.maxHeads).contains(n) else {
      problem("\(w): n_heads \(n) is not 1..4")
      return false
    }
    nHeads = n
    if Int(r.u8(0x61)) >= n { problem("\(w): default_head \(r.u8(0x61)) >= n_heads \(n)") }
    if r.u32(0x24) & ~UInt32(0x3) != 0 { problem("\(w): unknown flags \(hex32(r.u32(0x24)))") }
    let bps = UInt64(sb.blocksPerSegment)
    let expectUser =
      (UInt64(sb.segmentCount) &- UInt64(sb.rsvSegments)) &* bps &- UInt64(sb.opBlocks)
    if cp.userBlockCount != expectUser {
      problem("\(w): user_block_count \(cp.userBlockCount), expected \(expectUser)")
    }
    requireZero(raw, 0x48..<0x50, "\(w) reserved 0x48")
    requireZero(raw, 0x59..<0x60, "\(w) SSA MetaRoot padding")
    requireZero(raw, 0x62..<0x80, "\(w) reserved 0x62")
    requireZero(raw, Checkpoint.reservedTail..<RoseLayout.blockSize, "\(w) reserved 0xfb8")
    var logSegs = Set<UInt32>()
    for i in 0..<3 {
      let o = 0x30 + 8 * i
      if r.u8(o + 6) != UInt8(i + 1) {
        problem("\(w): log \(i) has type \(r.u8(o + 6)), expected \(i + 1)")
      }
      if r.u8(o + 7) != 0 { problem("\(w): log \(i) padding byte is not zero") }
      if r.u32(o) >= sb.segmentCount || UInt64(r.u16(o + 4)) > bps {
        problem(
          "\(w): log \(i) at segment \(r.u32(o)) block \(r.u16(o + 4)) is outside the main area")
      }
      if !logSegs.insert(r.u32(o)).inserted { problem("\(w): two logs share segment \(r.u32(o))") }
    }
    let jn = Int(r.u32(0x2C))
    if jn > Checkpoint.natJournalCapacity { problem("\(w): nat_journal_count \(jn) exceeds 282") }
    for i in 0..<Checkpoint.natJournalCapacity {
      let o = Checkpoint.natJournalOffset + 12 * i
      if i >= jn {
        requireZero(raw, o..<o + 12, "\(w) unused NAT journal entry \(i)")
        continue
      }
      let nid = r.u32(o)
      let a = r.u32(o + 4)
      if nid == 0 || nid >= cp.nextFreeNid || Int(r.u8(o + 8)) >= n || (a != 0 && !inMain(a)) {
        problem(
          "\(w): NAT journal entry \(i) (nid \(nid), block \(a), head \(r.u8(o + 8))) is invalid")
      }
      requireZero(raw, o + 9..<o + 12, "\(w) NAT journal entry \(i) padding")
    }
    var names = Set<[UInt8]>()
    for i in 0..<RoseLayout.maxHeads {
      let o = 0x80 + 128 * i
      let hw = "\(w) head \(i)"
      if i >= n {
        requireZero(raw, o..<o + 128, "\(hw) (unused)")
        continue
      }
      let h = cp.heads[i]
      let knownFlags =
        Head.active | Head.readOnly | Head.vbmSameAs | (h.flags & Head.vbmSameAs != 0 ? 0xFF00 : 0)
      if h.flags & ~knownFlags != 0 { problem("\(hw): unknown flags \(hex32(h.flags))") }
      if !h.isActive { problem("\(hw): ACTIVE flag is not set") }
      if let src = h.vbmSource {
        if src >= n || src == i || cp.heads[src].vbmSource != nil {
          problem("\(hw): VBM_SAME_AS names head \(src), which has no bitmap of its own")
        }
        requireZero(raw, o + 0x40..<o + 0x50, "\(hw): VBM MetaRoot of a VBM_SAME_AS head")
      }
      requireZero(raw, o + 0x39..<o + 0x40, "\(hw) NAT MetaRoot padding")
      requireZero(raw, o + 0x49..<o + 0x50, "\(hw) VBM MetaRoot padding")
      requireZero(raw, o + 0x50..<o + 0x80, "\(hw) reserved bytes")
      let name = r.slice(o + 0x20, 16)
      let nul = name.firstIndex(of: 0) ?? 16
      if nul == 0 { problem("\(hw): empty name") }
      requireZero(name, nul..<16, "\(hw) name padding")
      if !names.insert(Array(name[0..<nul])).inserted {
        problem("\(hw): name is used by another head")
      }
      if h.parentHead != 0xFFFF_FFFF && Int(h.parentHead) >= n {
        problem("\(hw): parent_head \(h.parentHead) does not exist")
      }
      if h.createdCpVer > cp.cpVer {
        problem("\(hw): created_cp_ver \(h.createdCpVer) > cp_ver \(cp.cpVer)")
      }
      if h.rootIno < 8 { problem("\(hw): root_ino \(h.rootIno) is reserved") }
    }
    self.cp = cp
    uses = Array(repeating: [:], count: n)
    natMap = Array(repeating: [:], count: n)
    reachedInodes = Array(repeating: [], count: n)
    reachedNids = Array(repeating: [], count: n)
    return true
  }

  // MARK: 3. Reserved blocks

  func checkReservedBlocks() {
    for a in UInt32(4)..<RoseLayout.mainStart {
      guard let b = readBlock(a) else { continue }
      requireZero(b, 0..<RoseLayout.blockSize, "reserved block \(a)")
    }
  }

  // MARK: 4. Meta-files

  /// Walks one meta-file map: every index block and content block stored, checked, and handed to
  /// `content(index, address, bytes)`. Returns the addresses of every block of the meta-file.
  @discardableResult
  func walkMeta(
    _ root: MetaRoot, type: UInt8, aux: UInt32, expectedBlocks: UInt64, what: String,
    content: (UInt32, UInt32, [UInt8]) -> Void
  ) -> [(addr: UInt32, use: BlockUse)] {
    var out: [(UInt32, BlockUse)] = []
    if UInt64(root.nblocks) != expectedBlocks {
      problem("\(what): nblocks \(root.nblocks), expected \(expectedBlocks)")
    }
    let depth = Int(root.depth)
    if depth != ImageReader.minimalDepth(root.nblocks) {
      problem("\(what): depth \(depth) is not the smallest for \(root.nblocks) blocks")
    }
    guard depth <= 4 else { return out }
    let magic = [Magic.nat, Magic.nat, Magic.vbm, Magic.ssa][Int(type)]
    let head = UInt8(truncatingIfNeeded: aux)
    var seen = Set<UInt32>()
    let per = UInt64(RoseLayout.addressesPerBlock)
    func contentBlock(_ a: UInt32, _ index: UInt64) {
      guard index < UInt64(root.nblocks) else {
        problem("\(what): content block \(index) at block \(a) is past nblocks \(root.nblocks)")
        return
      }
      guard seen.insert(a).inserted else {
        problem("\(what): block \(a) appears twice in the map")
        return
      }
      let cw = "\(what) content block \(index)"
      guard let b = headerBlock(a, magic: magic, cw) else { return }
      let r = ByteReader(b)
      let contentAux: UInt32 = type == MetaType.vbm ? aux : 0
      if UInt64(r.u32(0x14)) != index || r.u8(0x1A) != 0 || r.u8(0x1B) != 0
        || r.u32(0x1C) != contentAux
      {
        problem(
          "\(cw) (block \(a)): header owner \(r.u32(0x14)) level \(r.u8(0x1A)) subtype \(r.u8(0x1B)) aux \(r.u32(0x1C)), expected owner \(index) level 0 subtype 0 aux \(contentAux)"
        )
      }
      out.append(
        (
          a,
          .meta(type: type, head: type == MetaType.ssa ? 0 : head, level: 0, index: UInt32(index))
        ))
      content(UInt32(index), a, b)
    }
    func indexBlock(_ a: UInt32, level: Int, index: UInt64, span: UInt64) {
      guard seen.insert(a).inserted else {
        problem("\(what): block \(a) appears twice in the map")
        return
      }
      let iw = "\(what) map-index level \(level) index \(index)"
      guard let b = headerBlock(a, magic: Magic.mapIndex, iw) else { return }
      let r = ByteReader(b)
      var nonZero = 0
      for i in 0..<RoseLayout.addressesPerBlock where r.u32(0x20 + 4 * i) != 0 { nonZero += 1 }
      if UInt64(r.u32(0x14)) != index || Int(r.u8(0x1A)) != level || r.u8(0x1B) != type
        || r.u32(0x1C) != aux
        || Int(r.u16(0x18)) != nonZero
      {
        problem(
          "\(iw) (block \(a)): header owner \(r.u32(0x14)) level \(r.u8(0x1A)) subtype \(r.u8(0x1B)) aux \(r.u32(0x1C)) count \(r.u16(0x18)), expected \(index) \(level) \(type) \(aux) \(nonZero)"
        )
      }
      if nonZero == 0 { problem("\(iw) (block \(a)): stored index block without children") }
      out.append(
        (
          a,
          .meta(
            type: type, head: type == MetaType.ssa ? 0 : head, level: UInt8(level),
            index: UInt32(index))
        ))
      let childSpan = span / per
      for i in 0..<RoseLayout.addressesPerBlock {
        let c = r.u32(0x20 + 4 * i)
        if c == 0 { continue }
        let childIndex = index * per + UInt64(i)
        if childIndex * childSpan >= UInt64(root.nblocks) {
          problem("\(iw) (block \(a)): child \(i) covers blocks past nblocks \(root.nblocks)")
          continue
        }
        if level == 1 {
          contentBlock(c, childIndex)
        } else {
          indexBlock(c, level: level - 1, index: childIndex, span: childSpan)
        }
      }
    }
    if root.root == 0 { return out }
    if depth == 0 {
      if root.nblocks == 0 {
        problem("\(what): root \(root.root) with nblocks 0")
      } else {
        contentBlock(root.root, 0)
      }
    } else {
      var span: UInt64 = 1
      for _ in 0..<depth { span *= per }
      indexBlock(root.root, level: depth, index: 0, span: span)
    }
    return out
  }

  func checkMetaFiles() {
    guard let sb, let cp else { return }
    let per = UInt64(RoseLayout.addressesPerBlock)
    let natBlocks = (UInt64(cp.nextFreeNid) + per - 1) / per
    let vbmCount =
      (mainBlocks + UInt64(RoseLayout.bitsPerVBMBlock) - 1) / UInt64(RoseLayout.bitsPerVBMBlock)
    let ssaCount =
      (mainBlocks + UInt64(RoseLayout.ssaEntriesPerBlock) - 1)
      / UInt64(RoseLayout.ssaEntriesPerBlock)
    // The NAT as stored, before a head's own journal entries (which apply to that head only).
    var natDone: [String: ([UInt32: UInt32], [(addr: UInt32, use: BlockUse)])] = [:]
    for h in 0..<nHeads {
      let head = cp.heads[h]
      var blocks: [(addr: UInt32, use: BlockUse)]
      let natKey = "\(head.nat.root)/\(head.nat.nblocks)/\(head.nat.depth)"
      if let (stored, b) = natDone[natKey] {
        natMap[h] = stored
        blocks = b
      } else {
        var map: [UInt32: UInt32] = [:]
        blocks = walkMeta(
          head.nat, type: MetaType.nat, aux: UInt32(h), expectedBlocks: natBlocks,
          what: "head \(h) NAT"
        ) { index, addr, b in
          let r = ByteReader(b)
          var nonZero = 0
          for i in 0..<RoseLayout.addressesPerBlock {
            let a = r.u32(0x20 + 4 * i)
            if a == 0 { continue }
            nonZero += 1
            let nid = UInt32(UInt64(index) * per + UInt64(i))
            if nid == 0 || nid >= cp.nextFreeNid {
              problem(
                "head \(h) NAT block \(addr): nid \(nid) maps to block \(a) but is past next_free_nid \(cp.nextFreeNid) or 0"
              )
            } else if !inMain(a) {
              problem(
                "head \(h) NAT block \(addr): nid \(nid) maps to block \(a), outside the main area")
            } else {
              map[nid] = a
            }
          }
          if Int(r.u16(0x18)) != nonZero {
            problem(
              "head \(h) NAT block \(addr): count \(r.u16(0x18)), \(nonZero) entries are non-zero")
          }
        }
        natMap[h] = map
        natDone[natKey] = (map, blocks)
      }
      for e in cp.natJournal where Int(e.head) == h {
        if e.blkaddr == 0 {
          natMap[h][e.nid] = nil
        } else if inMain(e.blkaddr) {
          natMap[h][e.nid] = e.blkaddr
        }
      }
      for (a, u) in blocks { use(h, a, u, "NAT map") }
      if head.vbmSource == nil {
        var stored: [UInt32: [UInt8]] = [:]
        let vbmBlocks = walkMeta(
          head.vbm, type: MetaType.vbm, aux: UInt32(h), expectedBlocks: vbmCount,
          what: "head \(h) VBM"
        ) { index, addr, b in
          let r = ByteReader(b)
          if r.u16(0x18) != 0 {
            problem("head \(h) VBM block \(addr): count \(r.u16(0x18)), must be 0")
          }
          // Bits past the main area are zero.
          let first = UInt64(index) * UInt64(RoseLayout.bitsPerVBMBlock)
          if first + UInt64(RoseLayout.bitsPerVBMBlock) > mainBlocks {
            let valid = mainBlocks > first ? Int(mainBlocks - first) : 0
            let partial = valid % 8 != 0 ? b[0x20 + valid / 8] >> UInt8(valid % 8) : 0
            let wholeFrom = 0x20 + (valid + 7) / 8
            if partial != 0 || !Self.allZero(b, wholeFrom..<RoseLayout.blockSize) {
              problem("head \(h) VBM block \(addr): a bit for a block past the main area is set")
            }
          }
          stored[index] = b
        }
        self.vbmBlocks[h] = stored
        for (a, u) in vbmBlocks { use(h, a, u, "VBM map") }
      }
    }
    // Heads with VBM_SAME_AS reach their source's bitmap blocks.
    let ssa = walkMeta(cp.ssa, type: MetaType.ssa, aux: 0, expectedBlocks: ssaCount, what: "SSA") {
      index, addr, b in
      let r = ByteReader(b)
      var nonFree = 0
      for i in 0..<RoseLayout.ssaEntriesPerBlock {
        let o = 0x20 + 12 * i
        let info = r.u32(o + 4)
        let kind = info >> 28
        let blk = mainStart + UInt64(index) * UInt64(RoseLayout.ssaEntriesPerBlock) + UInt64(i)
        if kind == 0 {
          requireZero(b, o..<o + 12, "SSA block \(addr) entry for block \(blk) (FREE)")
        } else {
          nonFree += 1
          if kind > 4 { problem("SSA block \(addr): entry for block \(blk) has kind \(kind)") }
          if blk >= mainStart + mainBlocks {
            problem("SSA block \(addr): entry for block \(blk) past the main area")
          }
        }
      }
      if Int(r.u16(0x18)) != nonFree {
        problem("SSA block \(addr): count \(r.u16(0x18)), \(nonFree) entries are not FREE")
      }
      requireZero(
        b, 0x20 + 12 * RoseLayout.ssaEntriesPerBlock..<RoseLayout.blockSize,
        "SSA block \(addr) padding")
      ssaBlocks[index] = b
    }
    for h in 0..<nHeads {
      for (a, u) in ssa { use(h, a, u, "SSA map") }
      if let src = cp.heads[h].vbmSource, src < nHeads, src != h {
        for (a, u) in uses[src] {
          if case .meta(let t, _, _, _) = u, t == MetaType.vbm {
            use(h, a, u, "VBM of head \(src)")
          }
        }
      }
    }
    _ = sb
  }

  // MARK: 5-8. Trees

  struct InodeState {
    var rec: InodeRecord
    var names: UInt32
    var subdirs: UInt32 = 0
    var path: String
  }

  func walkHead(_ h: Int) {
    guard let cp, let reader else { return }
    let rootIno = cp.heads[h].rootIno
    var states: [UInt32: InodeState] = [:]
    var bad = Set<UInt32>()
    var dirs: [UInt32] = []
    var dirSet = Set<UInt32>()
    // Reads and checks an inode the first time it is reached.
    func reach(_ ino: UInt32, path: String) -> InodeState? {
      if let s = states[ino] { return s }
      if bad.contains(ino) { return nil }
      guard let rec = readSlot(h, ino, path: path) else {
        bad.insert(ino)
        return nil
      }
      let s = InodeState(rec: rec, names: 0, path: path)
      states[ino] = s
      reachedInodes[h].insert(ino)
      checkInode(h, s, reader: reader)
      return s
    }
    guard let root = reach(rootIno, path: "/") else {
      problem("head \(h): root ino \(rootIno) is unreadable; the tree of this head is not checked")
      return
    }
    if root.rec.kind != .directory {
      problem("head \(h): root ino \(rootIno) is not a directory")
      return
    }
    if root.rec.parent != rootIno {
      problem("head \(h) /: parent \(root.rec.parent) of the root is not itself")
    }
    states[rootIno]?.names = 1
    dirs.append(rootIno)
    dirSet.insert(rootIno)
    var i = 0
    while i < dirs.count {
      let dino = dirs[i]
      i += 1
      guard let d = states[dino] else { continue }
      for e in directoryEntries(h, d) {
        let childPath = (d.path == "/" ? "/" : d.path + "/") + Name.printable(e.name)
        guard let c = reach(e.ino, path: childPath) else {
          problem("head \(h) \(childPath): entry names ino \(e.ino), which is unreadable")
          continue
        }
        states[e.ino]?.names += 1
        if let k = c.rec.kind, k.rawValue != e.type {
          problem(
            "head \(h) \(childPath): entry type \(e.type) but ino \(e.ino) has mode type \(k.rawValue)"
          )
        }
        if c.rec.kind == .directory {
          states[dino]?.subdirs += 1
          if !dirSet.insert(e.ino).inserted {
            problem("head \(h) \(childPath): directory ino \(e.ino) is reachable twice")
          } else {
            dirs.append(e.ino)
          }
        }
      }
    }
    for (ino, s) in states {
      let expected = s.rec.kind == .directory ? 2 + s.subdirs : s.names
      if s.rec.nlink != expected {
        problem("head \(h) \(s.path) (ino \(ino)): nlink \(s.rec.nlink), counted \(expected)")
      }
      if ino != rootIno && !dirSet.contains(s.rec.parent) {
        problem(
          "head \(h) \(s.path) (ino \(ino)): parent \(s.rec.parent) is not a directory of the head")
      }
    }
    // Every other slot of every inode page of the head is zero; every NAT entry is reached.
    var pageNids = Set<UInt32>()
    for ino in reachedInodes[h] { pageNids.insert(ino / 8) }
    for nid in pageNids {
      guard let a = natMap[h][nid], let page = pageCache[a] else { continue }
      for s in 0..<RoseLayout.inodesPerPage where !reachedInodes[h].contains(nid * 8 + UInt32(s)) {
        requireZero(
          page, s * RoseLayout.inodeSize..<(s + 1) * RoseLayout.inodeSize,
          "head \(h) inode page nid \(nid) (block \(a)) slot \(s) (ino \(nid * 8 + UInt32(s)) is not reachable)"
        )
      }
    }
    for (nid, a) in natMap[h] where !reachedNids[h].contains(nid) {
      problem(
        "head \(h): NAT maps nid \(nid) to block \(a) but nothing reachable in the head uses it")
    }
    if UInt64(reachedInodes[h].count) != UInt64(cp.heads[h].inodeCount) {
      problem("head \(h): inode_count \(cp.heads[h].inodeCount), counted \(reachedInodes[h].count)")
    }
  }

  func readSlot(_ h: Int, _ ino: UInt32, path: String) -> InodeRecord? {
    let nid = ino / 8
    guard nid != 0 else {
      problem("head \(h) \(path): ino \(ino) is reserved (nid 0)")
      return nil
    }
    guard let a = natMap[h][nid] else {
      problem("head \(h) \(path): ino \(ino): nid \(nid) is free in the NAT")
      return nil
    }
    var page = pageCache[a]
    if page == nil {
      page = readBlock(a)
      pageCache[a] = page
    }
    guard let page else { return nil }
    if reachedNids[h].insert(nid).inserted { use(h, a, .inodePage(nid: nid), path) }
    do {
      return try InodeRecord.decode(page: page, ino: ino, checksum: ck, pageAddress: a)
    } catch {
      report(error, "head \(h) \(path)")
      return nil
    }
  }

  /// A tree or xattr node: header checks (magic, checksum, blkaddr, owner = nid, aux = ino, level).
  func node(_ h: Int, nid: UInt32, ino: UInt32, magic: UInt32, level: Int?, _ w: String) -> (
    UInt32, [UInt8]
  )? {
    guard let a = natMap[h][nid], nid != 0 else {
      problem("\(w): nid \(nid) is free in the NAT of head \(h)")
      return nil
    }
    guard reachedNids[h].insert(nid).inserted else {
      problem("\(w): nid \(nid) is reached twice in head \(h)")
      return nil
    }
    let u: BlockUse =
      magic == Magic.dirNode
      ? .dirNode(nid: nid)
      : magic == Magic.extentNode ? .extentNode(nid: nid) : .xattrNode(nid: nid)
    use(h, a, u, w)
    guard let b = headerBlock(a, magic: magic, "\(w) nid \(nid)") else { return nil }
    let r = ByteReader(b)
    if r.u32(0x14) != nid || r.u32(0x1C) != ino || r.u8(0x1B) != 0
      || level.map({ Int(r.u8(0x1A)) != $0 }) ?? false
    {
      problem(
        "\(w) nid \(nid) (block \(a)): header owner \(r.u32(0x14)) aux \(r.u32(0x1C)) level \(r.u8(0x1A)) subtype \(r.u8(0x1B)), expected owner \(nid) aux \(ino) level \(level ?? 0) subtype 0"
      )
    }
    return (a, b)
  }

  /// Walks a B+ tree (item 6 and 7 node checks): levels, counts, key order, interior keys equal the
  /// smallest key below, zero bytes after the records. `leaf` returns the first key of a leaf.
  func walkTree(
    _ h: Int, rec: InodeRecord, magic: UInt32, _ w: String, leaf: (UInt32, [UInt8]) -> UInt64?
  ) {
    let depth = Int(rec.treeDepth)
    guard depth <= ImageReader.maxTreeDepth else {
      problem("\(w): tree depth \(depth) exceeds \(ImageReader.maxTreeDepth)")
      return
    }
    let isDir = magic == Magic.dirNode
    let recSize = isDir ? 12 : 8
    let maxCount = isDir ? ImageReader.maxDirInteriorRecords : TreeKind.extents.maxInteriorRecords
    var lastKeyAt: [Int: UInt64] = [:]
    func visit(_ nid: UInt32, _ level: Int) -> UInt64? {
      guard let (a, b) = node(h, nid: nid, ino: rec.ino, magic: magic, level: level, w) else {
        return nil
      }
      if level == 0 { return leaf(a, b) }
      let r = ByteReader(b)
      let count = Int(r.u16(0x18))
      guard count >= 1, count <= maxCount else {
        problem("\(w) nid \(nid) (block \(a)): interior count \(count)")
        return nil
      }
      requireZero(
        b, 0x20 + recSize * count..<RoseLayout.blockSize,
        "\(w) nid \(nid) (block \(a)) after the records")
      var first: UInt64?
      for i in 0..<count {
        let o = 0x20 + recSize * i
        let key = isDir ? r.u64(o) : UInt64(r.u32(o))
        if let lastKey = lastKeyAt[level], key <= lastKey {
          problem("\(w) nid \(nid) (block \(a)): interior key \(i) is not ascending")
        }
        lastKeyAt[level] = key
        let childFirst = visit(r.u32(o + recSize - 4), level - 1)
        if let childFirst, childFirst != key {
          problem(
            "\(w) nid \(nid) (block \(a)): interior key \(i) is \(key), the smallest key below is \(childFirst)"
          )
        }
        if i == 0 { first = key }
      }
      return first
    }
    _ = visit(rec.treeRoot, depth)
  }

  func directoryEntries(_ h: Int, _ d: InodeState) -> [DirectoryEntry] {
    guard let reader else { return [] }
    let rec = d.rec
    let w = "head \(h) \(d.path) (ino \(rec.ino))"
    var entries: [DirectoryEntry] = []
    if rec.has(InodeFlag.inlineDentry) {
      do { entries = try reader.inlineEntries(rec) } catch {
        report(error, w)
        return []
      }
      if rec.size != UInt64(rec.inlineLen) {
        problem("\(w): size \(rec.size) is not inline_len \(rec.inlineLen)")
      }
    } else if rec.has(InodeFlag.dirTree) {
      var leaves: UInt64 = 0
      walkTree(h, rec: rec, magic: Magic.dirNode, "\(w) directory tree") { a, b in
        leaves += 1
        let r = ByteReader(b)
        let count = Int(r.u16(0x18))
        let lw = "\(w) directory leaf block \(a)"
        do {
          let es = try ImageReader.dirLeafEntries(b, addr: a, ino: rec.ino)
          // Names packed downward from the end, no overlap; zero between records and names.
          var spans = (0..<count).map { i -> (Int, Int) in
            (Int(r.u16(0x20 + 16 * i + 12)), Int(r.u8(0x20 + 16 * i + 14)))
          }
          spans.sort { $0.0 > $1.0 }
          var low = RoseLayout.blockSize
          for (off, len) in spans {
            if off + len != low {
              problem("\(lw): names are not packed downward from the end (name at \(off))")
            }
            low = min(low, off)
          }
          requireZero(b, 0x20 + 16 * count..<low, "\(lw) between records and names")
          entries += es
          return es.first?.key
        } catch {
          report(error)
          return nil
        }
      }
      if rec.size != leaves * UInt64(RoseLayout.blockSize) {
        problem("\(w): size \(rec.size), the tree has \(leaves) leaves")
      }
      if rec.inlineLen != 0 { problem("\(w): inline_len \(rec.inlineLen) in a tree directory") }
    } else {
      return []
    }
    if UInt64(entries.count) != UInt64(rec.nitems) {
      problem("\(w): nitems \(rec.nitems), the directory holds \(entries.count) entries")
    }
    // Names, keys, order, uniqueness.
    var prev: DirectoryEntry?
    for e in entries {
      let ew = "\(w) entry \(Name.printable(e.name))"
      if e.name.isEmpty || e.name.count > 255 || e.name.contains(0)
        || e.name.contains(UInt8(ascii: "/"))
      {
        problem("\(ew): invalid name")
      }
      let hv = nameHash(e.name, seed: sb?.hashSeed ?? [])
      if e.key >> 32 != UInt64(hv) {
        problem("\(ew): key \(e.key) does not carry the name hash \(hv)")
      }
      if let p = prev {
        if e.key <= p.key { problem("\(ew): key \(e.key) is not above the previous key \(p.key)") }
        if p.key >> 32 == e.key >> 32 {
          if e.key & 0xFFFF_FFFF != (p.key & 0xFFFF_FFFF) + 1 {
            problem("\(ew): seq is not consecutive")
          }
          if !p.name.lexicographicallyPrecedes(e.name) {
            problem("\(ew): duplicate or unordered name")
          }
        } else if e.key & 0xFFFF_FFFF != 0 {
          problem("\(ew): first entry of its hash has seq \(e.key & 0xFFFF_FFFF)")
        }
      } else if e.key & 0xFFFF_FFFF != 0 {
        problem("\(ew): first entry of its hash has seq \(e.key & 0xFFFF_FFFF)")
      }
      prev = e
    }
    return entries
  }

  // Item 5 and 7: one inode's slot, content and xattrs.
  func checkInode(_ h: Int, _ s: InodeState, reader: ImageReader) {
    let rec = s.rec
    let w = "head \(h) \(s.path) (ino \(rec.ino))"
    guard let kind = rec.kind else {
      problem("\(w): mode \(String(rec.mode, radix: 8)) has no valid file type")
      return
    }
    if rec.flags & ~UInt16(0x7F) != 0 {
      problem("\(w): unknown flags \(String(rec.flags, radix: 16))")
    }
    let contentFlags = rec.flags & 0x1F
    let isFile = kind == .regular || kind == .symlink
    switch kind {
    case .regular, .symlink:
      if ![InodeFlag.inlineData, InodeFlag.extents, InodeFlag.extentTree].contains(contentFlags) {
        problem("\(w): flags \(String(rec.flags, radix: 16)) are not one file content form")
      }
      if rec.has(InodeFlag.tail) && rec.has(InodeFlag.inlineData) {
        problem("\(w): TAIL with INLINE_DATA")
      }
    case .directory:
      if ![InodeFlag.inlineDentry, InodeFlag.dirTree].contains(contentFlags)
        || rec.has(InodeFlag.tail)
      {
        problem("\(w): flags \(String(rec.flags, radix: 16)) are not one directory content form")
      }
    default:
      if contentFlags != 0 || rec.has(InodeFlag.tail) {
        problem("\(w): flags \(String(rec.flags, radix: 16)) on a \(kind) (no content allowed)")
      }
      if rec.size != 0 || rec.inlineLen != 0 || rec.nitems != 0 {
        problem("\(w): a \(kind) with content fields set")
      }
    }
    if rec.reserved05C != 0 || rec.reserved08D.contains(where: { $0 != 0 }) {
      problem("\(w): reserved bytes not zero")
    }
    for t in [rec.atime, rec.mtime, rec.ctime, rec.crtime] where t.nanoseconds > 999_999_999 {
      problem("\(w): nanoseconds \(t.nanoseconds) out of range")
    }
    if kind != .characterDevice && kind != .blockDevice
      && (rec.rdevMajor != 0 || rec.rdevMinor != 0)
    {
      problem("\(w): rdev set on a \(kind)")
    }
    if let cp, rec.cpVer > cp.cpVer {
      problem("\(w): cp_ver \(rec.cpVer) is newer than the checkpoint")
    }
    if rec.has(InodeFlag.xattrNode) != (rec.xattrNid != 0) {
      problem("\(w): xattr_nid \(rec.xattrNid) disagrees with XATTR_NODE")
    }
    if rec.has(InodeFlag.xattrNode) && rec.xattrLen != 0 {
      problem("\(w): inline xattrs and an xattr node")
    }
    if !rec.has(InodeFlag.tail) && (rec.tailBlk != 0 || rec.tailOff != 0 || rec.tailLen != 0) {
      problem("\(w): tail fields set without TAIL")
    }
    let isTree = rec.has(InodeFlag.dirTree) || rec.has(InodeFlag.extentTree)
    if !isTree && (rec.treeRoot != 0 || rec.treeDepth != 0) {
      problem("\(w): tree_root set without a tree")
    }
    if isTree && rec.inlineLen != 0 { problem("\(w): inline_len \(rec.inlineLen) with a tree") }
    let used = Int(rec.inlineLen) + Int(rec.xattrLen)
    if used > RoseLayout.inlineCapacity {
      problem("\(w): inline_len \(rec.inlineLen) + xattr_len \(rec.xattrLen) exceeds 368")
    } else {
      requireZero(
        rec.inlineArea, Int(rec.inlineLen)..<RoseLayout.inlineCapacity - Int(rec.xattrLen),
        "\(w) unused i_u bytes")
    }
    if !isFile && rec.blocks != 0 { problem("\(w): blocks \(rec.blocks) on a \(kind)") }
    if isFile { checkFile(h, rec, w, reader: reader) }
    checkXattrs(h, rec, w)
  }

  func checkFile(_ h: Int, _ rec: InodeRecord, _ w: String, reader: ImageReader) {
    let bs = UInt64(RoseLayout.blockSize)
    if rec.kind == .symlink && (rec.size < 1 || rec.size > 4095) {
      problem("\(w): symlink target of \(rec.size) bytes")
    }
    if rec.has(InodeFlag.inlineData) {
      if rec.size != UInt64(rec.inlineLen) {
        problem("\(w): INLINE_DATA with inline_len \(rec.inlineLen), size \(rec.size)")
      }
      if rec.size > UInt64(RoseLayout.inlineCapacity) {
        problem("\(w): inline file of \(rec.size) bytes")
      }
      if rec.nitems != 0 || rec.blocks != 0 {
        problem("\(w): nitems or blocks set on an inline file")
      }
      return
    }
    if rec.size <= UInt64(RoseLayout.inlineCapacity) {
      problem("\(w): file of \(rec.size) bytes is not INLINE_DATA")
    }
    if rec.size > RoseLayout.maxFileSize { problem("\(w): size \(rec.size) exceeds 2^40") }
    var extents: [Extent] = []
    if rec.has(InodeFlag.extents) {
      guard UInt64(rec.inlineLen) == 12 * UInt64(rec.nitems),
        Int(rec.inlineLen) <= RoseLayout.inlineCapacity
      else {
        problem("\(w): inline_len \(rec.inlineLen) is not 12 * nitems \(rec.nitems)")
        return
      }
      extents = ImageReader.extentRecords(rec.inlineArea, at: 0, count: Int(rec.nitems))
    } else if rec.has(InodeFlag.extentTree) {
      var tooMany = false
      walkTree(h, rec: rec, magic: Magic.extentNode, "\(w) extent tree") { a, b in
        let r = ByteReader(b)
        let count = Int(r.u16(0x18))
        guard count >= 1, count <= ImageReader.maxExtentLeafRecords else {
          problem("\(w) extent leaf block \(a): count \(count)")
          return nil
        }
        requireZero(
          b, 0x20 + 12 * count..<RoseLayout.blockSize,
          "\(w) extent leaf block \(a) after the records")
        if UInt64(extents.count + count) > UInt64(rec.nitems) {
          tooMany = true
          return nil
        }
        let es = ImageReader.extentRecords(b, at: 0x20, count: count)
        extents += es
        return es.first.map { UInt64($0.logical) }
      }
      if tooMany { problem("\(w): the extent tree holds more than nitems \(rec.nitems) extents") }
    }
    if UInt64(extents.count) != UInt64(rec.nitems) {
      problem("\(w): nitems \(rec.nitems), \(extents.count) extents found")
    }
    let tailLen = rec.has(InodeFlag.tail) ? UInt64(rec.tailLen) : 0
    let bodyEnd = rec.size >= tailLen ? rec.size - tailLen : 0
    let bodyBlocks = (bodyEnd + bs - 1) / bs
    var end: UInt64 = 0
    var count: UInt64 = 0
    for e in extents {
      let ew = "\(w): extent (lblk \(e.logical), pblk \(e.physical), len \(e.count))"
      if UInt64(e.logical) < end { problem("\(ew) is unsorted or overlaps the previous one") }
      if !inMain(e.physical, count: e.count) { problem("\(ew) is outside the main area") }
      if UInt64(e.logical) + UInt64(e.count) > bodyBlocks {
        problem("\(ew) reaches past the file size \(rec.size)")
      }
      end = max(end, UInt64(e.logical) + UInt64(e.count))
      count += UInt64(e.count)
      if inMain(e.physical, count: e.count) && UInt64(e.logical) + UInt64(e.count) <= bodyBlocks {
        for j in 0..<e.count { use(h, e.physical + j, .data(ino: rec.ino, lblk: e.logical + j), w) }
      }
    }
    if rec.blocks != count * 8 {
      problem("\(w): blocks \(rec.blocks), the extents hold \(count * 8) 512-byte units")
    }
    if rec.has(InodeFlag.tail) { checkTailRef(h, rec, w) }
  }

  func checkTailRef(_ h: Int, _ rec: InodeRecord, _ w: String) {
    let expected = rec.size % UInt64(RoseLayout.blockSize)
    if expected == 0 || UInt64(rec.tailLen) != expected {
      problem("\(w): tail_len \(rec.tailLen), size % 4096 is \(expected)")
    }
    if let sb, UInt64(rec.tailLen) > UInt64(sb.tailMax) {
      problem("\(w): tail of \(rec.tailLen) bytes exceeds tail_max \(sb.tailMax)")
    }
    guard inMain(rec.tailBlk) else {
      problem("\(w): tail block \(rec.tailBlk) is outside the main area")
      return
    }
    use(h, rec.tailBlk, .tail, w)
    guard let table = tailTable(rec.tailBlk) else { return }
    if !table.contains(where: {
      $0.ino == rec.ino && $0.off == rec.tailOff && $0.len == rec.tailLen
    }) {
      problem(
        "\(w): fragment (offset \(rec.tailOff), length \(rec.tailLen)) is not in the table of tail block \(rec.tailBlk)"
      )
    }
  }

  /// Item 8: a tail block's layout, checked once.
  func tailTable(_ a: UInt32) -> [(ino: UInt32, off: UInt16, len: UInt16)]? {
    if let t = tailTables[a] { return t }
    var result: [(ino: UInt32, off: UInt16, len: UInt16)]?
    defer { tailTables[a] = .some(result) }
    let w = "tail block \(a)"
    guard let b = headerBlock(a, magic: Magic.tail, w) else { return nil }
    let r = ByteReader(b)
    let count = Int(r.u16(0x18))
    if r.u32(0x14) != 0 || r.u8(0x1A) != 0 || r.u8(0x1B) != 0 || r.u32(0x1C) != 0 {
      problem("\(w): header owner, level, subtype and aux must be zero")
    }
    let tableEnd = 0x20 + RoseLayout.tailEntrySize * count
    guard count >= 1, tableEnd <= RoseLayout.blockSize else {
      problem("\(w): count \(count)")
      return nil
    }
    var covered = [Bool](repeating: false, count: RoseLayout.blockSize)
    for i in 0..<tableEnd { covered[i] = true }
    var table: [(ino: UInt32, off: UInt16, len: UInt16)] = []
    for i in 0..<count {
      let o = 0x20 + 8 * i
      let e = (ino: r.u32(o), off: r.u16(o + 4), len: r.u16(o + 6))
      let lo = Int(e.off)
      let hi = lo + Int(e.len)
      guard e.len > 0, lo >= tableEnd, hi <= RoseLayout.blockSize else {
        problem(
          "\(w): entry \(i) (ino \(e.ino), offset \(e.off), length \(e.len)) is outside the fragment area"
        )
        continue
      }
      if covered[lo..<hi].contains(true) {
        problem("\(w): entry \(i) overlaps the table or another fragment")
      }
      for j in lo..<hi { covered[j] = true }
      table.append(e)
    }
    for j in 0..<RoseLayout.blockSize where !covered[j] && b[j] != 0 {
      problem("\(w): byte \(j) outside the header, table and fragments is not zero")
      break
    }
    result = table
    return table
  }

  func checkXattrs(_ h: Int, _ rec: InodeRecord, _ w: String) {
    var xs: [Xattr] = []
    if rec.has(InodeFlag.xattrNode) {
      guard
        let (a, b) = node(
          h, nid: rec.xattrNid, ino: rec.ino, magic: Magic.xattrNode, level: 0, "\(w) xattr node")
      else {
        return
      }
      let count = Int(ByteReader(b).u16(0x18))
      do {
        let p = try ImageReader.parseXattrs(
          Array(b[RoseLayout.headerSize...]), count: count, what: "\(w) xattr node block \(a)")
        requireZero(
          b, RoseLayout.headerSize + p.used..<RoseLayout.blockSize,
          "\(w) xattr node block \(a) after the records")
        if count == 0 { problem("\(w) xattr node block \(a): no records") }
        xs = p.xattrs
      } catch { report(error) }
    } else if rec.xattrLen > 0 {
      let n = Int(rec.xattrLen)
      guard n <= RoseLayout.inlineCapacity else { return }
      do {
        let p = try ImageReader.parseXattrs(
          Array(rec.inlineArea[(RoseLayout.inlineCapacity - n)...]), count: nil,
          what: "\(w) inline xattrs")
        xs = p.xattrs
      } catch { report(error) }
    }
    for i in xs.indices.dropFirst() where !xs[i - 1].name.lexicographicallyPrecedes(xs[i].name) {
      problem("\(w): xattr \(Name.printable(xs[i].name)) is unsorted or duplicated")
    }
  }

  // MARK: 9-10. Data checksums and ownership

  func ssaEntry(_ a: UInt32) -> (owner: UInt32, info: UInt32, crc: UInt32)? {
    guard UInt64(a) >= mainStart else { return nil }
    let k = UInt64(a) - mainStart
    let per = UInt64(RoseLayout.ssaEntriesPerBlock)
    guard let b = ssaBlocks[UInt32(truncatingIfNeeded: k / per)] else { return nil }
    let r = ByteReader(b)
    let o = 0x20 + 12 * Int(k % per)
    return (r.u32(o), r.u32(o + 4), r.u32(o + 8))
  }

  func checkOwnership() {
    var union: [UInt32: [BlockUse]] = [:]
    for h in 0..<nHeads {
      for (a, u) in uses[h] where !(union[a]?.contains(u) ?? false) {
        union[a, default: []].append(u)
      }
    }
    var dataAddrs: [UInt32] = []
    for (a, us) in union {
      guard let e = ssaEntry(a) else {
        problem("block \(a) (\(us[0])) is live but its SSA entry is in a hole")
        continue
      }
      let ok = us.contains { u in
        let x = u.ssa
        if case .data = u {} else if e.crc != 0 { return false }
        return e.info >> 28 == UInt32(x.kind) && e.owner == x.owner
          && e.info & 0x0FFF_FFFF == x.index
      }
      if !ok {
        problem(
          "block \(a): SSA entry (kind \(e.info >> 28), owner \(e.owner), index \(e.info & 0x0FFF_FFFF)) does not match its use as \(us.map { $0.description }.joined(separator: " / "))"
        )
      }
      if us.contains(where: { if case .data = $0 { true } else { false } }) { dataAddrs.append(a) }
    }
    if verifyData { checkDataChecksums(dataAddrs.sorted()) }
  }

  /// Item 9: every data block's checksum equals its SSA crc, read in large sequential runs.
  func checkDataChecksums(_ addrs: [UInt32]) {
    let maxRun = 256
    let buffer = UnsafeMutableRawBufferPointer.allocate(
      byteCount: maxRun * RoseLayout.blockSize, alignment: 4096)
    defer { buffer.deallocate() }
    var i = 0
    while i < addrs.count {
      var n = 1
      while i + n < addrs.count, n < maxRun, addrs[i + n] == addrs[i] + UInt32(n) { n += 1 }
      let view = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n * RoseLayout.blockSize])
      do {
        try image.read(into: view, atByte: UInt64(addrs[i]) * UInt64(RoseLayout.blockSize))
        for j in 0..<n {
          let a = addrs[i + j]
          let crc = ck.checksum(
            UnsafeRawBufferPointer(
              rebasing: view[j * RoseLayout.blockSize..<(j + 1) * RoseLayout.blockSize]))
          if let e = ssaEntry(a), e.crc != crc {
            problem("data block \(a): checksum \(hex32(crc)), the SSA records \(hex32(e.crc))")
          }
        }
      } catch { report(error, "data blocks \(addrs[i])..\(addrs[i] + UInt32(n) - 1)") }
      i += n
    }
  }

  // MARK: 11. Validity

  func vbmBit(_ h: Int, _ a: UInt32) -> Bool {
    guard let cp, h < cp.heads.count else { return false }
    let src = cp.heads[h].vbmSource ?? h
    guard UInt64(a) >= mainStart else { return false }
    let k = UInt64(a) - mainStart
    let per = UInt64(RoseLayout.bitsPerVBMBlock)
    guard let b = vbmBlocks[src]?[UInt32(truncatingIfNeeded: k / per)] else { return false }
    let bit = Int(k % per)
    return b[0x20 + bit / 8] & UInt8(1 << (bit % 8)) != 0
  }

  func checkValidity() {
    guard let cp, let sb else { return }
    var live = Set<UInt32>()
    for h in 0..<nHeads {
      for (a, u) in uses[h] where !vbmBit(h, a) {
        problem("head \(h): block \(a) (\(u)) is in use but its VBM bit is clear")
      }
      let src = cp.heads[h].vbmSource ?? h
      for (index, b) in vbmBlocks[src] ?? [:] {
        var at = 0x20
        while let nz = Self.firstNonZero(b, at..<RoseLayout.blockSize) {
          at = nz + 1
          let byte = nz - 0x20
          for bit in 0..<8 where b[nz] & UInt8(1 << bit) != 0 {
            let k = UInt64(index) * UInt64(RoseLayout.bitsPerVBMBlock) + UInt64(byte * 8 + bit)
            let a = UInt32(truncatingIfNeeded: mainStart + k)
            if mainStart + k < mainStart + mainBlocks && uses[h][a] == nil {
              problem("head \(h): VBM marks block \(a) live but nothing in the head uses it")
            }
          }
        }
      }
      if UInt64(uses[h].count) != cp.heads[h].validBlocks {
        problem("head \(h): valid_blocks \(cp.heads[h].validBlocks), counted \(uses[h].count)")
      }
      live.formUnion(uses[h].keys)
    }
    if UInt64(live.count) != cp.validBlockCount {
      problem("checkpoint: valid_block_count \(cp.validBlockCount), counted \(live.count)")
    }
    let bps = UInt64(sb.blocksPerSegment)
    var liveSegs = Set<UInt64>()
    for a in live { liveSegs.insert((UInt64(a) - mainStart) / bps) }
    var logSegs = Set<UInt64>()
    for l in cp.logs where UInt64(l.segment) < UInt64(sb.segmentCount) {
      logSegs.insert(UInt64(l.segment))
    }
    for l in cp.logs where liveSegs.contains(UInt64(l.segment)) {
      for a in live
      where (UInt64(a) - mainStart) / bps == UInt64(l.segment)
        && (UInt64(a) - mainStart) % bps >= UInt64(l.blockOffset)
      {
        problem(
          "log of type \(l.type): block \(a) past its append point in segment \(l.segment) is live")
        break
      }
    }
    let free = UInt64(sb.segmentCount) - UInt64(liveSegs.union(logSegs).count)
    if UInt64(cp.freeSegments) != free {
      problem("checkpoint: free_segments \(cp.freeSegments), counted \(free)")
    }
    var maxNid: UInt32 = 0
    for m in natMap { for nid in m.keys { maxNid = max(maxNid, nid) } }
    if !natMap.allSatisfy({ $0.isEmpty }) && maxNid >= cp.nextFreeNid {
      problem(
        "checkpoint: next_free_nid \(cp.nextFreeNid) is not above nid \(maxNid), which is in use")
    }
  }
}
