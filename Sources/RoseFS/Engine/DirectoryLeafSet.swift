// A directory's entries as the engine keeps them while it changes: in key order, grouped into the
// leaves the next checkpoint writes (FORMAT.md 8: 16-byte records plus the name, per 4 KiB leaf).
// Keeping the leaves themselves (rather than one sorted array that the checkpoint packs) makes every
// change cost a binary search plus the work inside one leaf, and the leaf count, which is what `stat`
// shows as the size of a directory stored as a tree, a property read in O(1). A directory of tens of
// thousands of names changed one name at a time (stress-ng's link and symlink stressors, `tar -x`)
// would otherwise pack all its names again for each `getattr`.

/// A directory's entries in key order, in leaves of at most one block's worth of records and names.
struct DirectoryLeafSet {
  struct Leaf {
    var entries: [EncodedDirent]
    /// Record and name bytes of `entries` (16 + name length each).
    var bytes: Int
  }

  /// Bytes of records and names a leaf holds (the block after its header).
  static let space = RoseLayout.blockSize - RoseLayout.headerSize

  private(set) var leaves: [Leaf] = []
  private(set) var count = 0

  static func cost(_ e: EncodedDirent) -> Int { DirLeafRecord.size + e.name.count }

  /// Packs `sorted` (entries in key order) greedily, as the packer does.
  init(sorted: [EncodedDirent]) {
    var current = Leaf(entries: [], bytes: 0)
    for e in sorted {
      let c = Self.cost(e)
      if current.bytes + c > Self.space {
        leaves.append(current)
        current = Leaf(entries: [], bytes: 0)
      }
      current.entries.append(e)
      current.bytes += c
    }
    if !current.entries.isEmpty { leaves.append(current) }
    count = sorted.count
  }

  /// Every entry in key order.
  var sorted: [EncodedDirent] {
    var out: [EncodedDirent] = []
    out.reserveCapacity(count)
    for l in leaves { out += l.entries }
    return out
  }

  /// The leaves as the checkpoint writes them.
  func encodedLeaves() -> [(firstKey: UInt64, count: Int, body: [UInt8])] {
    // Each leaf's entries fit one block, so the packer's encoder returns exactly one leaf for them.
    leaves.flatMap { directoryLeaves($0.entries) }
  }

  /// Where the first entry whose key is at least `key` is (leaf, index); (leaves.count, 0) if none.
  func position(atLeast key: UInt64) -> (leaf: Int, index: Int) {
    // The first leaf whose last key is >= key.
    var lo = 0
    var hi = leaves.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if let last = leaves[mid].entries.last, last.key < key { lo = mid + 1 } else { hi = mid }
    }
    guard lo < leaves.count else { return (leaves.count, 0) }
    let entries = leaves[lo].entries
    var a = 0
    var b = entries.count
    while a < b {
      let mid = (a + b) / 2
      if entries[mid].key < key { a = mid + 1 } else { b = mid }
    }
    return (lo, a)
  }

  /// Up to `limit` entries whose key is greater than `cookie`, in key order.
  func entries(after cookie: UInt64, limit: Int) -> [EncodedDirent] {
    guard cookie < UInt64.max else { return [] }
    var (l, i) = position(atLeast: cookie + 1)
    var out: [EncodedDirent] = []
    while l < leaves.count && out.count < limit {
      let entries = leaves[l].entries
      while i < entries.count && out.count < limit {
        out.append(entries[i])
        i += 1
      }
      l += 1
      i = 0
    }
    return out
  }

  /// Sets `name` (hashed to `hash`) to `entry`, or removes it (nil). Returns false, changing
  /// nothing, when another name has the same hash: the `seq` numbering of that hash would change,
  /// and the caller builds the set again from scratch.
  mutating func set(_ name: [UInt8], hash: UInt32, to entry: EncodedDirent?) -> Bool {
    let h = UInt64(hash)
    let (l, i) = position(atLeast: h << 32)
    // The entries with this hash: at most two are looked at.
    var same: [(leaf: Int, index: Int)] = []
    var cl = l
    var ci = i
    while cl < leaves.count && same.count < 2 {
      if ci >= leaves[cl].entries.count {
        cl += 1
        ci = 0
        continue
      }
      guard leaves[cl].entries[ci].key >> 32 == h else { break }
      same.append((cl, ci))
      ci += 1
    }
    switch (same.count, entry) {
    case (0, nil):
      return true
    case (0, var e?):
      e.key = h << 32
      insert(e, leaf: l, index: i)
      return true
    case (1, let e) where leaves[same[0].leaf].entries[same[0].index].name == name:
      let at = same[0]
      if var e {
        let old = leaves[at.leaf].entries[at.index]
        e.key = old.key
        leaves[at.leaf].bytes += Self.cost(e) - Self.cost(old)
        leaves[at.leaf].entries[at.index] = e
      } else {
        remove(leaf: at.leaf, index: at.index)
      }
      return true
    default:
      return false
    }
  }

  private mutating func insert(_ e: EncodedDirent, leaf l: Int, index i: Int) {
    count += 1
    if leaves.isEmpty {
      leaves.append(Leaf(entries: [e], bytes: Self.cost(e)))
      return
    }
    // Past every key: the end of the last leaf.
    let (l, i) =
      l < leaves.count ? (l, i) : (leaves.count - 1, leaves[leaves.count - 1].entries.count)
    leaves[l].entries.insert(e, at: i)
    leaves[l].bytes += Self.cost(e)
    guard leaves[l].bytes > Self.space else { return }
    // Split in two halves by bytes; each half then fits (a record and name take at most 271 bytes).
    var first = 0
    var k = 0
    while first + Self.cost(leaves[l].entries[k]) <= leaves[l].bytes / 2 {
      first += Self.cost(leaves[l].entries[k])
      k += 1
    }
    k = max(k, 1)
    first = leaves[l].entries[..<k].reduce(0) { $0 + Self.cost($1) }
    let upper = Leaf(entries: Array(leaves[l].entries[k...]), bytes: leaves[l].bytes - first)
    leaves[l].entries.removeSubrange(k...)
    leaves[l].bytes = first
    leaves.insert(upper, at: l + 1)
  }

  private mutating func remove(leaf l: Int, index i: Int) {
    count -= 1
    let e = leaves[l].entries.remove(at: i)
    leaves[l].bytes -= Self.cost(e)
    if leaves[l].entries.isEmpty {
      leaves.remove(at: l)
      return
    }
    // Merge with a neighbour when both fit one leaf, so that removals shrink the directory.
    if l + 1 < leaves.count && leaves[l].bytes + leaves[l + 1].bytes <= Self.space {
      leaves[l].entries += leaves[l + 1].entries
      leaves[l].bytes += leaves[l + 1].bytes
      leaves.remove(at: l + 1)
    } else if l > 0 && leaves[l - 1].bytes + leaves[l].bytes <= Self.space {
      leaves[l - 1].entries += leaves[l].entries
      leaves[l - 1].bytes += leaves[l].bytes
      leaves.remove(at: l)
    }
  }
}
