/// Packer phase "inode numbers" (FORMAT.md section 7, "How the packer chooses the forms"): an inode
/// takes `nslots` consecutive slots of its page, known only once its content and xattrs are. Ingest
/// numbers inodes in input order; this phase keeps that order and gives each inode
/// the slots it needs: `ino = nid * 128 + s`, an inode that does not fit the rest of a page starts the
/// next one. Objects sharing a number (a snapshot's copy of a directory) get the largest need.
/// Running it again (a repack) changes nothing: the order and the needs are the same.
extension ImageBuilder {
  /// Slots `inode` takes and whether its xattrs are inline, by the packer's rule: content inline when
  /// it fits 128 slots (files: `InodeSlots.fileIsInline`, decided when the data was written); xattrs
  /// inline by `InodeSlots.xattrsInline`.
  static func slotForm(_ inode: Inode) throws -> (nslots: Int, xattrsInline: Bool) {
    var inlineBytes = 0
    switch inode.kind {
    case .directory:
      var n = 0
      for (name, _) in inode.children { n += InlineDirent.size + name.count }
      if n <= RoseLayout.maxInline { inlineBytes = n }
    case .regular, .symlink:
      if let count = inode.content.inlineCount {
        inlineBytes = count
      } else {
        let n = ExtentRecord.size * inode.content.extents.count
        if n <= RoseLayout.maxInline { inlineBytes = n }
      }
    default:
      break
    }
    let base = InodeSlots.slots(forInline: inlineBytes)
    guard !inode.xattrs.isEmpty else { return (base, false) }
    let x = try encodeXattrRecords(inode.xattrs, path: "inode \(inode.ino)").count
    let withXattrs = InodeSlots.slots(forInline: inlineBytes + x)
    if InodeSlots.xattrsInline(slotsWithoutXattrs: base, slotsWithXattrs: withXattrs) {
      return (withXattrs, true)
    }
    return (base, false)
  }

  /// Renumbers every inode of `subvolumes` so that each has the slots it needs.
  ///
  /// Memory (issue 10): arrays indexed by the ingest number (17 bytes per entry), no per-entry
  /// dictionaries or sets. An object reached twice (a hard link, an object two heads share) is
  /// listed twice with the number it had when reached, so renumbering it twice gives the same
  /// number; only directories are deduplicated, so that a malformed tree cannot loop.
  func assignInodeNumbers(_ subvolumes: [Subvolume]) throws {
    var objects: [Inode] = []
    var oldIno: [UInt32] = []
    var seenDirs = Set<ObjectIdentifier>()
    var stack: [Inode] = []
    for r in subvolumes.map(\.root) where seenDirs.insert(ObjectIdentifier(r)).inserted {
      stack.append(r)
      objects.append(r)
      oldIno.append(r.ino)
    }
    while let dir = stack.popLast() {
      // The packer's first pass: from here on every pass reads the children in place, in name order.
      dir.sortChildren()
      for (_, child) in dir.children {
        if child.kind == .directory {
          guard seenDirs.insert(ObjectIdentifier(child)).inserted else { continue }
          stack.append(child)
        }
        objects.append(child)
        oldIno.append(child.ino)
      }
    }
    let limit = Int((oldIno.max() ?? 0) + 1)
    // 0: no inode has that number.
    var need = [UInt8](repeating: 0, count: limit)
    for (inode, ino) in zip(objects, oldIno) {
      let n = UInt8(try Self.slotForm(inode).nslots)
      need[Int(ino)] = max(need[Int(ino)], n)
    }
    let perPage = UInt32(RoseLayout.inodesPerPage)
    var final = [UInt32](repeating: 0, count: limit)
    var next = perPage  // nid 0 is never used
    for ino in need.indices where need[ino] != 0 {
      let n = UInt32(need[ino])
      if next % perPage + n > perPage { next = (next / perPage + 1) * perPage }
      final[ino] = next
      next += n
    }
    for (inode, ino) in zip(objects, oldIno) { inode.ino = final[Int(ino)] }
    nextIno = next
  }
}
