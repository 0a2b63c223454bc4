#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// The changing half of VolumeOperations: namespace operations, file data, attributes, xattrs.
// Data blocks are written at once to blocks no checkpoint reaches; everything else waits for the next
// checkpoint (RoseEngine+Checkpoint.swift).

extension RoseEngine {
  func markDirty(_ n: EngineInode) {
    n.dirty = true
    dirtyInodes.insert(n.rec.ino)
  }

  /// Checkpoints when the state held in memory grows, so that the next checkpoint fits the reserve.
  /// Trees are not counted: a big directory changed one name at a time would otherwise checkpoint
  /// (and write its whole tree) at every operation once its tree alone passed half the reserve;
  /// `userSpaceLeft` still keeps room for them.
  func checkpointIfLarge() throws(EngineError) {
    if dirtyInodes.count > 1024 || metadataEstimate(countingTrees: false) > reserveBlocks / 2 {
      try checkpoint(umount: false)
    }
  }

  func validateName(_ name: [UInt8]) throws(EngineError) {
    if name.isEmpty || name.contains(0) || name.contains(UInt8(ascii: "/")) || name == [0x2E]
      || name == [0x2E, 0x2E]
    {
      throw EngineError(EINVAL, "invalid name \(Name.printable(name))")
    }
    if name.count > 255 { throw EngineError(ENAMETOOLONG, "name longer than 255 bytes") }
  }

  func newInode(kind: FileKind, mode: UInt16, uid: UInt32, gid: UInt32, parent: UInt32)
    -> EngineInode
  {
    let ino = allocateIno()
    var rec = InodeRecord.fresh(
      ino: ino, mode: kind.modeBits | (mode & 0o7777), uid: uid, gid: gid, time: now())
    rec.parent = parent
    rec.nlink = kind == .directory ? 2 : 1
    let n = EngineInode(rec: rec, kind: kind)
    n.inlineData = kind == .regular || kind == .symlink
    // A deleted inode at this number not yet zeroed on disk: the next checkpoint zeroes its slots.
    if let old = inodes[ino] { n.diskSlots = old.diskSlots }
    inodes[ino] = n
    markDirty(n)
    inodeCount[head] += 1
    dataChanged = true
    return n
  }

  func addEntry(_ d: EngineInode, _ name: [UInt8], _ n: EngineInode) {
    // Taken out first: changing `entries` drops the cache, and a unique copy is changed in place.
    var leaves = d.leafCache.take()
    if d.entries[name] == nil { d.entryBytes += 16 + name.count }
    d.entries[name] = (n.rec.ino, n.kind.rawValue)
    updateLeaves(
      &leaves, name, EncodedDirent(key: 0, ino: n.rec.ino, type: n.kind.rawValue, name: name))
    d.leafCache = leaves
    let t = now()
    d.rec.mtime = t
    d.rec.ctime = t
    markDirty(d)
  }

  /// `leaves` (a directory's entries in key order) changed in place: `name` set to `entry` (nil: removed),
  /// without sorting or packing again: a directory growing by one entry per operation must not cost
  /// a sort per operation. nil when another name has the same hash (its `seq` numbering would
  /// change): nil, and the leaves are built from scratch when next needed.
  func updateLeaves(_ leaves: inout DirectoryLeafSet?, _ name: [UInt8], _ entry: EncodedDirent?) {
    if leaves?.set(name, hash: nameHash(name, seed: sb.hashSeed), to: entry) == false {
      leaves = nil
    }
  }

  func removeEntry(_ d: EngineInode, _ name: [UInt8]) {
    var leaves = d.leafCache.take()
    if d.entries[name] != nil { d.entryBytes -= 16 + name.count }
    d.entries[name] = nil
    updateLeaves(&leaves, name, nil)
    d.leafCache = leaves
    let t = now()
    d.rec.mtime = t
    d.rec.ctime = t
    markDirty(d)
  }

  /// An entry for `x` moved from directory `from` to directory `to`: a subdirectory's `..` link
  /// moves with it, and the `parent` hint follows when it named the old directory.
  func moveParent(of x: EngineInode, from: EngineInode, to: EngineInode) {
    if x.kind == .directory {
      from.rec.nlink -= 1
      to.rec.nlink += 1
      x.rec.parent = to.rec.ino
    } else if x.rec.parent == from.rec.ino {
      x.rec.parent = to.rec.ino
    }
  }

