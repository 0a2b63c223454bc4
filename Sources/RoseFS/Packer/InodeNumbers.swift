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
      for name in inode.children.keys { n += InlineDirent.size + name.bytes.count }
      if n <= RoseLayout.maxInline { inlineBytes = n }
    case .regular, .symlink:
      if let bytes = inode.content.inline {
        inlineBytes = bytes.count
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
  func assignInodeNumbers(_ subvolumes: [Subvolume]) throws {
    var objects: [Inode] = []
    var seen = Set<ObjectIdentifier>()
    var need: [UInt32: Int] = [:]
    var stack = subvolumes.map(\.root)
    for r in stack { _ = seen.insert(ObjectIdentifier(r)) }
    objects = stack
    while let dir = stack.popLast() {
      for child in dir.children.values where seen.insert(ObjectIdentifier(child)).inserted {
        objects.append(child)
        if child.kind == .directory { stack.append(child) }
      }
    }
    for inode in objects {
      let n = try Self.slotForm(inode).nslots
      need[inode.ino] = max(need[inode.ino] ?? 1, n)
    }
    let perPage = UInt32(RoseLayout.inodesPerPage)
    var final: [UInt32: UInt32] = [:]
    final.reserveCapacity(need.count)
    var next = perPage  // nid 0 is never used
    for ino in need.keys.sorted() {
      let n = UInt32(need[ino] ?? 1)
      if next % perPage + n > perPage { next = (next / perPage + 1) * perPage }
      final[ino] = next
      next += n
    }
    for inode in objects { inode.ino = final[inode.ino] ?? inode.ino }
    nextIno = next
  }
}
