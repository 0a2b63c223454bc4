/// Consecutive blocks with one owner: what the SSA says about them.
struct OwnerRun {
  var start: UInt32
  var count: UInt32
  var kind: UInt8
  var owner: UInt32
  var index: UInt32
  var head: Int = -1
  var type: UInt8 = 0
}

/// One head's tree as the packer sees it: reachable inodes by number, link counts, parents.
///
/// Memory (issue 10): flat arrays, 16 bytes per position, not dictionaries (about 100 bytes per entry
/// with their load factor and growth). An inode takes at least `minInodeSlots` slots, so two inodes
/// of a page never share `slot / minInodeSlots`: positions are `nid * 43 + slot / 3`, about one per
/// inode, where indexing by inode number would leave two of every three positions empty.
struct HeadView {
  /// Positions per inode page: `ceil(inodesPerPage / minInodeSlots)`.
  static let positionsPerPage =
    (RoseLayout.inodesPerPage + RoseLayout.minInodeSlots - 1) / RoseLayout.minInodeSlots
  /// The array position of inode number `ino`; distinct inodes of one head get distinct positions,
  /// in the order of their numbers.
  static func position(_ ino: UInt32) -> Int {
    let page = Int(ino) / RoseLayout.inodesPerPage
    let slot = Int(ino) % RoseLayout.inodesPerPage
    return page * positionsPerPage + slot / RoseLayout.minInodeSlots
  }

  /// The inode numbered `ino`, or nil when this head has none.
  struct InodeTable {
    fileprivate var byIno: [Inode?] = []
    /// Inodes present.
    fileprivate(set) var count = 0
    subscript(ino: UInt32) -> Inode? {
      let i = HeadView.position(ino)
      guard i < byIno.count, let inode = byIno[i], inode.ino == ino else { return nil }
      return inode
    }
    /// Every inode present, by increasing number.
    var values: some Sequence<Inode> { byIno.lazy.compactMap { $0 } }
    /// Every inode number present, ascending.
    var keys: some Sequence<UInt32> { byIno.lazy.compactMap { $0?.ino } }
    /// Positions (`HeadView.position`), for splitting the table into ranges; each holds one inode
    /// or none, in the order of `values`.
    var positions: Range<Int> { byIno.indices }
    func inode(atPosition p: Int) -> Inode? { byIno[p] }
  }

  var inodes = InodeTable()
  /// 0 where the head has no inode of that number.
  private var links: [UInt32] = []
  private var parents: [UInt32] = []
  /// The objects of `inodes`, kept only when several heads are packed (whether two heads share an
  /// inode object); nil for a single head, where every object belongs to it.
  private(set) var objects: Set<ObjectIdentifier>?

  /// Inode numbers present, ascending.
  var order: some Sequence<UInt32> { inodes.keys }

  func nlink(_ ino: UInt32) -> UInt32 {
    let i = HeadView.position(ino)
    return i < links.count && links[i] != 0 ? links[i] : 1
  }
  func parent(_ ino: UInt32) -> UInt32 {
    let i = HeadView.position(ino)
    return i < parents.count && parents[i] != 0 ? parents[i] : ino
  }
  /// Whether `id` is an object of this head.
  func holds(_ id: ObjectIdentifier) -> Bool { objects?.contains(id) ?? true }

  /// `inoLimit`: an upper bound of the inode numbers (the arrays grow past it if needed).
  init(root: Inode, inoLimit: UInt32 = 0, trackObjects: Bool = true) throws {
    let n = HeadView.position(max(inoLimit, root.ino)) + 1
    inodes.byIno = [Inode?](repeating: nil, count: n)
    links = [UInt32](repeating: 0, count: n)
    parents = [UInt32](repeating: 0, count: n)
    var stack: [Inode] = [root]
    insert(root, parent: root.ino)
    while let dir = stack.popLast() {
      var subdirs: UInt32 = 0
      // Sorted, so the parent of a hard-linked file is the same in every run.
      for (name, child) in dir.children {
        let position = HeadView.position(child.ino)
        if position < inodes.byIno.count, let existing = inodes.byIno[position] {
          guard existing === child else {
            throw RoseFSError.internalInvariant(
              "inodes \(existing.ino) and \(child.ino) ('\(name)') overlap in their page")
          }
          guard child.kind != .directory else {
            throw RoseFSError.invalidOption("directory '\(name)' appears twice in the tree")
          }
          links[HeadView.position(child.ino)] += 1
          continue
        }
        insert(child, parent: dir.ino)
        if child.kind == .directory {
          subdirs += 1
          stack.append(child)
        } else {
          links[HeadView.position(child.ino)] = 1
        }
      }
      links[HeadView.position(dir.ino)] = 2 + subdirs
    }
    if trackObjects {
      var set = Set<ObjectIdentifier>(minimumCapacity: inodes.count)
      for inode in inodes.values { set.insert(ObjectIdentifier(inode)) }
      objects = set
    }
  }

  private mutating func insert(_ inode: Inode, parent: UInt32) {
    let i = HeadView.position(inode.ino)
    if i >= links.count {
      let grow = max(i + 1, links.count * 2) - links.count
      inodes.byIno.append(contentsOf: repeatElement(nil, count: grow))
      links.append(contentsOf: repeatElement(0, count: grow))
      parents.append(contentsOf: repeatElement(0, count: grow))
    }
    inodes.byIno[i] = inode
    inodes.count += 1
    parents[i] = parent
  }
}
