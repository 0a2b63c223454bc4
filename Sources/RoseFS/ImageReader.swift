// Reads RoseFS images (FORMAT.md section 12): superblock, checkpoint, heads, NAT, inode slots,
// directories (inline and hashed B+ trees), extents and tails, xattrs. Every structure is verified
// (magic, checksum, own address, owner) before it is used, every count and size is bounded before
// anything is allocated from it, and every tree walk is bounded in depth and checked for cycles, so
// a malformed image gives `RoseFSError.corrupt`, never a trap or an endless loop.

/// One directory entry as stored (inline or in a tree leaf), with its readdir cookie.
public struct DirectoryEntry: Equatable, Sendable {
  public var name: [UInt8]
  public var ino: UInt32
  public var type: UInt8
  /// `hash << 32 | seq`.
  public var key: UInt64
  public init(name: [UInt8], ino: UInt32, type: UInt8, key: UInt64) {
    self.name = name
    self.ino = ino
    self.type = type
    self.key = key
  }
}

public final class ImageReader: ContentSource {
  public let image: ImageFile
  public let superblock: Superblock
  public let checkpoint: Checkpoint
  /// Which checkpoint slot (0 or 1) is in use, and which superblock copy was used.
  public let checkpointSlot: Int
  public let superblockCopy: Int
  let checksum: RoseChecksum
  private var journal: [Int: [UInt32: UInt32]] = [:]
  private var blockCache: [UInt32: [UInt8]] = [:]
  private var pageCache: [UInt32: [UInt8]] = [:]
  /// Tail blocks already checked against the SSA (a tail block holds several files' tails).
  private var tailCache: [UInt32: [UInt8]] = [:]
  static let cacheLimit = 4096
  /// No B+ tree or map in a v1 image is deeper than this.
  static let maxTreeDepth = TreeWalk.maxDepth

  public init(image: ImageFile) throws {
    self.image = image
    var sb: Superblock?
    var firstError: Error?
    var copy = 0
    for c in 0..<2 {
      do {
        let bytes = try image.read(
          count: RoseLayout.superblockSize,
          atByte: UInt64(c * RoseLayout.blockSize + RoseLayout.superblockOffset))
        sb = try Superblock.decode(bytes)
        copy = c
        break
      } catch {
        if firstError == nil { firstError = error }
      }
    }
    guard let sb else {
      throw firstError ?? RoseFSError.corrupt("no valid superblock in block 0 or block 1")
    }
    let (volumeBytes, overflow) = sb.blockCount.multipliedReportingOverflow(
      by: UInt64(RoseLayout.blockSize))
    guard !overflow, volumeBytes <= image.containerSize else {
      throw RoseFSError.corrupt(
        "the volume has \(sb.blockCount) blocks but its container holds \(image.containerSize) bytes: the image or partition is truncated, or the superblock's block_count is wrong"
      )
    }
    superblock = sb
    superblockCopy = copy
    checksum = RoseChecksum(uuid: sb.uuid)
    var best: (Checkpoint, Int)?
    for s in 0..<RoseLayout.checkpointSlots {
      let bytes = try image.readBlock(sb.cpBlkaddr + UInt32(s))
      if let cp = Checkpoint.decode(bytes, checksum: checksum), cp.cpVer >= 1 {
        if best == nil || cp.cpVer > best?.0.cpVer ?? 0 { best = (cp, s) }
      }
    }
    guard let best else {
      throw RoseFSError.corrupt(
        "no valid checkpoint in block 2 or block 3 (magic or checksum wrong)")
    }
    checkpoint = best.0
    checkpointSlot = best.1
    let nHeads = Int(checkpoint.storedHeadCount)
    guard (1...RoseLayout.maxHeads).contains(nHeads) else {
      throw RoseFSError.corrupt("checkpoint: n_heads \(nHeads) is not 1..4")
    }
    guard Int(checkpoint.defaultHead) < nHeads else {
      throw RoseFSError.corrupt(
        "checkpoint: default_head \(checkpoint.defaultHead) >= n_heads \(nHeads)")
    }
    guard Int(checkpoint.storedJournalCount) <= Checkpoint.natJournalCapacity else {
      throw RoseFSError.corrupt(
        "checkpoint: nat_journal_count \(checkpoint.storedJournalCount) exceeds \(Checkpoint.natJournalCapacity)"
      )
    }
    for e in checkpoint.natJournal {
      guard Int(e.head) < nHeads, e.nid != 0 else {
        throw RoseFSError.corrupt(
          "checkpoint: NAT journal entry for nid \(e.nid) names head \(e.head)")
      }
      journal[Int(e.head), default: [:]][e.nid] = e.blkaddr
    }
  }

