// FORMAT.md section 14, items 7 and 8: file content (extents, extent trees, tails), symlinks,
// xattrs, and every tail block (its SSA entry and its fragments).

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
      if rec.size > UInt64(rec.inlineCapacity) {
        problem("\(w): inline file of \(rec.size) bytes in \(rec.nslots) slots")
      }
      if rec.dataBlocks != 0 { problem("\(w): blocks \(rec.dataBlocks) set on an inline file") }
      return
    }
    if rec.size == 0 { problem("\(w): empty file is not INLINE_DATA") }
    if rec.size > RoseLayout.maxFileSize { problem("\(w): size \(rec.size) exceeds 2^40") }
    var extents: [Extent] = []
    if rec.has(InodeFlag.extents) {
      guard Int(rec.inlineLen) % ExtentRecord.size == 0,
        Int(rec.inlineLen) + Int(rec.xattrLen) <= rec.inlineCapacity
      else {
        problem("\(w): inline_len \(rec.inlineLen) is not whole extent records within i_u")
        return
      }
      extents = ExtentRecord.decode(rec.inlineArea, at: 0, count: rec.inlineExtentCount)
    } else if rec.has(InodeFlag.extentTree) {
      let blockLimit = min(rec.size, RoseLayout.maxFileSize) / bs + 1
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
        // Every extent covers a block of the file: more extents than blocks is damage (and bounds
        // what a damaged tree makes fsck hold).
        if UInt64(extents.count + count) > blockLimit {
          tooMany = true
          return nil
        }
        let es = ExtentRecord.decode(b, at: RoseLayout.headerSize, count: count)
        extents += es
        return es.first.map { UInt64($0.logical) }
      }
      if tooMany {
        problem(
          "\(w): the extent tree holds more extents than the \(blockLimit) blocks of its size")
      }
    } else if rec.inlineLen != 0 {
      problem("\(w): inline_len \(rec.inlineLen) without a content flag")
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
    if UInt64(rec.dataBlocks) != count {
      problem("\(w): blocks \(rec.dataBlocks), the extents hold \(count) blocks")
    }
    if rec.has(InodeFlag.tail) { checkTailRef(h, rec, w) }
  }

  func checkTailRef(_ h: Int, _ rec: InodeRecord, _ w: String) {
    if rec.size % UInt64(RoseLayout.blockSize) == 0 {
      problem("\(w): TAIL with size \(rec.size), a multiple of 4096 (no partial block)")
    }
    if let sb, UInt64(rec.tailLen) > UInt64(sb.tailMax) {
      problem("\(w): tail of \(rec.tailLen) bytes exceeds tail_max \(sb.tailMax)")
    }
    guard inMain(rec.tailBlk) else {
      problem("\(w): tail block \(rec.tailBlk) is outside the main area")
      return
    }
    use(h, rec.tailBlk, .tail, w)
    tailFragments[rec.tailBlk, default: []].append(
      TailFragmentUse(
        head: h, ino: rec.ino, offset: Int(rec.tailOff), length: Int(rec.tailLen)))
  }

  /// Item 8: every tail block once, with the fragments of every head naming it: its SSA entry
  /// (kind TAIL, owner and index covering the inode pages of all of them, crc of the 4096 bytes),
  /// each fragment inside the block, and no two different fragments overlapping.
  func checkTailBlocks() {
    for (a, frags) in tailFragments.sorted(by: { $0.key < $1.key }) {
      let w = "tail block \(a)"
      guard let e = ssaEntry(a) else { continue }  // item 10 reports the hole
      if e.kind == SSAKind.tail {
        let low = frags.map(\.nid).min() ?? 0
        let high = frags.map(\.nid).max() ?? 0
        if low < e.owner || UInt64(high) > UInt64(e.owner) + UInt64(e.index) {
          let outside = frags.first {
            $0.nid < e.owner || UInt64($0.nid) > UInt64(e.owner) + UInt64(e.index)
          }
          problem(
            "\(w): SSA names inode pages \(e.owner)...\(UInt64(e.owner) + UInt64(e.index)), but ino \(outside?.ino ?? 0) (head \(outside?.head ?? 0), nid \(outside?.nid ?? 0)) has a fragment in it"
          )
        }
        if let b = readBlock(a) {
          let crc = ck.checksum(b)
          if crc != e.crc {
            problem("\(w): checksum \(hex32(crc)), the SSA records \(hex32(e.crc))")
          }
        }
      }
      // Identical fragments (one inode shared by heads) are one fragment.
      var distinct: [TailFragmentUse] = []
      for f in frags
      where !distinct.contains(where: {
        $0.ino == f.ino && $0.offset == f.offset && $0.length == f.length
      }) {
        distinct.append(f)
      }
      distinct.sort { ($0.offset, $0.length) < ($1.offset, $1.length) }
      var end = 0
      var last: TailFragmentUse?
      for f in distinct {
        if f.length == 0 || f.offset + f.length > RoseLayout.blockSize {
          problem(
            "\(w): fragment of ino \(f.ino) (head \(f.head), offset \(f.offset), length \(f.length)) is outside the block"
          )
          continue
        }
        if let last, f.offset < end {
          problem(
            "\(w): fragments of ino \(last.ino) (head \(last.head)) and ino \(f.ino) (head \(f.head)) overlap at byte \(f.offset)"
          )
        }
        if f.offset + f.length > end {
          end = f.offset + f.length
          last = f
        }
      }
    }
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
      guard n <= rec.inlineCapacity else { return }
      do {
        let p = try ImageReader.parseXattrs(
          Array(rec.inlineArea[(rec.inlineCapacity - n)...]), count: nil,
          what: "\(w) inline xattrs")
        xs = p.xattrs
      } catch { report(error) }
    }
    for i in xs.indices.dropFirst() where !xs[i - 1].name.lexicographicallyPrecedes(xs[i].name) {
      problem("\(w): xattr \(Name.printable(xs[i].name)) is unsorted or duplicated")
    }
  }
}
