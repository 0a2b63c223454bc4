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
struct HeadView {
  var inodes: [UInt32: Inode] = [:]
  var order: [UInt32] = []
  var nlink: [UInt32: UInt32] = [:]
  var parent: [UInt32: UInt32] = [:]
  /// The objects of `inodes` (whether two heads share an inode object).
  var objects = Set<ObjectIdentifier>()

  init(root: Inode) throws {
    var stack: [Inode] = [root]
    inodes[root.ino] = root
    parent[root.ino] = root.ino
    while let dir = stack.popLast() {
      var subdirs: UInt32 = 0
      for (name, child) in dir.children.sorted(by: { $0.key < $1.key }) {
        if let existing = inodes[child.ino] {
          guard existing === child else {
            throw RoseFSError.internalInvariant(
              "two inodes numbered \(child.ino) ('\(name)')")
          }
          guard child.kind != .directory else {
            throw RoseFSError.invalidOption("directory '\(name)' appears twice in the tree")
          }
          nlink[child.ino, default: 1] += 1
          continue
        }
        inodes[child.ino] = child
        parent[child.ino] = dir.ino
        if child.kind == .directory {
          subdirs += 1
          stack.append(child)
        } else {
          nlink[child.ino] = 1
        }
      }
      nlink[dir.ino] = 2 + subdirs
    }
    order = inodes.keys.sorted()
    objects.reserveCapacity(inodes.count)
    for inode in inodes.values { objects.insert(ObjectIdentifier(inode)) }
  }
}