  // MARK: Heads

  /// Index of the head named `name`, or the default head for nil.
  public func headIndex(named name: String?) throws -> Int {
    guard let name else { return Int(checkpoint.defaultHead) }
    if let i = checkpoint.heads.firstIndex(where: { $0.nameString == name }) { return i }
    let names = checkpoint.heads.map { $0.nameString }.joined(separator: ", ")
    throw RoseFSError.notFound("no subvolume named \"\(name)\" (the image has: \(names))")
  }

  func head(_ h: Int) throws -> Head {
    guard h >= 0, h < checkpoint.heads.count else {
      throw RoseFSError.notFound("no head \(h) (the image has \(checkpoint.heads.count))")
    }
    return checkpoint.heads[h]
  }

  // MARK: Blocks

  var mainEnd: UInt64 { UInt64(superblock.mainBlkaddr) + UInt64(superblock.mainBlocks) }

  func inMain(_ addr: UInt32) -> Bool {
    addr >= superblock.mainBlkaddr && UInt64(addr) < mainEnd
  }

  /// Reads a block with a header and checks address range, magic, checksum and `blkaddr`.
  func readHeaderBlock(_ addr: UInt32, magic: UInt32, what: @autoclosure () -> String) throws
    -> [UInt8]
  {
    if let b = blockCache[addr] {
      let cached = BlockHeader.decode(b).magic
      guard cached == magic else {
        throw RoseFSError.corrupt("\(what()): block \(addr) has magic \(hex32(cached))")
      }
      return b
    }
    guard inMain(addr) else {
      throw RoseFSError.corrupt("\(what()): block address \(addr) is outside the main area")
    }
    let b = try image.readBlock(addr)
    try Self.verifyHeader(b, addr: addr, magic: magic, checksum: checksum, what: what())
    if blockCache.count >= Self.cacheLimit { blockCache.removeAll(keepingCapacity: true) }
    blockCache[addr] = b
    return b
  }

  static func verifyHeader(
    _ b: [UInt8], addr: UInt32, magic: UInt32, checksum: RoseChecksum, what: String
  )
    throws
  {
    let h = BlockHeader.decode(b)
    guard h.magic == magic else {
      throw RoseFSError.corrupt(
        "\(what): block \(addr) has magic \(hex32(h.magic)), expected \(hex32(magic)) (\(magicName(magic)))"
      )
    }
    let computed = b.withUnsafeBytes {
      checksum.checksum($0, zeroingFieldAt: BlockHeader.crcOffset)
    }
    guard computed == h.crc else {
      throw RoseFSError.corrupt(
        "\(what): block \(addr) checksum mismatch (stored \(hex32(h.crc)), computed \(hex32(computed)))"
      )
    }
    guard h.blkaddr == addr else {
      throw RoseFSError.corrupt(
        "\(what): block \(addr) says it is block \(h.blkaddr) (misdirected write)")
    }
  }

  static func magicName(_ m: UInt32) -> String {
    String(decoding: (0..<4).map { UInt8(truncatingIfNeeded: m >> ($0 * 8)) }, as: UTF8.self)
  }

  // MARK: Meta-files and NAT

  static func minimalDepth(_ nblocks: UInt32) -> Int {
    var d = 0
    var cap: UInt64 = 1
    while cap < UInt64(nblocks) {
      cap *= UInt64(RoseLayout.addressesPerBlock)
      d += 1
    }
    return d
  }

  /// Address of content block `index` of a meta-file (0 for a hole).
  func metaContentAddress(_ root: MetaRoot, index: UInt32, type: UInt8, what: String) throws
    -> UInt32
  {
    guard index < root.nblocks else {
      throw RoseFSError.corrupt("\(what): content block \(index) is past nblocks \(root.nblocks)")
    }
    let depth = Int(root.depth)
    guard depth <= 4 else {
      throw RoseFSError.corrupt("\(what): map depth \(depth) is out of range")
    }
    if depth == 0 {
      guard root.nblocks <= 1 else {
        throw RoseFSError.corrupt("\(what): depth 0 with nblocks \(root.nblocks)")
      }
      return root.root
    }
    let per = UInt64(RoseLayout.addressesPerBlock)
    var divisor: UInt64 = 1
    for _ in 1..<depth { divisor *= per }
    var addr = root.root
    var level = depth
    while level > 0 {
      if addr == 0 { return 0 }
      let b = try readHeaderBlock(
        addr, magic: Magic.mapIndex, what: "\(what) map-index level \(level)")
      let h = BlockHeader.decode(b)
      guard Int(h.level) == level, h.subtype == type else {
        throw RoseFSError.corrupt(
          "\(what): map-index block \(addr) has level \(h.level) subtype \(h.subtype), expected level \(level) subtype \(type)"
        )
      }
      let digit = Int((UInt64(index) / divisor) % per)
      addr = AddressArray.read(ByteReader(b), digit)
      divisor /= per
      level -= 1
    }
    return addr
  }

