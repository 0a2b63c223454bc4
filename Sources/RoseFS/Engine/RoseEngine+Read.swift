#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// Loading inodes from the head's NAT and the read half of VolumeOperations.

extension RoseEngine {
  func readPage(_ addr: UInt32) throws(EngineError) -> [UInt8] {
    if let p = pageCache[addr] { return p }
    let p = try device.readBlock(addr)
    if pageCache.count > 4096 { pageCache.removeAll(keepingCapacity: true) }
    pageCache[addr] = p
    return p
  }

  /// Writes a block through the device and forgets any cached copy of the address.
  func writeDeviceBlock(_ addr: UInt32, _ bytes: [UInt8]) throws(EngineError) {
    pageCache[addr] = nil
    try device.writeBlock(addr, bytes)
  }

  /// The inode `ino` of the open head, loaded on first use.
  func inode(_ ino: UInt32) throws(EngineError) -> EngineInode {
    if let n = inodes[ino] {
      if n.deleted { throw EngineError.noEntry("ino \(ino) does not exist") }
      return n
    }
    guard let n = try loadInode(ino, head: head) else {
      throw EngineError.noEntry("ino \(ino) does not exist")
    }
    inodes[ino] = n
    return n
  }

  /// Reads an inode of head `h` from disk; nil when its slot is unused.
  func loadInode(_ ino: UInt32, head h: Int) throws(EngineError) -> EngineInode? {
    let perPage = UInt32(RoseLayout.inodesPerPage)
    guard ino >= perPage else { return nil }
    let addr = natLookup(h, ino / perPage)
    guard addr != 0 else { return nil }
    let page = try readPage(addr)
    let base = Int(ino % perPage) * RoseLayout.inodeSize
    if page[base..<base + RoseLayout.inodeSize].allSatisfy({ $0 == 0 }) { return nil }
    let rec: InodeRecord
    do {
      rec = try InodeRecord.decode(page: page, ino: ino, checksum: checksum, pageAddress: addr)
    } catch {
      throw EngineError.corrupt("\(error)")
    }
    guard let kind = rec.kind else {
      throw EngineError.corrupt("ino \(ino): mode \(String(rec.mode, radix: 8)) has no file type")
    }
    let n = EngineInode(rec: rec, kind: kind)
    n.diskSlots = Int(rec.nslots)
    let what = "ino \(ino)"
    switch kind {
    case .regular, .symlink:
      if rec.has(InodeFlag.inlineData) {
        n.inlineData = true
        n.inline = Array(rec.inlineArea[0..<min(Int(rec.inlineLen), rec.inlineCapacity)])
        if UInt64(n.inline.count) != rec.size {
          throw EngineError.corrupt("\(what): inline_len \(rec.inlineLen) != size \(rec.size)")
        }
      } else {
        var extents: [Extent] = []
        if rec.has(InodeFlag.extents) {
          guard Int(rec.inlineLen) <= rec.inlineCapacity,
            Int(rec.inlineLen) % ExtentRecord.size == 0
          else {
            throw EngineError.corrupt("\(what): inline_len \(rec.inlineLen) is not whole extents")
          }
          extents = ImageReader.extentRecords(rec.inlineArea, at: 0, count: rec.inlineExtentCount)
        } else if rec.has(InodeFlag.extentTree) {
          n.nodeNids = try walkTree(
            root: rec.treeRoot, depth: Int(rec.treeDepth), magic: Magic.extentNode, ino: ino,
            head: h
          ) { b in
            extents += ImageReader.extentRecords(
              b, at: RoseLayout.headerSize, count: Int(ByteReader(b).u16(0x18)))
          }
        }
        let full = UInt32(rec.size / UInt64(RoseLayout.blockSize))
        let partialLen = rec.size % UInt64(RoseLayout.blockSize)
        for e in extents {
          for j in 0..<e.count {
            let l = e.logical &+ j
            if l < full {
              n.blocks[l] = e.physical &+ j
            } else if l == full && partialLen != 0 && !rec.has(InodeFlag.tail) {
              n.partial = .block(e.physical &+ j)
            } else {
              throw EngineError.corrupt("\(what): extent block \(l) is past the size \(rec.size)")
            }
          }
        }
        if rec.has(InodeFlag.tail) {
          n.partial = .tail(block: rec.tailBlk, offset: rec.tailOff, length: rec.tailLen)
        } else if partialLen != 0, n.partial == .none {
          n.partial = .hole
        }
      }
    case .directory:
      if rec.has(InodeFlag.inlineDentry) {
        let area = Array(rec.inlineArea[0..<min(Int(rec.inlineLen), rec.inlineCapacity)])
        var p = 0
        while p < area.count {
          guard p + 8 <= area.count else { throw EngineError.corrupt("\(what): inline dentries") }
          let r = ByteReader(area, base: p)
          let len = Int(r.u8(5))
          guard len >= 1, p + 8 + len <= area.count else {
            throw EngineError.corrupt("\(what): inline dentry name length \(len)")
          }
          n.entries[Array(area[p + 8..<p + 8 + len])] = (r.u32(0), r.u8(4))
          p += 8 + len
        }
      } else if rec.has(InodeFlag.dirTree) {
        var failure: EngineError?
        n.nodeNids = try walkTree(
          root: rec.treeRoot, depth: Int(rec.treeDepth), magic: Magic.dirNode, ino: ino, head: h
        ) { b in
          do {
            for e in try ImageReader.dirLeafEntries(b, addr: 0, ino: ino) {
              n.entries[e.name] = (e.ino, e.type)
            }
          } catch {
            failure = EngineError.corrupt("\(error)")
          }
        }
        if let failure { throw failure }
      }
    default:
      break
    }
    for name in n.entries.keys { n.entryBytes += 16 + name.count }
    if rec.has(InodeFlag.xattrNode) {
      let b = try verifiedBlock(
        natLookup(h, rec.xattrNid), magic: Magic.xattrNode, what: "\(what) xattr node")
      let count = Int(ByteReader(b).u16(0x18))
      do {
        n.xattrs =
          try ImageReader.parseXattrs(Array(b[RoseLayout.headerSize...]), count: count, what: what)
          .xattrs
      } catch {
        throw EngineError.corrupt("\(error)")
      }
      n.nodeNids.append(rec.xattrNid)
    } else if rec.xattrLen > 0 {
      let len = min(Int(rec.xattrLen), rec.inlineCapacity)
      let area = Array(rec.inlineArea[(rec.inlineCapacity - len)...])
      do {
        n.xattrs = try ImageReader.parseXattrs(area, count: nil, what: what).xattrs
      } catch {
        throw EngineError.corrupt("\(error)")
      }
    }
    return n
  }