  /// Frees everything an inode holds; its slot is zeroed by the next checkpoint.
  func destroy(_ n: EngineInode) throws(EngineError) {
    try releaseAllData(n)
    for nid in n.nodeNids { releaseNid(nid) }
    n.nodeNids = []
    n.entries = [:]
    n.deleted = true
    markDirty(n)
    inodeCount[head] -= 1
    for j in 0..<UInt32(n.rec.nslots) { releaseSlot(n.rec.ino + j) }
  }

  // MARK: - File data

  func releaseAllData(_ n: EngineInode) throws(EngineError) {
    for (_, a) in n.blocks { clearLive(head, a) }
    n.blocks = [:]
    try releasePartial(n)
    n.inline = []
    n.inlineData = false
  }

  func releasePartial(_ n: EngineInode) throws(EngineError) {
    let old = n.partial
    n.partial = .none
    switch old {
    case .block(let a): clearLive(head, a)
    case .tail(let blk, _, _): try dropTailFragment(blk)
    default: break
    }
  }

  /// After an inode stopped using a fragment of tail block `blk`: the block stays live in this head
  /// only while another fragment in it is live (FORMAT.md 9.3).
  func dropTailFragment(_ blk: UInt32) throws(EngineError) {
    if try liveTailUsers(blk).isEmpty { clearLive(head, blk) }
  }

  /// Writes logical block `lblk` (< size / 4096) to a new data block.
  func putBlock(_ n: EngineInode, _ lblk: UInt32, _ bytes: [UInt8]) throws(EngineError) {
    let a = try allocate(.data)
    try writeDeviceBlock(a, bytes)
    setLive(head, a)
    setSSA(a, owner: n.rec.ino, kind: SSAKind.data, index: lblk, crc: checksum.checksum(bytes))
    if let old = n.blocks[lblk] { clearLive(head, old) }
    n.blocks[lblk] = a
  }

  /// Changes the size: truncates, or extends with a hole; moves the content between inline and
  /// block form and between the partial block and a full block as the size requires.
  func resize(_ n: EngineInode, to newSize: UInt64) throws(EngineError) {
    let old = n.rec.size
    guard newSize != old else { return }
    var inlineMax = n.inlineLimit
    // Small inline content (a symlink target, a tiny file) stays inline as the packer keeps it
    // (FORMAT.md 7), in free slots right after the inode's own; a tail would cost a tail block
    // read and, on unlink, a search of the block's inode pages.
    let want = InodeSlots.slots(forInline: Int(min(newSize, UInt64(RoseLayout.maxInline) + 1)))
    if n.isInlineForm, newSize > inlineMax, newSize <= InodeSlots.packerInlineMax,
      slotsAvailable(n, want)
    {
      claimSlots(n, want)
      inlineMax = n.inlineLimit
    }
    let bs = UInt64(RoseLayout.blockSize)
    markDirty(n)
    if newSize <= inlineMax {
      var bytes = try readData(n, offset: 0, count: Int(min(old, newSize)))
      bytes += [UInt8](repeating: 0, count: Int(newSize) - bytes.count)
      if !n.isInlineForm { try releaseAllData(n) }
      n.inline = bytes
      n.inlineData = true
      n.rec.size = newSize
      return
    }
    if n.isInlineForm {
      let bytes = n.inline
      n.inline = []
      n.inlineData = false
      n.rec.size = newSize
      let plen = Int(newSize % bs)
      n.partial = plen > 0 ? .memory([UInt8](repeating: 0, count: plen)) : .none
      if !bytes.isEmpty { try writeBlockForm(n, offset: 0, bytes) }
      return
    }
    let oldFull = old / bs
    let newFull = newSize / bs
    let newPlen = Int(newSize % bs)
    if newSize < old {
      var newPartial: [UInt8]?
      if newPlen > 0 {
        newPartial = Array(try readLogicalBlock(n, UInt32(newFull))[0..<newPlen])
      }
      for (l, a) in n.blocks where UInt64(l) >= newFull {
        clearLive(head, a)
        n.blocks[l] = nil
      }
      try releasePartial(n)
      n.rec.size = newSize
      n.partial = newPartial.map { .memory($0) } ?? .none
      return
    }
    let oldPlen = Int(old % bs)
    if oldPlen != 0 && newFull > oldFull {
      var p = try partialBytes(n)
      try releasePartial(n)
      n.rec.size = newSize
      if p.contains(where: { $0 != 0 }) {
        p += [UInt8](repeating: 0, count: RoseLayout.blockSize - p.count)
        try putBlock(n, UInt32(oldFull), p)
      }
    } else if oldPlen != 0 {
      var p = try partialBytes(n)
      try releasePartial(n)
      p += [UInt8](repeating: 0, count: newPlen - oldPlen)
      n.rec.size = newSize
      n.partial = .memory(p)
      return
    } else {
      n.rec.size = newSize
    }
    n.partial = newPlen > 0 ? .memory([UInt8](repeating: 0, count: newPlen)) : .none
  }

