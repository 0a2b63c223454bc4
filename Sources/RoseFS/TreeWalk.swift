/// The one depth-first, key-order walk of a directory or extent B+ tree (FORMAT.md 8.2 and 9.2),
/// shared by the reader (which throws at the first problem) and fsck (which reports every problem
/// and goes on). It checks what belongs to the tree's shape: depth bound, each node's level, nodes
/// reached twice (a cycle or a shared node), interior counts, zero bytes after interior records,
/// interior keys ascending along each level and equal to the smallest key below them. What a node
/// is (magic, checksum, address, owner, aux) is the loader's business.
struct TreeWalk {
  /// No B+ tree or map in a v1 image is deeper than this.
  static let maxDepth = 8

  let kind: TreeKind
  /// Reads node `nid`; nil skips its subtree (the loader has reported why, or throws).
  let load: (_ nid: UInt32) throws -> (addr: UInt32, bytes: [UInt8])?
  /// Receives each problem as "nid N (block B): what"; throwing ends the walk.
  let problem: (String) throws -> Void

  /// Walks the tree of `root` with `depth` levels above the leaves. `node` sees every node read;
  /// `leaf` gets each leaf in key order and returns its smallest key (nil: unknown, not compared).
  func walk(
    root: UInt32, depth: Int,
    node: ((_ nid: UInt32, _ addr: UInt32, _ level: Int, _ bytes: [UInt8]) throws -> Void)? = nil,
    leaf: (_ addr: UInt32, _ bytes: [UInt8]) throws -> UInt64?
  ) throws {
    guard depth <= Self.maxDepth else {
      try problem("tree depth \(depth) exceeds \(Self.maxDepth)")
      return
    }
    var seen = Set<UInt32>()
    var lastKeyAt: [Int: UInt64] = [:]
    func visit(_ nid: UInt32, _ level: Int) throws -> UInt64? {
      guard seen.insert(nid).inserted else {
        try problem("tree node nid \(nid) is reached twice (cycle or shared node)")
        return nil
      }
      guard let (addr, b) = try load(nid) else { return nil }
      let header = BlockHeader.decode(b)
      let w = "nid \(nid) (block \(addr))"
      guard Int(header.level) == level else {
        try problem("\(w): level \(header.level), expected \(level)")
        return nil
      }
      try node?(nid, addr, level, b)
      if level == 0 { return try leaf(addr, b) }
      let count = Int(header.count)
      guard count >= 1, count <= kind.maxInteriorRecords else {
        try problem("\(w): interior count \(count)")
        return nil
      }
      let end = RoseLayout.headerSize + kind.interiorRecordSize * count
      if let nz = b[end...].firstIndex(where: { $0 != 0 }) {
        try problem("\(w): byte \(nz) after the interior records is not zero")
      }
      let r = ByteReader(b)
      var first: UInt64?
      for i in 0..<count {
        let key = kind.interiorKey(r, i)
        if let last = lastKeyAt[level], key <= last {
          try problem("\(w): interior key \(i) is not ascending")
        }
        lastKeyAt[level] = key
        let below = try visit(kind.interiorChild(r, i), level - 1)
        if let below, below != key {
          try problem("\(w): interior key \(i) is \(key), the smallest key below is \(below)")
        }
        if i == 0 { first = key }
      }
      return first
    }
    _ = try visit(root, depth)
  }
}
