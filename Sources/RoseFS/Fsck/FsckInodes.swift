// FORMAT.md section 14, item 5: from each head's root, every reachable inode slot, link counts and
// parents, and the zero slots of every inode page.

extension FsckRun {
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
    // An inode covers slots `s ..< s + nslots`; extents never overlap.
    let perPage = UInt32(RoseLayout.inodesPerPage)
    var pageInodes: [UInt32: [UInt32]] = [:]
    for ino in reachedInodes[h] { pageInodes[ino / perPage, default: []].append(ino) }
    for (nid, inos) in pageInodes {
      guard let a = natMap[h][nid], let page = pageCache[a] else { continue }
      var coveredBy = [UInt32?](repeating: nil, count: RoseLayout.inodesPerPage)
      for ino in inos.sorted() {
        let s = Int(ino % perPage)
        let n = min(inodeSlots[h][ino] ?? RoseLayout.minInodeSlots, RoseLayout.inodesPerPage - s)
        for j in s..<s + n {
          if let other = coveredBy[j] {
            problem(
              "head \(h) inode page nid \(nid) (block \(a)): slot \(j) is in the extent of ino \(other) and of ino \(ino)"
            )
            break
          }
          coveredBy[j] = ino
        }
      }
      for s in 0..<RoseLayout.inodesPerPage where coveredBy[s] == nil {
        requireZero(
          page, s * RoseLayout.inodeSize..<(s + 1) * RoseLayout.inodeSize,
          "head \(h) inode page nid \(nid) (block \(a)) slot \(s) (ino \(nid * perPage + UInt32(s)) is not reachable)"
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
    let nid = ino / UInt32(RoseLayout.inodesPerPage)
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
      let rec = try InodeRecord.decode(page: page, ino: ino, checksum: ck, pageAddress: a)
      inodeSlots[h][ino] = Int(rec.nslots)
      return rec
    } catch {
      report(error, "head \(h) \(path)")
      return nil
    }
  }

  /// A tree or xattr node: header checks (magic, checksum, blkaddr, owner = nid, aux = ino, level).

  func checkInode(_ h: Int, _ s: InodeState, reader: ImageReader) {
    let rec = s.rec
    let w = "head \(h) \(s.path) (ino \(rec.ino))"
    guard let kind = rec.kind else {
      problem("\(w): mode \(String(rec.mode, radix: 8)) has no valid file type")
      return
    }
    if rec.flags & ~InodeFlag.known != 0 {
      problem("\(w): unknown flags \(String(rec.flags, radix: 16))")
    }
    checkFeatures(rec, w)
    let contentFlags = rec.flags & InodeFlag.contentForms
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
      if rec.size != 0 || rec.inlineLen != 0 {
        problem("\(w): a \(kind) with content fields set")
      }
    }
    for t in [rec.atime, rec.mtime, rec.ctime] where t.nanoseconds > 999_999_999 {
      problem("\(w): nanoseconds \(t.nanoseconds) out of range")
    }
    if rec.has(InodeFlag.xattrNode) != (rec.xattrNid != 0) {
      problem("\(w): xattr_nid \(rec.xattrNid) disagrees with XATTR_NODE")
    }
    if rec.has(InodeFlag.xattrNode) && rec.xattrLen != 0 {
      problem("\(w): inline xattrs and an xattr node")
    }
    // Devices keep rdev_major and rdev_minor in tail_blk and tree_root.
    if !rec.has(InodeFlag.tail) && ((rec.tailBlk != 0 && !rec.isDevice) || rec.tailOff != 0) {
      problem("\(w): tail fields set without TAIL")
    }
    let isTree = rec.has(InodeFlag.dirTree) || rec.has(InodeFlag.extentTree)
    if !isTree && ((rec.treeRoot != 0 && !rec.isDevice) || rec.treeDepth != 0) {
      problem("\(w): tree_root set without a tree")
    }
    if isTree && rec.inlineLen != 0 { problem("\(w): inline_len \(rec.inlineLen) with a tree") }
    let used = Int(rec.inlineLen) + Int(rec.xattrLen)
    if used > rec.inlineCapacity {
      problem(
        "\(w): inline_len \(rec.inlineLen) + xattr_len \(rec.xattrLen) exceeds \(rec.inlineCapacity) (nslots \(rec.nslots))"
      )
    } else {
      requireZero(
        rec.inlineArea, Int(rec.inlineLen)..<rec.inlineCapacity - Int(rec.xattrLen),
        "\(w) unused i_u bytes")
    }
    if !isFile && rec.dataBlocks != 0 { problem("\(w): blocks \(rec.dataBlocks) on a \(kind)") }
    if isFile { checkFile(h, rec, w, reader: reader) }
    checkXattrs(h, rec, w)
  }

  /// Item 1, features in use: every storage form an inode uses needs its incompat bit, or a reader
  /// that checks the bits would take the image for one it can read. Each missing bit is reported once.
  func checkFeatures(_ rec: InodeRecord, _ w: String) {
    guard let sb else { return }
    let needs: [(flags: UInt16, bit: UInt32, name: String)] = [
      (InodeFlag.inlineData | InodeFlag.inlineDentry, Feature.incompatInline, "INLINE"),
      (InodeFlag.tail, Feature.incompatTailPack, "TAILPACK"),
      (InodeFlag.dirTree, Feature.incompatDirTree, "DIRTREE"),
      (InodeFlag.extentTree, Feature.incompatExtentTree, "EXTTREE"),
      (InodeFlag.xattrNode, Feature.incompatXattrNode, "XATTRNODE"),
    ]
    for n in needs where rec.flags & n.flags != 0 && sb.featureIncompat & n.bit == 0 {
      if missingFeatures.insert(n.bit).inserted {
        problem(
          "superblock: feature_incompat \(hex32(sb.featureIncompat)) lacks \(n.name) (\(hex32(n.bit))), which \(w) uses"
        )
      }
    }
  }
}