  /// Writes bytes inside the current size of a file in block form.
  func writeBlockForm(_ n: EngineInode, offset: UInt64, _ data: [UInt8]) throws(EngineError) {
    let bs = UInt64(RoseLayout.blockSize)
    var pos = offset
    let end = offset + UInt64(data.count)
    while pos < end {
      let lblk = UInt32(pos / bs)
      let inBlock = Int(pos % bs)
      let len = Int(min(bs - UInt64(inBlock), end - pos))
      let src = Int(pos - offset)
      let full = UInt32(n.rec.size / bs)
      if lblk < full {
        var block: [UInt8]
        if inBlock == 0 && len == RoseLayout.blockSize {
          block = Array(data[src..<src + len])
        } else {
          block = try readLogicalBlock(n, lblk)
          block.replaceSubrange(inBlock..<inBlock + len, with: data[src..<src + len])
        }
        try putBlock(n, lblk, block)
      } else {
        var p = try partialBytes(n)
        p.replaceSubrange(inBlock..<inBlock + len, with: data[src..<src + len])
        try releasePartial(n)
        n.partial = .memory(p)
      }
      pos += UInt64(len)
    }
    markDirty(n)
  }

  func writeBytes(_ n: EngineInode, offset: UInt64, _ data: [UInt8]) throws(EngineError) {
    let end = offset + UInt64(data.count)
    guard end <= RoseLayout.maxFileSize else {
      throw EngineError(EFBIG, "a RoseFS file ends before 2^40 bytes")
    }
    // A write of nothing changes nothing (POSIX: not even the size).
    if data.isEmpty { return }
    dataChanged = true
    if end > n.rec.size { try resize(n, to: end) }
    if n.isInlineForm {
      n.inline.replaceSubrange(Int(offset)..<Int(end), with: data)
      markDirty(n)
      return
    }
    try writeBlockForm(n, offset: offset, data)
  }

  func blocksFor(offset: UInt64, count: UInt64) -> Int {
    Int((count + UInt64(RoseLayout.blockSize) - 1) / UInt64(RoseLayout.blockSize)) + 2
  }

  // MARK: - VolumeOperations: changing

  func create(
    parent: UInt32, name: [UInt8], kind: FileKind, mode: UInt16, uid: UInt32, gid: UInt32
  ) throws(EngineError) -> EngineInode {
    try requireWritable()
    try validateName(name)
    let d = try directory(parent)
    if d.entries[name] != nil { throw EngineError.exists("\(Name.printable(name)) exists") }
    try ensureUserSpace(2)
    let n = newInode(kind: kind, mode: mode, uid: uid, gid: gid, parent: parent)
    addEntry(d, name, n)
    if kind == .directory { d.rec.nlink += 1 }
    return n
  }