  /// Block address of `nid` in head `head` (0 if the nid is free there), NAT journal applied.
  public func nat(_ nid: UInt32, head h: Int) throws -> UInt32 {
    let hd = try head(h)
    if let j = journal[h]?[nid] { return j }
    let per = UInt32(RoseLayout.addressesPerBlock)
    guard nid / per < hd.nat.nblocks else {
      throw RoseFSError.corrupt(
        "nid \(nid) is past the NAT of head \(h) (\(hd.nat.nblocks) blocks)")
    }
    let what = "NAT of head \(h)"
    let addr = try metaContentAddress(hd.nat, index: nid / per, type: MetaType.nat, what: what)
    if addr == 0 { return 0 }
    let b = try readHeaderBlock(addr, magic: Magic.nat, what: "\(what), block \(nid / per)")
    let owner = BlockHeader.decode(b).owner
    guard owner == nid / per else {
      throw RoseFSError.corrupt(
        "\(what): NAT block \(addr) has owner \(owner), expected \(nid / per)")
    }
    return AddressArray.read(ByteReader(b), Int(nid % per))
  }

  /// The block of node `nid` in head `h`; throws when the nid is free or the address is bad.
  func nodeAddress(_ nid: UInt32, head h: Int, what: @autoclosure () -> String) throws -> UInt32 {
    guard nid != 0 else { throw RoseFSError.corrupt("\(what()): nid 0 is never used") }
    let a = try nat(nid, head: h)
    guard a != 0 else { throw RoseFSError.corrupt("\(what()): nid \(nid) is free in head \(h)") }
    guard inMain(a) else {
      throw RoseFSError.corrupt("\(what()): nid \(nid) maps to block \(a), outside the main area")
    }
    return a
  }

  /// Reads a tree or xattr node and checks magic, checksum, blkaddr, owner = nid, aux = ino.
  func readNode(_ nid: UInt32, head h: Int, magic: UInt32, ino: UInt32) throws -> (
    addr: UInt32, bytes: [UInt8]
  ) {
    let what = "ino \(ino) \(Self.magicName(magic)) node nid \(nid)"
    let addr = try nodeAddress(nid, head: h, what: what)
    let b = try readHeaderBlock(addr, magic: magic, what: what)
    let h = BlockHeader.decode(b)
    guard h.owner == nid, h.aux == ino else {
      throw RoseFSError.corrupt(
        "\(what): block \(addr) has owner \(h.owner) aux \(h.aux), expected owner \(nid) aux \(ino)"
      )
    }
    return (addr, b)
  }

  // MARK: Inodes

  /// The inode page of `nid` (raw, cached).
  func inodePage(_ nid: UInt32, head h: Int, ino: UInt32) throws -> (addr: UInt32, bytes: [UInt8]) {
    let addr = try nodeAddress(nid, head: h, what: "ino \(ino)")
    if let p = pageCache[addr] { return (addr, p) }
    let p = try image.readBlock(addr)
    if pageCache.count >= Self.cacheLimit { pageCache.removeAll(keepingCapacity: true) }
    pageCache[addr] = p
    return (addr, p)
  }

  public func readInodeRecord(_ ino: UInt32, head h: Int) throws -> InodeRecord {
    guard ino >= UInt32(RoseLayout.inodesPerPage) else {
      throw RoseFSError.corrupt("ino \(ino) is reserved (nid 0 is never used)")
    }
    let (addr, page) = try inodePage(
      ino / UInt32(RoseLayout.inodesPerPage), head: h, ino: ino)
    return try InodeRecord.decode(page: page, ino: ino, checksum: checksum, pageAddress: addr)
  }

  // MARK: Directories

  static let maxDirLeafRecords = TreeKind.directory.maxLeafRecords
  static let maxDirInteriorRecords = TreeKind.directory.maxInteriorRecords
  static let maxExtentLeafRecords = TreeKind.extents.maxLeafRecords

