/// The map of a meta-file (FORMAT.md 6.1): which index blocks a meta-file with `nblocks` content
/// blocks needs when its first `used` content blocks are stored and the rest are holes.
enum MapTree {
  static let fanout = RoseLayout.addressesPerBlock

  static func depth(nblocks: Int) -> Int {
    var d = 0
    var reach = 1
    while reach < nblocks {
      reach *= fanout
      d += 1
    }
    return d
  }

  /// Index blocks per level (level 1 first) for `used` stored leaves.
  static func levelCounts(nblocks: Int, used: Int) -> [Int] {
    guard used > 0 else { return [] }
    let d = depth(nblocks: nblocks)
    var out: [Int] = []
    var n = used
    for _ in 0..<d {
      n = (n + fanout - 1) / fanout
      out.append(n)
    }
    return out
  }

  /// Builds the index levels over `leafAddrs` (content blocks 0..<leafAddrs.count; an address may be
  /// 0 for a hole). `allocate` hands out the address of each index block in the order they are
  /// returned (level 1 first, by index). Returns the root and the index blocks with their children.
  static func build(nblocks: Int, leafAddrs: [UInt32], allocate: () -> UInt32)
    -> (root: MetaRoot, index: [(level: UInt8, index: UInt32, addr: UInt32, children: [UInt32])])
  {
    let d = depth(nblocks: nblocks)
    if d == 0 {
      return (MetaRoot(root: leafAddrs.first ?? 0, nblocks: UInt32(nblocks), depth: 0), [])
    }
    var index: [(UInt8, UInt32, UInt32, [UInt32])] = []
    var below = leafAddrs
    for level in 1...d {
      var next: [UInt32] = []
      var i = 0
      while i < below.count {
        let children = Array(below[i..<min(i + fanout, below.count)])
        if children.allSatisfy({ $0 == 0 }) {
          next.append(0)
        } else {
          let addr = allocate()
          index.append((UInt8(level), UInt32(next.count), addr, children))
          next.append(addr)
        }
        i += fanout
      }
      below = next
    }
    return (MetaRoot(root: below.first ?? 0, nblocks: UInt32(nblocks), depth: UInt8(d)), index)
  }
}

/// VBM and SSA blocks are placed before their contents are known (the bitmaps must include the
/// bitmap blocks themselves), so their addresses are planned first.
struct MetaPlan {
  enum Role {
    case vbmLeaf
    case ssaLeaf
    case index([UInt32])
  }
  struct Block {
    var addr: UInt32
    var role: Role
    var type: UInt8
    var head: Int
    var level: UInt8
    var index: UInt32
    var ownerField: UInt32 {
      SSAEntry.metaOwner(type: type, head: type == MetaType.ssa ? 0 : head, level: level)
    }
  }
  var blocks: [Block] = []
  var roots: [String: MetaRoot] = [:]
  var end: UInt32

  func root(type: UInt8, head: Int) -> MetaRoot { roots["\(type)/\(head)"] ?? MetaRoot() }

  static func indexCount(nblocks: Int, used: Int) -> Int {
    MapTree.levelCounts(nblocks: nblocks, used: used).reduce(0, +)
  }

  /// Stored content blocks cover [mainStart, end) where `end` includes the plan itself: iterate.
  static func make(
    start: UInt32, ownVBMHeads: [Int], vbmCount: Int, ssaCount: Int, mainStart: UInt32
  )
    -> MetaPlan
  {
    var end = start
    for _ in 0..<16 {
      let used = Int(end - mainStart)
      let vbmUsed = min(
        vbmCount, (used + RoseLayout.bitsPerVBMBlock - 1) / RoseLayout.bitsPerVBMBlock)
      let ssaUsed = min(
        ssaCount, (used + RoseLayout.ssaEntriesPerBlock - 1) / RoseLayout.ssaEntriesPerBlock)
      let total =
        ownVBMHeads.count * (vbmUsed + indexCount(nblocks: vbmCount, used: vbmUsed)) + ssaUsed
        + indexCount(nblocks: ssaCount, used: ssaUsed)
      let newEnd = start + UInt32(total)
      if newEnd == end { break }
      end = newEnd
    }
    let used = Int(end - mainStart)
    let vbmUsed = min(
      vbmCount, (used + RoseLayout.bitsPerVBMBlock - 1) / RoseLayout.bitsPerVBMBlock)
    let ssaUsed = min(
      ssaCount, (used + RoseLayout.ssaEntriesPerBlock - 1) / RoseLayout.ssaEntriesPerBlock)
    var plan = MetaPlan(end: end)
    var next = start
    let alloc = { () -> UInt32 in
      next += 1
      return next - 1
    }
    func add(type: UInt8, head: Int, nblocks: Int, used: Int, leafRole: Role) {
      var leafAddrs: [UInt32] = []
      for i in 0..<used {
        let a = alloc()
        leafAddrs.append(a)
        plan.blocks.append(
          Block(addr: a, role: leafRole, type: type, head: head, level: 0, index: UInt32(i)))
      }
      let t = MapTree.build(nblocks: nblocks, leafAddrs: leafAddrs, allocate: alloc)
      for ix in t.index {
        plan.blocks.append(
          Block(
            addr: ix.addr, role: .index(ix.children), type: type, head: head, level: ix.level,
            index: ix.index))
      }
      plan.roots["\(type)/\(head)"] = t.root
    }
    for h in ownVBMHeads {
      add(type: MetaType.vbm, head: h, nblocks: vbmCount, used: vbmUsed, leafRole: .vbmLeaf)
    }
    add(type: MetaType.ssa, head: 0, nblocks: ssaCount, used: ssaUsed, leafRole: .ssaLeaf)
    plan.end = next
    return plan
  }
}