  public func mknod(
    parent: UInt32, name: [UInt8], mode: UInt16, uid: UInt32, gid: UInt32, rdevMajor: UInt32,
    rdevMinor: UInt32
  ) throws(EngineError) -> NodeAttributes {
    try withLock { () throws(EngineError) in
      guard let kind = FileKind(modeBits: UInt32(mode)), kind != .directory, kind != .symlink
      else { throw EngineError(EINVAL, "mknod of mode \(String(mode, radix: 8))") }
      let n = try create(parent: parent, name: name, kind: kind, mode: mode, uid: uid, gid: gid)
      if kind == .characterDevice || kind == .blockDevice {
        n.rec.rdevMajor = rdevMajor
        n.rec.rdevMinor = rdevMinor
      }
      try checkpointIfLarge()
      return attributes(n)
    }
  }

  public func mkdir(parent: UInt32, name: [UInt8], mode: UInt16, uid: UInt32, gid: UInt32)
    throws(EngineError) -> NodeAttributes
  {
    try withLock { () throws(EngineError) in
      let n = try create(
        parent: parent, name: name, kind: .directory, mode: mode, uid: uid, gid: gid)
      try checkpointIfLarge()
      return attributes(n)
    }
  }

  public func symlink(parent: UInt32, name: [UInt8], target: [UInt8], uid: UInt32, gid: UInt32)
    throws(EngineError) -> NodeAttributes
  {
    try withLock { () throws(EngineError) in
      guard !target.isEmpty, !target.contains(0) else {
        throw EngineError(EINVAL, "empty symlink target")
      }
      guard target.count <= 4095 else {
        throw EngineError(ENAMETOOLONG, "symlink target longer than 4095 bytes")
      }
      let n = try create(
        parent: parent, name: name, kind: .symlink, mode: 0o777, uid: uid, gid: gid)
      try writeBytes(n, offset: 0, target)
      try checkpointIfLarge()
      return attributes(n)
    }
  }

  public func link(_ ino: UInt32, newParent: UInt32, newName: [UInt8]) throws(EngineError)
    -> NodeAttributes
  {
    try withLock { () throws(EngineError) in
      try requireWritable()
      try validateName(newName)
      let n = try inode(ino)
      guard n.kind != .directory else { throw EngineError(EPERM, "hard link to a directory") }
      let d = try directory(newParent)
      if d.entries[newName] != nil { throw EngineError.exists("\(Name.printable(newName)) exists") }
      try ensureUserSpace(1)
      dataChanged = true
      addEntry(d, newName, n)
      n.rec.nlink += 1
      n.rec.ctime = now()
      markDirty(n)
      try checkpointIfLarge()
      return attributes(n)
    }
  }

  /// Drops one name of a non-directory; frees the inode with its last name.
  func dropName(_ n: EngineInode, from d: EngineInode) throws(EngineError) {
    n.rec.nlink -= 1
    n.rec.ctime = now()
    markDirty(n)
    if n.rec.nlink == 0 {
      try destroy(n)
    } else if n.rec.parent == d.rec.ino {
      // Whether `d` still names it is settled when the inode is written (fixParentHints): looking
      // now would scan the directory once per removed name.
      n.parentUnverified = true
    }
  }

  /// `parent` must name a directory of the head that names the inode (FORMAT.md 8); for inodes that
  /// lost a name in their `parent` directory and kept another, it becomes the root when that
  /// directory names them no more. One pass over each such directory per checkpoint.
  func fixParentHints() {
    var byParent: [UInt32: [EngineInode]] = [:]
    for ino in dirtyInodes {
      guard let n = inodes[ino], n.parentUnverified else { continue }
      n.parentUnverified = false
      if !n.deleted { byParent[n.rec.parent, default: []].append(n) }
    }
    for (parent, children) in byParent {
      var named = Set<UInt32>()
      if let d = inodes[parent], !d.deleted {
        for e in d.entries.values { named.insert(e.ino) }
      }
      for n in children where !named.contains(n.rec.ino) { n.rec.parent = rootIno }
    }
  }

  public func unlink(parent: UInt32, name: [UInt8]) throws(EngineError) {
    try withLock { () throws(EngineError) in
      try requireWritable()
      let d = try directory(parent)
      guard let e = d.entries[name] else { throw EngineError.noEntry(Name.printable(name)) }
      let n = try inode(e.ino)
      if n.kind == .directory {
        throw EngineError(EISDIR, "\(Name.printable(name)) is a directory")
      }
      dataChanged = true
      removeEntry(d, name)
      try dropName(n, from: d)
      try checkpointIfLarge()
    }
  }