  func hash(_ name: [UInt8]) -> UInt32 { nameHash(name, seed: superblock.hashSeed) }

  /// Inline dentries of a directory slot (8.1), in stored order.
  func inlineEntries(_ rec: InodeRecord) throws -> [DirectoryEntry] {
    let area = try rec.inlineBytes()
    var out: [DirectoryEntry] = []
    var p = 0
    var n = 0
    // Nothing stores the count: entries follow each other to inline_len.
    while p < area.count {
      guard p + InlineDirent.size <= area.count else {
        throw RoseFSError.corrupt(
          "ino \(rec.ino): inline directory entry \(n) runs past inline_len \(area.count)")
      }
      let d = InlineDirent.decode(ByteReader(area), p)
      let len = Int(d.nameLength)
      let nameAt = p + InlineDirent.size
      guard len >= 1, nameAt + len <= area.count else {
        throw RoseFSError.corrupt(
          "ino \(rec.ino): inline directory entry \(n) has bad name length \(len)")
      }
      let name = Array(area[nameAt..<nameAt + len])
      out.append(
        DirectoryEntry(
          name: name, ino: d.ino, type: d.type, key: UInt64(hash(name)) << 32 | UInt64(d.seq)))
      p = nameAt + len
      n += 1
    }
    return out
  }

  /// Records of a directory leaf (8.2).
  static func dirLeafEntries(_ b: [UInt8], addr: UInt32, ino: UInt32) throws -> [DirectoryEntry] {
    let r = ByteReader(b)
    let count = Int(BlockHeader.decode(r).count)
    guard count >= 1, count <= maxDirLeafRecords else {
      throw RoseFSError.corrupt("ino \(ino): directory leaf block \(addr) has count \(count)")
    }
    let recEnd = DirLeafRecord.at(count)
    var out: [DirectoryEntry] = []
    out.reserveCapacity(count)
    for i in 0..<count {
      let d = DirLeafRecord.decode(r, DirLeafRecord.at(i))
      let off = Int(d.nameOffset)
      let len = Int(d.nameLength)
      guard len >= 1, off >= recEnd, off + len <= RoseLayout.blockSize else {
        throw RoseFSError.corrupt(
          "ino \(ino): directory leaf block \(addr) record \(i): name at \(off) length \(len) is outside the name area"
        )
      }
      out.append(
        DirectoryEntry(name: Array(b[off..<off + len]), ino: d.ino, type: d.type, key: d.key))
    }
    return out
  }

  /// Walks a B+ tree (directory or extent) depth first in key order (`TreeWalk`): `leaf` gets each
  /// leaf and returns its smallest key; `node` gets every node (nid, address, level, bytes) once.
  /// Cycles, shared nodes, wrong levels, unordered keys and overlong walks throw.
  func walkTree(
    root: UInt32, depth: Int, head h: Int, kind: TreeKind, ino: UInt32,
    node: ((UInt32, UInt32, Int, [UInt8]) throws -> Void)? = nil,
    leaf: ([UInt8], UInt32) throws -> UInt64?
  ) throws {
    let walk = TreeWalk(
      kind: kind,
      load: { nid in try self.readNode(nid, head: h, magic: kind.magic, ino: ino) },
      problem: { throw RoseFSError.corrupt("ino \(ino): \($0)") })
    try walk.walk(root: root, depth: depth, node: node) { addr, b in try leaf(b, addr) }
  }

  /// Every entry of a directory, in key order (the readdir order).
  public func entries(ofDirectory ino: UInt32, head h: Int) throws -> [DirectoryEntry] {
    try entries(of: try readInodeRecord(ino, head: h), head: h)
  }

  public func entries(of rec: InodeRecord, head h: Int) throws -> [DirectoryEntry] {
    guard rec.kind == .directory else {
      throw RoseFSError.corrupt("ino \(rec.ino) is not a directory")
    }
    if rec.has(InodeFlag.inlineDentry) { return try inlineEntries(rec) }
    guard rec.has(InodeFlag.dirTree) else {
      throw RoseFSError.corrupt("ino \(rec.ino): directory has neither INLINE_DENTRY nor DIRTREE")
    }
    var out: [DirectoryEntry] = []
    try walkTree(
      root: rec.treeRoot, depth: Int(rec.treeDepth), head: h, kind: .directory, ino: rec.ino
    ) { b, addr in
      let leaf = try Self.dirLeafEntries(b, addr: addr, ino: rec.ino)
      out += leaf
      return leaf.first?.key
    }
    return out
  }

