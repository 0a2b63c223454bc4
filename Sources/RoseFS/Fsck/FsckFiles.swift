// FORMAT.md section 14, items 7 and 8: file content (extents, extent trees, tails), symlinks,
// xattrs, and the layout of every tail block.

extension FsckRun {
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
      guard UInt64(rec.inlineLen) == UInt64(ExtentRecord.size) * UInt64(rec.nitems),
        Int(rec.inlineLen) <= RoseLayout.inlineCapacity
      else {
        problem("\(w): inline_len \(rec.inlineLen) is not 12 * nitems \(rec.nitems)")
        return
      }
      extents = ExtentRecord.decode(rec.inlineArea, at: 0, count: Int(rec.nitems))
    } else if rec.has(InodeFlag.extentTree) {
      var tooMany = false
      walkTree(h, rec: rec, kind: .extents, "\(w) extent tree") { a, b in
        let count = Int(BlockHeader.decode(b).count)
        guard count >= 1, count <= ImageReader.maxExtentLeafRecords else {
          problem("\(w) extent leaf block \(a): count \(count)")
          return nil
        }
        requireZero(
          b, RoseLayout.headerSize + ExtentRecord.size * count..<RoseLayout.blockSize,
          "\(w) extent leaf block \(a) after the records")
        if UInt64(extents.count + count) > UInt64(rec.nitems) {
          tooMany = true
          return nil
        }
        let es = ExtentRecord.decode(b, at: RoseLayout.headerSize, count: count)
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
    let hd = BlockHeader.decode(r)
    let count = Int(hd.count)
    if hd.owner != 0 || hd.level != 0 || hd.subtype != 0 || hd.aux != 0 {
      problem("\(w): header owner, level, subtype and aux must be zero")
    }
    let tableEnd = TailEntry.at(count)
    guard count >= 1, tableEnd <= RoseLayout.blockSize else {
      problem("\(w): count \(count)")
      return nil
    }
    var covered = [Bool](repeating: false, count: RoseLayout.blockSize)
    for i in 0..<tableEnd { covered[i] = true }
    var table: [(ino: UInt32, off: UInt16, len: UInt16)] = []
    for i in 0..<count {
      let t = TailEntry.decode(r, TailEntry.at(i))
      let e = (ino: t.ino, off: t.offset, len: t.length)
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
      let count = Int(BlockHeader.decode(b).count)
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
}