  public func rmdir(parent: UInt32, name: [UInt8]) throws(EngineError) {
    try withLock { () throws(EngineError) in
      try requireWritable()
      let d = try directory(parent)
      guard let e = d.entries[name] else { throw EngineError.noEntry(Name.printable(name)) }
      let n = try inode(e.ino)
      guard n.kind == .directory else {
        throw EngineError(ENOTDIR, "\(Name.printable(name)) is not a directory")
      }
      guard n.entries.isEmpty else {
        throw EngineError(ENOTEMPTY, "\(Name.printable(name)) is not empty")
      }
      dataChanged = true
      removeEntry(d, name)
      d.rec.nlink -= 1
      try destroy(n)
      try checkpointIfLarge()
    }
  }

  /// Whether directory `ancestor` is `dir` or above it.
  func isAncestor(_ ancestor: UInt32, of dir: UInt32) throws(EngineError) -> Bool {
    var cur = dir
    var steps = 0
    while steps < 1 << 16 {
      if cur == ancestor { return true }
      if cur == rootIno { return false }
      cur = try inode(cur).rec.parent
      steps += 1
    }
    throw EngineError.corrupt("directory \(dir): parent chain does not reach the root")
  }

  public func rename(
    parent: UInt32, name: [UInt8], newParent: UInt32, newName: [UInt8], flags: RenameFlags
  ) throws(EngineError) {
    try withLock { () throws(EngineError) in
      try requireWritable()
      try validateName(newName)
      if flags.contains(.noReplace) && flags.contains(.exchange) {
        throw EngineError(EINVAL, "RENAME_NOREPLACE with RENAME_EXCHANGE")
      }
      let d = try directory(parent)
      let nd = try directory(newParent)
      guard let e = d.entries[name] else { throw EngineError.noEntry(Name.printable(name)) }
      let n = try inode(e.ino)
      let target = nd.entries[newName]
      // The order of checks is Linux's (do_renameat2, lock_rename, vfs_rename).
      if flags.contains(.exchange) && target == nil {
        throw EngineError.noEntry(Name.printable(newName))
      }
      if flags.contains(.noReplace) && target != nil {
        throw EngineError.exists("\(Name.printable(newName)) exists")
      }
      if parent != newParent {
        if n.kind == .directory, try isAncestor(n.rec.ino, of: newParent) {
          throw EngineError(EINVAL, "cannot move a directory into itself")
        }
        if let t = target, t.type == FileKind.directory.rawValue,
          try isAncestor(t.ino, of: parent)
        {
          throw EngineError(
            flags.contains(.exchange) ? EINVAL : ENOTEMPTY, "the target contains the source")
        }
      }
      if let t = target, t.ino == n.rec.ino { return }
      if flags.contains(.exchange), let t = target {
        let m = try inode(t.ino)
        try ensureUserSpace(1)
        dataChanged = true
        d.entries[name] = (m.rec.ino, m.kind.rawValue)
        nd.entries[newName] = (n.rec.ino, n.kind.rawValue)
        d.leafCache = nil
        nd.leafCache = nil
        if parent != newParent {
          moveParent(of: n, from: d, to: nd)
          moveParent(of: m, from: nd, to: d)
        }
        let t0 = now()
        for x in [d, nd, n, m] {
          x.rec.ctime = t0
          markDirty(x)
        }
        d.rec.mtime = t0
        nd.rec.mtime = t0
        return
      }
      if parent == newParent && name == newName { return }
      if let t = target {
        let m = try inode(t.ino)
        if n.kind == .directory {
          guard m.kind == .directory else {
            throw EngineError(ENOTDIR, "\(Name.printable(newName)) is not a directory")
          }
          guard m.entries.isEmpty else {
            throw EngineError(ENOTEMPTY, "\(Name.printable(newName)) is not empty")
          }
        } else if m.kind == .directory {
          throw EngineError(EISDIR, "\(Name.printable(newName)) is a directory")
        }
      }
      try ensureUserSpace(1)
      dataChanged = true
      if let t = target {
        let m = try inode(t.ino)
        removeEntry(nd, newName)
        if m.kind == .directory {
          nd.rec.nlink -= 1
          try destroy(m)
        } else {
          try dropName(m, from: nd)
        }
      }
      removeEntry(d, name)
      addEntry(nd, newName, n)
      if parent != newParent { moveParent(of: n, from: d, to: nd) }
      n.rec.ctime = now()
      markDirty(n)
      try checkpointIfLarge()
    }
  }

