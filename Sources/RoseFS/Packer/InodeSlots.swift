/// Packer: the inode slot of an inode in one head (FORMAT.md section 7), as an `InodeRecord`.
extension ImageBuilder {
  /// The `nslots * 32` bytes of an inode in one head (FORMAT.md section 7).
  func encodeSlot(
    _ inode: Inode, view: HeadView, aux a: AuxNodes, into slot: UnsafeMutableRawBufferPointer
  ) {
    slotRecord(inode, view: view, aux: a).encode(into: slot, checksum: checksum)
  }

  /// The inode as the packer fills it: the `i_u` area holds the content form's bytes from its start
  /// and the inline xattrs at its end; devices keep their numbers where other inodes keep `tail_blk`
  /// and `tree_root`.
  func slotRecord(_ inode: Inode, view: HeadView, aux a: AuxNodes) -> InodeRecord {
    let isDevice = inode.kind == .characterDevice || inode.kind == .blockDevice
    let isFile = inode.kind == .regular || inode.kind == .symlink
    let capacity = InodeSlots.capacity(nslots: a.nslots)
    var area = [UInt8](repeating: 0, count: capacity)
    area.replaceSubrange(0..<a.inline.count, with: a.inline)
    area.replaceSubrange((capacity - a.xattrInline.count)..<capacity, with: a.xattrInline)
    let tail = a.flags & InodeFlag.tail != 0 ? inode.content.tail : nil
    let tailBlk = tail.map { tails.resolve($0.block) } ?? 0
    return InodeRecord(
      ino: inode.ino, mode: inode.mode, flags: a.flags, uid: inode.uid, gid: inode.gid,
      nlink: view.nlink(inode.ino), size: a.size, atime: inode.atime, mtime: inode.mtime,
      ctime: inode.ctime, parent: view.parent(inode.ino), xattrNid: a.xattrNid,
      tailBlk: isDevice ? inode.rdevMajor : tailBlk,
      treeRoot: isDevice ? inode.rdevMinor : a.treeRoot,
      dataBlocks: !inode.content.isInline && isFile
        ? UInt32(clamping: inode.content.blockCount) : 0,
      inlineLen: UInt16(a.inline.count), xattrLen: UInt16(a.xattrInline.count),
      tailOff: tail?.offset ?? 0, nslots: UInt8(a.nslots), treeDepth: a.treeDepth,
      inlineArea: area)
  }
}