  /// Looks a name up in a directory: linear in an inline directory, by hash through the tree (8.2).
  public func lookup(name: [UInt8], inDirectory rec: InodeRecord, head h: Int) throws
    -> DirectoryEntry?
  {
    if rec.has(InodeFlag.inlineDentry) { return try inlineEntries(rec).first { $0.name == name } }
    guard rec.kind == .directory, rec.has(InodeFlag.dirTree) else {
      throw RoseFSError.corrupt("ino \(rec.ino) is not a directory")
    }
    guard Int(rec.treeDepth) <= Self.maxTreeDepth else {
      throw RoseFSError.corrupt(
        "ino \(rec.ino): tree depth \(rec.treeDepth) exceeds \(Self.maxTreeDepth)")
    }
    let hv = hash(name)
    let target = UInt64(hv) << 32
    enum Step {
      case found(DirectoryEntry)
      case stop
      case more
    }
    var visited = 0
    func search(_ nid: UInt32, _ level: Int) throws -> Step {
      visited += 1
      guard visited < 1 << 20 else {
        throw RoseFSError.corrupt("ino \(rec.ino): directory tree walk does not end")
      }
      let (addr, b) = try readNode(nid, head: h, magic: Magic.dirNode, ino: rec.ino)
      let r = ByteReader(b)
      let header = BlockHeader.decode(r)
      guard Int(header.level) == level else {
        throw RoseFSError.corrupt(
          "ino \(rec.ino): tree node nid \(nid) block \(addr) has level \(header.level), expected \(level)"
        )
      }
      if level == 0 {
        for e in try Self.dirLeafEntries(b, addr: addr, ino: rec.ino) {
          if e.key >> 32 > UInt64(hv) { return .stop }
          if e.key >> 32 == UInt64(hv) && e.name == name { return .found(e) }
        }
        return .more
      }
      let count = Int(header.count)
      guard count >= 1, count <= Self.maxDirInteriorRecords else {
        throw RoseFSError.corrupt(
          "ino \(rec.ino): interior node nid \(nid) block \(addr) has count \(count)")
      }
      // Binary search: the last child whose key <= target (or the first child).
      var lo = 0
      var hi = count - 1
      while lo < hi {
        let mid = (lo + hi + 1) / 2
        if TreeKind.directory.interiorKey(r, mid) <= target { lo = mid } else { hi = mid - 1 }
      }
      var i = lo
      while i < count {
        if i > lo && TreeKind.directory.interiorKey(r, i) >> 32 > UInt64(hv) { return .stop }
        switch try search(TreeKind.directory.interiorChild(r, i), level - 1) {
        case .found(let e): return .found(e)
        case .stop: return .stop
        case .more: i += 1
        }
      }
      return .more
    }
    if case .found(let e) = try search(rec.treeRoot, Int(rec.treeDepth)) { return e }
    return nil
  }