  public func write(_ ino: UInt32, offset: UInt64, bytes: UnsafeRawBufferPointer)
    throws(EngineError)
  {
    try withLock { () throws(EngineError) in
      try requireWritable()
      let n = try inode(ino)
      if n.kind == .directory { throw EngineError(EISDIR, "ino \(ino) is a directory") }
      guard n.kind == .regular else { throw EngineError(EINVAL, "ino \(ino) is not a file") }
      try ensureUserSpace(blocksFor(offset: offset, count: UInt64(bytes.count)))
      try writeBytes(n, offset: offset, Array(bytes))
      let t = now()
      n.rec.mtime = t
      n.rec.ctime = t
      try checkpointIfLarge()
    }
  }

  public func setattr(_ ino: UInt32, _ changes: AttributeChanges) throws(EngineError)
    -> NodeAttributes
  {
    try withLock { () throws(EngineError) in
      try requireWritable()
      let n = try inode(ino)
      let t = now()
      if let size = changes.size {
        if n.kind == .directory { throw EngineError(EISDIR, "ino \(ino) is a directory") }
        guard n.kind == .regular else { throw EngineError(EINVAL, "ino \(ino) is not a file") }
        guard size <= RoseLayout.maxFileSize else {
          throw EngineError(EFBIG, "a RoseFS file ends before 2^40 bytes")
        }
        if size != n.rec.size {
          try ensureUserSpace(2)
          dataChanged = true
          try resize(n, to: size)
          n.rec.mtime = t
        }
      }
      if changes.permissions != nil || changes.uid != nil || changes.gid != nil
        || changes.atime != nil || changes.mtime != nil
      {
        try ensureUserSpace(0)
        dataChanged = true
      }
      if let p = changes.permissions { n.rec.mode = (n.rec.mode & 0o170000) | (p & 0o7777) }
      if let u = changes.uid { n.rec.uid = u }
      if let g = changes.gid { n.rec.gid = g }
      if let a = changes.atime { n.rec.atime = a }
      if let m = changes.mtime { n.rec.mtime = m }
      n.rec.ctime = changes.ctime ?? t
      markDirty(n)
      try checkpointIfLarge()
      return attributes(n)
    }
  }

  public func fallocate(_ ino: UInt32, offset: UInt64, length: UInt64, keepSize: Bool)
    throws(EngineError)
  {
    try withLock { () throws(EngineError) in
      try requireWritable()
      let n = try inode(ino)
      guard n.kind == .regular else { throw EngineError(ENODEV, "ino \(ino) is not a file") }
      guard length > 0 else { throw EngineError(EINVAL, "fallocate of 0 bytes") }
      let end = offset + length
      guard end <= RoseLayout.maxFileSize else { throw EngineError(EFBIG, "past 2^40 bytes") }
      try ensureUserSpace(blocksFor(offset: offset, count: length))
      dataChanged = true
      if !keepSize && end > n.rec.size { try resize(n, to: end) }
      if n.isInlineForm { return }
      let bs = UInt64(RoseLayout.blockSize)
      let full = UInt32(n.rec.size / bs)
      var l = UInt32(offset / bs)
      while UInt64(l) * bs < end && l < full {
        if n.blocks[l] == nil {
          try putBlock(n, l, [UInt8](repeating: 0, count: RoseLayout.blockSize))
        }
        l += 1
      }
      n.rec.ctime = now()
      markDirty(n)
      try checkpointIfLarge()
    }
  }

