/// Packer: the inode slot of an inode in one head (FORMAT.md section 7), as an `InodeRecord`.
extension ImageBuilder {
  /// The `nslots * 256` bytes of an inode in one head (FORMAT.md section 7).
  func encodeSlot(_ inode: Inode, view: HeadView, aux a: AuxNodes, into slot: inout [UInt8]) {
    slotRecord(inode, view: view, aux: a).encode(into: &slot, checksum: checksum)
  }

  /// The slot of `inode` as the packer fills it: crtime is ctime, generation 0, and the `i_u` area
  /// holds the content form's bytes from its start and the inline xattrs at its end.
  func slotRecord(_ inode: Inode, view: HeadView, aux a: AuxNodes) -> InodeRecord {
    let isDevice = inode.kind == .characterDevice || inode.kind == .blockDevice
    let isFile = inode.kind == .regular || inode.kind == .symlink
    let capacity = InodeSlots.capacity(nslots: a.nslots)
    var area = [UInt8](repeating: 0, count: capacity)
    area.replaceSubrange(0..<a.inline.count, with: a.inline)
    area.replaceSubrange((capacity - a.xattrInline.count)..<capacity, with: a.xattrInline)
    let tail = a.flags & InodeFlag.tail != 0 ? inode.content.tail : nil
    return InodeRecord(
      ino: inode.ino, mode: inode.mode, flags: a.flags, uid: inode.uid, gid: inode.gid,
      nlink: view.nlink(inode.ino), size: a.size,
      blocks: inode.content.inline == nil && isFile ? inode.content.blockCount * 8 : 0,
      atime: inode.atime, mtime: inode.mtime, ctime: inode.ctime, crtime: inode.ctime,
      generation: 0, parent: view.parent(inode.ino), xattrNid: a.xattrNid,
      rdevMajor: isDevice ? inode.rdevMajor : 0, rdevMinor: isDevice ? inode.rdevMinor : 0,
      cpVer: cpVer, tailBlk: tail.map { tails.resolve($0.block) } ?? 0, tailOff: tail?.offset ?? 0,
      tailLen: tail?.length ?? 0, inlineLen: UInt16(a.inline.count),
      xattrLen: UInt16(a.xattrInline.count), nitems: a.nitems, treeRoot: a.treeRoot,
      treeDepth: a.treeDepth, nslots: UInt8(a.nslots), inlineArea: area)
  }
}