/// Writes a meta-file whose contents are known now (the NAT): content blocks, then its index blocks.
struct MetaFileWriter {
  let builder: ImageBuilder
  let cpVer: UInt64

  /// `reuse(i, body)` may return the address of an identical block already written (a snapshot's
  /// shared NAT block). Returns the root and every block address this head's map references.
  mutating func writeMetaFile(
    type: UInt8, head: Int, nblocks: Int, leaves: [(index: Int, body: [UInt8])], magic: UInt32,
    countNonZero: Bool, reuse: ((Int, [UInt8]) -> UInt32?)?, runs: inout [OwnerRun]
  ) throws -> (MetaRoot, [UInt32]) {
    var leafAddrs: [UInt32] = []
    var refs: [UInt32] = []
    for (i, body) in leaves {
      if let r = reuse?(i, body) {
        leafAddrs.append(r)
        refs.append(r)
        continue
      }
      var block = [UInt8](repeating: 0, count: RoseLayout.blockSize)
      block.replaceSubrange(RoseLayout.headerSize..<RoseLayout.headerSize + body.count, with: body)
      var count = 0
      if countNonZero {
        for j in stride(from: 0, to: body.count, by: 4)
        where body[j] | body[j + 1] | body[j + 2] | body[j + 3] != 0 {
          count += 1
        }
      }
      let addr = builder.stream.nextBlock
      builder.writeHeader(
        &block, magic: magic, addr: addr, owner: UInt32(i), count: UInt16(count), level: 0,
        subtype: 0, aux: 0)
      builder.sealHeader(&block, blkaddr: addr)
      _ = try block.withUnsafeBytes { try builder.stream.append($0, dataChecksum: false) }
      leafAddrs.append(addr)
      refs.append(addr)
      runs.append(
        OwnerRun(
          start: addr, count: 1, kind: SSAKind.meta,
          owner: SSAEntry.metaOwner(type: type, head: head, level: 0),
          index: UInt32(i),
          head: head, type: type))
    }
    var next = builder.stream.nextBlock
    let t = MapTree.build(nblocks: nblocks, leafAddrs: leafAddrs) {
      next += 1
      return next - 1
    }
    for ix in t.index {
      var block = [UInt8](repeating: 0, count: RoseLayout.blockSize)
      block.withUnsafeMutableBytes { buf in
        for (i, c) in ix.children.enumerated() {
          buf.storeBytes(
            of: c.littleEndian, toByteOffset: AddressArray.at(i), as: UInt32.self)
        }
      }
      builder.writeHeader(
        &block, magic: Magic.mapIndex, addr: ix.addr, owner: ix.index,
        count: UInt16(ix.children.filter { $0 != 0 }.count), level: ix.level, subtype: type,
        aux: UInt32(head))
      builder.sealHeader(&block, blkaddr: ix.addr)
      let a = try block.withUnsafeBytes { try builder.stream.append($0, dataChecksum: false) }
      guard a == ix.addr else {
        throw RoseFSError.internalInvariant("index block planned at \(ix.addr), written at \(a)")
      }
      refs.append(a)
      runs.append(
        OwnerRun(
          start: a, count: 1, kind: SSAKind.meta,
          owner: SSAEntry.metaOwner(type: type, head: head, level: ix.level), index: ix.index,
          head: head, type: type))
    }
    return (t.root, refs)
  }
}