  /// Walks a tree (directory or extent) from its root nid; returns every node's nid.
  func walkTree(
    root: UInt32, depth: Int, magic: UInt32, ino: UInt32, head h: Int,
    leaf: ([UInt8]) -> Void
  ) throws(EngineError) -> [UInt32] {
    var nids: [UInt32] = []
    let width = magic == Magic.dirNode ? 12 : 8
    func visit(_ nid: UInt32, _ level: Int) throws(EngineError) {
      guard nids.count < 1 << 20, level >= 0 else {
        throw EngineError.corrupt("ino \(ino): tree too deep")
      }
      let addr = natLookup(h, nid)
      let b = try verifiedBlock(addr, magic: magic, what: "ino \(ino) tree node nid \(nid)")
      let r = ByteReader(b)
      guard Int(r.u8(0x1A)) == level, r.u32(0x14) == nid else {
        throw EngineError.corrupt("ino \(ino): tree node nid \(nid) has a wrong level or owner")
      }
      nids.append(nid)
      if level == 0 {
        leaf(b)
        return
      }
      for i in 0..<Int(r.u16(0x18)) {
        try visit(r.u32(RoseLayout.headerSize + width * i + width - 4), level - 1)
      }
    }
    guard depth <= 8 else { throw EngineError.corrupt("ino \(ino): tree depth \(depth)") }
    try visit(root, depth)
    return nids
  }