  /// Resolves a path ("/a/b", components separated by "/") from the head's root, without following
  /// symlinks. Returns the inode number.
  public func lookup(_ path: [UInt8], head h: Int) throws -> UInt32 {
    var ino = try head(h).rootIno
    let parts = path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true)
    for (i, part) in parts.enumerated() {
      let rec = try readInodeRecord(ino, head: h)
      guard rec.kind == .directory else {
        throw RoseFSError.notFound(
          "\(Name.printable(path)): \(Name.printable(Array(parts[..<i].joined(separator: [UInt8(ascii: "/")])))) is not a directory"
        )
      }
      guard let e = try lookup(name: Array(part), inDirectory: rec, head: h) else {
        throw RoseFSError.notFound("\(Name.printable(path)): no such file or directory")
      }
      ino = e.ino
    }
    return ino
  }

  public func lookup(_ path: String, head h: Int) throws -> UInt32 {
    try lookup(Array(path.utf8), head: h)
  }

  // MARK: File content

  static func extentRecords(_ bytes: [UInt8], at base: Int, count: Int) -> [Extent] {
    ExtentRecord.decode(bytes, at: base, count: count)
  }

  /// The extent records of a file (inline or through its extent tree), in stored order.
  func extents(
    of rec: InodeRecord, head h: Int, node: ((UInt32, UInt32, Int, [UInt8]) throws -> Void)? = nil
  )
    throws -> [Extent]
  {
    if rec.has(InodeFlag.extents) {
      let area = try rec.inlineBytes()
      guard area.count % ExtentRecord.size == 0 else {
        throw RoseFSError.corrupt(
          "ino \(rec.ino): inline_len \(area.count) is not a multiple of \(ExtentRecord.size)")
      }
      return Self.extentRecords(area, at: 0, count: rec.inlineExtentCount)
    }
    guard rec.has(InodeFlag.extentTree) else { return [] }
    let bs = UInt64(RoseLayout.blockSize)
    let blockLimit = min(rec.size, RoseLayout.maxFileSize) / bs + 1
    var out: [Extent] = []
    try walkTree(
      root: rec.treeRoot, depth: Int(rec.treeDepth), head: h, kind: .extents, ino: rec.ino,
      node: node
    ) { b, addr in
      let count = Int(BlockHeader.decode(b).count)
      guard count >= 1, count <= Self.maxExtentLeafRecords else {
        throw RoseFSError.corrupt("ino \(rec.ino): extent leaf block \(addr) has count \(count)")
      }
      // Every extent covers at least one block of the file: more extents than blocks is damage
      // (and bounds the memory a damaged tree can take).
      guard UInt64(out.count + count) <= blockLimit else {
        throw RoseFSError.corrupt(
          "ino \(rec.ino): extent tree holds more extents than the \(blockLimit) blocks of its size"
        )
      }
      let leaf = ExtentRecord.decode(b, at: RoseLayout.headerSize, count: count)
      out += leaf
      return leaf.first.map { UInt64($0.logical) }
    }
    return out
  }

  /// The file content model of a regular file or symlink: inline bytes, or extents and a tail.
  public func content(of rec: InodeRecord, head h: Int) throws -> FileContent {
    if rec.has(InodeFlag.inlineData) {
      let bytes = try rec.inlineBytes()
      guard UInt64(bytes.count) == rec.size else {
        throw RoseFSError.corrupt(
          "ino \(rec.ino): INLINE_DATA with inline_len \(bytes.count) but size \(rec.size)")
      }
      return FileContent(size: rec.size, inline: bytes)
    }
    guard rec.size <= RoseLayout.maxFileSize else {
      throw RoseFSError.corrupt("ino \(rec.ino): size \(rec.size) exceeds 2^40")
    }
    var c = FileContent(size: rec.size, extents: try extents(of: rec, head: h))
    if rec.has(InodeFlag.tail) {
      c.tail = TailRef(block: rec.tailBlk, offset: rec.tailOff, length: rec.tailLen)
    }
    return c
  }

  /// Extended attributes of an inode (inline or in its xattr node).
  public func xattrs(of rec: InodeRecord, head h: Int) throws -> [Xattr] {
    if rec.has(InodeFlag.xattrNode) {
      let (addr, b) = try readNode(rec.xattrNid, head: h, magic: Magic.xattrNode, ino: rec.ino)
      let count = Int(BlockHeader.decode(b).count)
      return try Self.parseXattrs(
        Array(b[RoseLayout.headerSize...]), count: count,
        what: "ino \(rec.ino) xattr node block \(addr)"
      ).xattrs
    }
    let n = Int(rec.xattrLen)
    let capacity = rec.inlineCapacity
    guard n <= capacity, Int(rec.inlineLen) + n <= capacity else {
      throw RoseFSError.corrupt("ino \(rec.ino): xattr_len \(n) does not fit the inline area")
    }
    if n == 0 { return [] }
    let area = Array(rec.inlineArea[(capacity - n)...])
    let p = try Self.parseXattrs(area, count: nil, what: "ino \(rec.ino) inline xattrs")
    guard p.used == n else {
      throw RoseFSError.corrupt(
        "ino \(rec.ino): inline xattrs take \(p.used) bytes, xattr_len is \(n)")
    }
    return p.xattrs
  }

  /// Parses xattr records: `count` of them, or (count nil) until the bytes are used up.
  static func parseXattrs(_ a: [UInt8], count: Int?, what: String) throws -> (
    xattrs: [Xattr], used: Int
  ) {
    var out: [Xattr] = []
    var p = 0
    while count.map({ out.count < $0 }) ?? (p < a.count) {
      guard p + XattrRecord.headerSize <= a.count else {
        throw RoseFSError.corrupt("\(what): xattr record \(out.count) is truncated")
      }
      let r = ByteReader(a, base: p)
      let nl = Int(r.u8(XattrRecord.nameLength))
      let vl = Int(r.u16(XattrRecord.valueLength))
      let nameAt = p + XattrRecord.name
      guard nl >= 1, r.u8(XattrRecord.zero) == 0, nameAt + nl + vl <= a.count else {
        throw RoseFSError.corrupt(
          "\(what): xattr record \(out.count) is malformed (name \(nl), value \(vl) bytes)")
      }
      out.append(
        Xattr(name: Array(a[nameAt..<nameAt + nl]), value: Array(a[nameAt + nl..<nameAt + nl + vl]))
      )
      p = nameAt + nl + vl
    }
    return (out, p)
  }

  /// Reads a whole file as chunks in offset order (holes are not reported).
  public func readFile(
    ino: UInt32, head h: Int, _ body: (UnsafeRawBufferPointer, UInt64) throws -> Void
  ) throws {
    let rec = try readInodeRecord(ino, head: h)
    guard rec.kind == .regular || rec.kind == .symlink else {
      throw RoseFSError.corrupt("ino \(ino) is not a regular file or symlink")
    }
    try readContent(try content(of: rec, head: h), body)
  }

  /// The whole content in memory (small files and symlink targets only: tests, `readlink`).
  public func readAll(ino: UInt32, head h: Int, limit: UInt64 = 1 << 26) throws -> [UInt8] {
    let rec = try readInodeRecord(ino, head: h)
    guard rec.size <= limit else {
      throw RoseFSError.invalidOption("ino \(ino) is larger than \(limit) bytes")
    }
    var out = [UInt8](repeating: 0, count: Int(rec.size))
    try readFile(ino: ino, head: h) { buf, off in
      guard off <= UInt64(out.count), buf.count <= out.count - Int(off) else {
        throw RoseFSError.corrupt("ino \(ino): content past its size \(rec.size)")
      }
      out.replaceSubrange(Int(off)..<Int(off) + buf.count, with: buf)
    }
    return out
  }

  /// Streams a file's bytes: contiguous extents are coalesced and read with pread in 1 MiB chunks.
  public func readContent(
    _ content: FileContent, _ body: (UnsafeRawBufferPointer, UInt64) throws -> Void
  ) throws {
    if let inline = content.inline {
      if !inline.isEmpty { try inline.withUnsafeBytes { try body($0, 0) } }
      return
    }
    let bs = UInt64(RoseLayout.blockSize)
    let size = content.size
    let tailLen = UInt64(content.tail?.length ?? 0)
    if let t = content.tail {
      guard UInt64(t.length) == size % bs, t.length > 0 else {
        throw RoseFSError.corrupt("tail of \(t.length) bytes does not match size \(size)")
      }
    }
    let bodyEnd = size - tailLen
    // Coalesce extents that are contiguous both logically and physically.
    var runs: [(logical: UInt64, physical: UInt64, count: UInt64)] = []
    var lastEnd: UInt64 = 0
    for e in content.extents {
      let l = UInt64(e.logical)
      let p = UInt64(e.physical)
      let n = UInt64(e.count)
      guard n > 0, l >= lastEnd, l * bs < bodyEnd, (l + n - 1) * bs < bodyEnd,
        p >= UInt64(superblock.mainBlkaddr), p + n <= mainEnd
      else {
        throw RoseFSError.corrupt(
          "extent (lblk \(e.logical), pblk \(e.physical), len \(e.count)) is unsorted, overlapping, past the file size \(size) or outside the main area"
        )
      }
      lastEnd = l + n
      if let last = runs.last, last.logical + last.count == l, last.physical + last.count == p {
        runs[runs.count - 1].count += n
      } else {
        runs.append((l, p, n))
      }
    }
    if !runs.isEmpty {
      let chunkBlocks: UInt64 = 256
      let buffer = UnsafeMutableRawBufferPointer.allocate(
        byteCount: Int(chunkBlocks) * RoseLayout.blockSize, alignment: 4096)
      defer { buffer.deallocate() }
      for run in runs {
        var done: UInt64 = 0
        while done < run.count {
          let n = min(chunkBlocks, run.count - done)
          let offset = (run.logical + done) * bs
          let bytes = Int(min(n * bs, bodyEnd - offset))
          let view = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes])
          try image.read(into: view, atByte: (run.physical + done) * bs)
          try body(UnsafeRawBufferPointer(view), offset)
          done += n
        }
      }
    }
    if let t = content.tail {
      let b = try readTailBlock(t.block)
      let start = Int(t.offset)
      guard start + Int(t.length) <= RoseLayout.blockSize else {
        throw RoseFSError.corrupt(
          "tail block \(t.block): fragment at \(t.offset) length \(t.length) is out of range")
      }
      try b.withUnsafeBytes {
        try body(UnsafeRawBufferPointer(rebasing: $0[start..<start + Int(t.length)]), bodyEnd)
      }
    }
  }

  /// A tail block (FORMAT.md 9.3): 4096 bytes of fragments with no header, checked against the
  /// `crc` of its SSA entry (kind TAIL) when the volume has DATA_CSUM.
  func readTailBlock(_ addr: UInt32) throws -> [UInt8] {
    if let b = tailCache[addr] { return b }
    guard inMain(addr) else {
      throw RoseFSError.corrupt("tail block address \(addr) is outside the main area")
    }
    let b = try image.readBlock(addr)
    if superblock.featureRoCompat & Feature.roCompatDataChecksum != 0 {
      guard let e = try ssaEntry(ofBlock: addr), e.kind == SSAKind.tail else {
        throw RoseFSError.corrupt(
          "tail block \(addr): its segment summary entry is not of kind TAIL")
      }
      let computed = checksum.checksum(b)
      guard computed == e.crc else {
        throw RoseFSError.corrupt(
          "tail block \(addr) fails its checksum (computed \(hex32(computed)), the segment summary records \(hex32(e.crc)))"
        )
      }
    }
    if tailCache.count >= 64 { tailCache.removeAll(keepingCapacity: true) }
    tailCache[addr] = b
    return b
  }

  /// The SSA entry of main-area block `addr` (nil when its SSA content block is a hole).
  public func ssaEntry(ofBlock addr: UInt32) throws -> SSAEntry? {
    guard inMain(addr) else {
      throw RoseFSError.corrupt("block \(addr) is outside the main area")
    }
    let at = SSAEntry.location(ofMainBlock: UInt64(addr - superblock.mainBlkaddr))
    let a = try metaContentAddress(
      checkpoint.ssa, index: UInt32(at.block), type: MetaType.ssa, what: "SSA")
    if a == 0 { return nil }
    let b = try readHeaderBlock(a, magic: Magic.ssa, what: "SSA content block \(at.block)")
    return SSAEntry.decode(ByteReader(b), at.offset)
  }

  // MARK: Whole tree

  /// The whole subvolume of head `h` as the in-memory tree model: hard links are the same `Inode`
  /// object, contents carry their real extents and tail addresses.
  public func loadTree(head h: Int) throws -> Inode {
    let rootIno = try head(h).rootIno
    var byIno: [UInt32: Inode] = [:]
    var dirsSeen = Set<UInt32>()
    func make(_ ino: UInt32) throws -> (Inode, InodeRecord?) {
      if let existing = byIno[ino] { return (existing, nil) }
      let rec = try readInodeRecord(ino, head: h)
      guard let kind = rec.kind else {
        throw RoseFSError.corrupt("ino \(ino): mode \(rec.mode) has no valid type")
      }
      let node = Inode(
        kind: kind, permissions: rec.permissions, uid: rec.uid, gid: rec.gid, mtime: rec.mtime,
        atime: rec.atime,
        ctime: rec.ctime, xattrs: try xattrs(of: rec, head: h))
      node.ino = ino
      if kind == .characterDevice || kind == .blockDevice {
        node.rdevMajor = rec.rdevMajor
        node.rdevMinor = rec.rdevMinor
      }
      if kind == .regular || kind == .symlink { node.content = try content(of: rec, head: h) }
      byIno[ino] = node
      return (node, rec)
    }
    let (root, rootRec) = try make(rootIno)
    guard root.kind == .directory, let rootRec else {
      throw RoseFSError.corrupt("head \(h): root ino \(rootIno) is not a directory")
    }
    var stack: [(Inode, InodeRecord)] = [(root, rootRec)]
    dirsSeen.insert(rootIno)
    while let (dir, rec) = stack.popLast() {
      for e in try entries(of: rec, head: h) {
        let (child, childRec) = try make(e.ino)
        guard child.kind.rawValue == e.type else {
          throw RoseFSError.corrupt(
            "ino \(dir.ino): entry \(Name.printable(e.name)) has type \(e.type) but ino \(e.ino) is \(child.kind)"
          )
        }
        let name = Name(e.name)
        guard dir.children[name] == nil else {
          throw RoseFSError.corrupt("ino \(dir.ino): duplicate entry \(name)")
        }
        dir.children[name] = child
        if child.kind == .directory {
          guard dirsSeen.insert(e.ino).inserted, let childRec else {
            throw RoseFSError.corrupt(
              "ino \(e.ino): directory is reachable twice (entry \(name) in ino \(dir.ino))")
          }
          stack.append((child, childRec))
        }
      }
    }
    return root
  }
}