  public func setxattr(_ ino: UInt32, name: [UInt8], value: [UInt8], mode: XattrMode)
    throws(EngineError)
  {
    try withLock { () throws(EngineError) in
      try requireWritable()
      guard !name.isEmpty, !name.contains(0) else { throw EngineError(EINVAL, "empty xattr name") }
      guard name.count <= 255 else { throw EngineError(ERANGE, "xattr name over 255 bytes") }
      guard value.count <= 0xFFFF else { throw EngineError(E2BIG, "xattr value too large") }
      let n = try inode(ino)
      let exists = n.xattrs.contains { $0.name == name }
      if mode == .create && exists { throw EngineError.exists("xattr exists") }
      if mode == .replace && !exists { throw EngineError(ENODATA, "no such xattr") }
      var list = n.xattrs.filter { $0.name != name }
      list.append(Xattr(name: name, value: value))
      list.sort { $0.name.lexicographicallyPrecedes($1.name) }
      guard encodeXattrs(list).count <= RoseLayout.maxXattrBytes else {
        throw EngineError.noSpace("xattrs of an inode are limited to 4064 bytes")
      }
      try ensureUserSpace(1)
      dataChanged = true
      n.xattrs = list
      n.rec.ctime = now()
      markDirty(n)
      try checkpointIfLarge()
    }
  }

  public func removexattr(_ ino: UInt32, name: [UInt8]) throws(EngineError) {
    try withLock { () throws(EngineError) in
      try requireWritable()
      let n = try inode(ino)
      guard n.xattrs.contains(where: { $0.name == name }) else {
        throw EngineError(ENODATA, "no such xattr")
      }
      dataChanged = true
      n.xattrs.removeAll { $0.name == name }
      n.rec.ctime = now()
      markDirty(n)
      try checkpointIfLarge()
    }
  }

  public func fsync(_ ino: UInt32, dataOnly: Bool) throws(EngineError) {
    try withLock { () throws(EngineError) in
      if isReadOnly { return }
      _ = try inode(ino)
      try syncByRollForward()
    }
  }

  public func sync() throws(EngineError) {
    try withLock { () throws(EngineError) in
      if isReadOnly { return }
      try checkpoint(umount: false)
    }
  }

  public func unmount() throws(EngineError) {
    try withLock { () throws(EngineError) in
      if !isReadOnly { try checkpoint(umount: true) }
      unmounted = true
    }
  }
}

extension RoseEngine {
  /// Cleaning of tail blocks (FORMAT.md 13.5, TAIL): the live fragments of tail blocks that are at
  /// most three quarters live in this head go back to memory, the next checkpoint packs them densely, and the
  /// old blocks are free after it. Works in batches that the free space can hold. Returns whether
  /// space was freed.
  func cleanTailBlocks() throws(EngineError) -> Bool {
    let before = mainBlocks - busyTotal
    // New tail blocks and inode pages of one batch must fit in what is free now.
    let budget = max(0, (mainBlocks - busyTotal - metadataEstimate()) / 3)
    var moved = 0
    var movedBytes = 0
    var k = tailCleanCursor
    var scanned = 0
    while scanned < mainBlocks && movedBytes / 3000 + moved / 4 < budget {
      let at = k
      k = (k + 1) % mainBlocks
      scanned += 1
      guard vbm[head].get(at), !committedByOtherHead(at) else { continue }
      let addr = mainStart + UInt32(at)
      guard ssaEntry(addr).info >> 28 == UInt32(SSAKind.tail) else { continue }
      let live = try liveTailUsers(addr)
      var liveBytes = 0
      for n in live {
        if case .tail(_, _, let len) = n.partial { liveBytes += Int(len) }
      }
      guard liveBytes * 4 <= RoseLayout.blockSize * 3 else { continue }
      for n in live {
        n.partial = .memory(try partialBytes(n))
        markDirty(n)
        moved += 1
        movedBytes += n.partial == .none ? 0 : Int(n.rec.size % UInt64(RoseLayout.blockSize))
      }
      // Reading the fragments needed the old placement; now the block holds nothing live here.
      clearLive(head, addr)
    }
    tailCleanCursor = k
    guard moved > 0 || scanned < mainBlocks else { return false }
    try checkpoint(umount: false)
    return mainBlocks - busyTotal > before
  }

  /// Whether another head reaches block `k` (then repacking in this head frees nothing).
  func committedByOtherHead(_ k: Int) -> Bool {
    (0..<heads.count).contains { $0 != head && vbm[$0].get(k) }
  }
}