  func attributes(_ n: EngineInode) -> NodeAttributes {
    let r = n.rec
    return NodeAttributes(
      ino: r.ino, mode: r.mode, nlink: r.nlink, uid: r.uid, gid: r.gid, size: displaySize(n),
      blocks: blockCount(n) * 8, atime: r.atime, mtime: r.mtime, ctime: r.ctime,
      rdevMajor: r.rdevMajor, rdevMinor: r.rdevMinor)
  }

  /// The size stat shows: for directories the stored size (FORMAT.md 8).
  func displaySize(_ n: EngineInode) -> UInt64 {
    if n.kind == .directory {
      // As stored after the next checkpoint: inline bytes, or 4096 per leaf.
      let inline = n.entryBytes - 8 * n.entries.count
      if canHoldInline(n, bytes: inline) { return UInt64(inline) }
      if !n.dirty { return n.rec.size }
      return UInt64(leafSet(n).leaves.count * RoseLayout.blockSize)
    }
    return n.rec.size
  }

  /// Data blocks the file owns (its partial block when that is a full block).
  func blockCount(_ n: EngineInode) -> UInt64 {
    guard n.kind == .regular || n.kind == .symlink, !n.isInlineForm else { return 0 }
    var c = UInt64(n.blocks.count)
    if case .block = n.partial { c += 1 }
    if case .memory(let b) = n.partial, b.count > Int(sb.tailMax) { c += 1 }
    return c
  }

  /// A directory's entries in key order, in the leaves the next checkpoint writes.
  func leafSet(_ n: EngineInode) -> DirectoryLeafSet {
    if let s = n.leafCache { return s }
    let s = DirectoryLeafSet(
      sorted: sortedDirents(
        n.entries.map { (Name($0.key), $0.value.ino, $0.value.type) }, seed: sb.hashSeed))
    n.leafCache = s
    return s
  }

  func sortedEntries(_ n: EngineInode) -> [EncodedDirent] { leafSet(n).sorted }

  /// The bytes of the partial last block.
  func partialBytes(_ n: EngineInode) throws(EngineError) -> [UInt8] {
    let len = Int(n.rec.size % UInt64(RoseLayout.blockSize))
    switch n.partial {
    case .none: return []
    case .hole: return [UInt8](repeating: 0, count: len)
    case .memory(let b): return b
    case .block(let a): return Array(try device.readBlock(a)[0..<len])
    case .tail(let blk, let off, let flen):
      let b = try verifiedTailBlock(blk, what: "ino \(n.rec.ino) tail block")
      guard Int(off) + Int(flen) <= RoseLayout.blockSize, Int(flen) == len else {
        throw EngineError.corrupt("ino \(n.rec.ino): tail fragment out of range")
      }
      return Array(b[Int(off)..<Int(off) + Int(flen)])
    }
  }

  /// Logical block `lblk` (4096 bytes, zeros for holes and past the end).
  func readLogicalBlock(_ n: EngineInode, _ lblk: UInt32) throws(EngineError) -> [UInt8] {
    let full = UInt32(n.rec.size / UInt64(RoseLayout.blockSize))
    if lblk < full, let a = n.blocks[lblk] { return try device.readBlock(a) }
    if lblk == full {
      var p = try partialBytes(n)
      p += [UInt8](repeating: 0, count: RoseLayout.blockSize - p.count)
      return p
    }
    return [UInt8](repeating: 0, count: RoseLayout.blockSize)
  }

  func readData(_ n: EngineInode, offset: UInt64, count: Int) throws(EngineError) -> [UInt8] {
    let size = n.rec.size
    guard offset < size, count > 0 else { return [] }
    let end = min(size, offset + UInt64(count))
    if n.isInlineForm { return Array(n.inline[Int(offset)..<Int(end)]) }
    var out: [UInt8] = []
    out.reserveCapacity(Int(end - offset))
    var pos = offset
    let bs = UInt64(RoseLayout.blockSize)
    while pos < end {
      let lblk = UInt32(pos / bs)
      let inBlock = Int(pos % bs)
      let n2 = Int(min(bs - UInt64(inBlock), end - pos))
      let b = try readLogicalBlock(n, lblk)
      out += b[inBlock..<inBlock + n2]
      pos += UInt64(n2)
    }
    return out
  }

  // MARK: - VolumeOperations: reading

  public func getattr(_ ino: UInt32) throws(EngineError) -> NodeAttributes {
    try withLock { () throws(EngineError) in attributes(try inode(ino)) }
  }

  func directory(_ ino: UInt32) throws(EngineError) -> EngineInode {
    let d = try inode(ino)
    guard d.kind == .directory else { throw EngineError(ENOTDIR, "ino \(ino) is not a directory") }
    return d
  }

  public func lookup(parent: UInt32, name: [UInt8]) throws(EngineError) -> NodeAttributes {
    try withLock { () throws(EngineError) in
      let d = try directory(parent)
      guard let e = d.entries[name] else {
        throw EngineError.noEntry("\(Name.printable(name)) is not in directory \(parent)")
      }
      return attributes(try inode(e.ino))
    }
  }

  public func readdir(_ ino: UInt32, after cookie: UInt64, limit: Int) throws(EngineError)
    -> [DirectoryListing]
  {
    try withLock { () throws(EngineError) in
      let d = try directory(ino)
      return leafSet(d).entries(after: cookie, limit: limit).map { e in
        DirectoryListing(
          name: e.name, ino: e.ino, kind: FileKind(rawValue: e.type) ?? .regular, cookie: e.key)
      }
    }
  }

  public func readlink(_ ino: UInt32) throws(EngineError) -> [UInt8] {
    try withLock { () throws(EngineError) in
      let n = try inode(ino)
      guard n.kind == .symlink else { throw EngineError(EINVAL, "ino \(ino) is not a symlink") }
      return try readData(n, offset: 0, count: Int(n.rec.size))
    }
  }

  public func read(_ ino: UInt32, offset: UInt64, count: Int) throws(EngineError) -> [UInt8] {
    try withLock { () throws(EngineError) in
      let n = try inode(ino)
      if n.kind == .directory { throw EngineError(EISDIR, "ino \(ino) is a directory") }
      guard n.kind == .regular else { throw EngineError(EINVAL, "ino \(ino) is not a file") }
      return try readData(n, offset: offset, count: count)
    }
  }

  public func getxattr(_ ino: UInt32, name: [UInt8]) throws(EngineError) -> [UInt8] {
    try withLock { () throws(EngineError) in
      let n = try inode(ino)
      guard let x = n.xattrs.first(where: { $0.name == name }) else {
        throw EngineError(ENODATA, "no xattr \(Name.printable(name))")
      }
      return x.value
    }
  }

  public func listxattr(_ ino: UInt32) throws(EngineError) -> [[UInt8]] {
    try withLock { () throws(EngineError) in try inode(ino).xattrs.map { $0.name } }
  }

  public func statfs() throws(EngineError) -> VolumeStatistics {
    try withLock { () throws(EngineError) in
      let free = UInt64(max(0, mainBlocks - busyTotal))
      let avail = UInt64(max(0, userSpaceLeft()))
      var used = 0
      for h in 0..<heads.count { used = max(used, inodeCount[h]) }
      let totalInodes = UInt64(mainBlocks) * 2
      return VolumeStatistics(
        blockSize: UInt32(RoseLayout.blockSize), totalBlocks: UInt64(mainBlocks),
        freeBlocks: free, availableBlocks: avail, totalInodes: totalInodes,
        freeInodes: totalInodes - UInt64(min(used, Int(totalInodes))))
    }
  }
}
