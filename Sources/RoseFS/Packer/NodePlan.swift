/// Packer phase "node plan" (FORMAT.md sections 7 to 10): each inode's content and xattr forms, and
/// the tree and xattr nodes they need, numbered with nids after the inode pages.
extension ImageBuilder {
  struct AuxNodes {
    var nodes: [PendingNode] = []
    var inline: [UInt8] = []
    var flags: UInt16 = 0
    var nitems: UInt32 = 0
    var treeRoot: UInt32 = 0
    var treeDepth: UInt8 = 0
    var xattrInline: [UInt8] = []
    var xattrNid: UInt32 = 0
    var size: UInt64 = 0
    /// Slots the inode's own record takes (its number may reserve more, for another head's copy).
    var nslots = 1

    /// Same nodes apart from nid numbering: compare bodies with the header's owner field masked.
    func sameNodes(as other: AuxNodes) -> Bool {
      guard nodes.count == other.nodes.count, inline == other.inline, flags == other.flags,
        xattrInline == other.xattrInline, treeDepth == other.treeDepth
      else { return false }
      let base = nodes.first?.nid ?? 0
      let otherBase = other.nodes.first?.nid ?? 0
      for (a, b) in zip(nodes, other.nodes) {
        guard a.nid - base == b.nid - otherBase else { return false }
        if a.bytes[0x18...] != b.bytes[0x18...]
          && !sameInteriorModuloNids(a.bytes, b.bytes, shift: Int64(base) - Int64(otherBase))
        {
          return false
        }
      }
      return true
    }

    /// The forms with the node bytes dropped (one head keeps nids only: `NodePlan.rebuild`).
    func withoutNodeBytes() -> AuxNodes {
      var a = self
      a.nodes = nodes.map { PendingNode(nid: $0.nid, bytes: []) }
      return a
    }

    /// Forms built from nid 0 and without their node bytes (`withoutNodeBytes`), with every nid
    /// moved up by `base`: the forms `buildAux` gives from nid `base`, apart from the node bytes.
    /// Only the tree root and the xattr node hold nids outside the node bytes.
    func numbered(from base: UInt32) -> AuxNodes {
      var a = self
      for i in a.nodes.indices { a.nodes[i].nid += base }
      if flags & (InodeFlag.dirTree | InodeFlag.extentTree) != 0 { a.treeRoot += base }
      if flags & InodeFlag.xattrNode != 0 { a.xattrNid += base }
      return a
    }

    /// Interior nodes hold child nids, which differ by the numbering shift between the two sets.
    private func sameInteriorModuloNids(_ a: [UInt8], _ b: [UInt8], shift: Int64) -> Bool {
      let ra = ByteReader(a)
      let rb = ByteReader(b)
      guard ra.u8(0x1A) > 0, ra.u8(0x1A) == rb.u8(0x1A), ra.u16(0x18) == rb.u16(0x18) else {
        return false
      }
      let width = ra.u32(0) == Magic.dirNode ? 12 : 8
      let keyWidth = width - 4
      for i in 0..<Int(ra.u16(0x18)) {
        let o = 0x20 + i * width
        guard ra.slice(o, keyWidth) == rb.slice(o, keyWidth),
          Int64(ra.u32(o + keyWidth)) - Int64(rb.u32(o + keyWidth)) == shift
        else { return false }
      }
      return true
    }
  }

  /// Decides the storage form of an inode's content and xattrs; builds its tree and xattr nodes.
  func buildAux(_ inode: Inode, hashSeed: [UInt8], nextNid: inout UInt32) throws -> AuxNodes {
    var a = AuxNodes()
    var localNid = nextNid
    let alloc = { () -> UInt32 in
      localNid += 1
      return localNid - 1
    }
    let form = try Self.slotForm(inode)
    a.nslots = form.nslots
    let capacity = InodeSlots.capacity(nslots: form.nslots)
    switch inode.kind {
    case .directory:
      let children = inode.children.map { ($0.key, $0.value.ino, $0.value.kind.rawValue) }
      let entries = sortedDirents(children, seed: hashSeed)
      a.nitems = UInt32(entries.count)
      // Measured before encoding: a large directory's inline form would be thrown away.
      let inlineSize = entries.reduce(0) { $0 + InlineDirent.size + $1.name.count }
      if inlineSize <= RoseLayout.maxInline {
        a.flags = InodeFlag.inlineDentry
        a.inline = encodeInlineDirents(entries)
        a.size = UInt64(a.inline.count)
      } else {
        let leaves = directoryLeaves(entries)
        let loader = BTreeBulkLoader(
          magic: Magic.dirNode, ownerIno: inode.ino, cpVer: cpVer, keyWidth: 8)
        let t = loader.build(leaves: leaves, allocateNid: alloc)
        a.nodes = t.nodes
        a.treeRoot = t.root
        a.treeDepth = t.depth
        a.flags = InodeFlag.dirTree
        a.size = UInt64(leaves.count) * UInt64(RoseLayout.blockSize)
      }
    case .regular, .symlink:
      let c = inode.content
      a.size = c.size
      if c.size > RoseLayout.maxFileSize {
        throw RoseFSError.fileTooLarge(path: "inode \(inode.ino)", size: c.size)
      }
      if let bytes = c.inline {
        a.flags = InodeFlag.inlineData
        a.inline = bytes
      } else {
        let ext = encodeExtents(c.extents)
        a.nitems = UInt32(c.extents.count)
        if ext.count <= RoseLayout.maxInline {
          a.flags = InodeFlag.extents
          a.inline = ext
        } else {
          let loader = BTreeBulkLoader(
            magic: Magic.extentNode, ownerIno: inode.ino, cpVer: cpVer, keyWidth: 4)
          let t = loader.build(leaves: extentLeaves(c.extents), allocateNid: alloc)
          a.nodes = t.nodes
          a.treeRoot = t.root
          a.treeDepth = t.depth
          a.flags = InodeFlag.extentTree
        }
        if c.tail != nil { a.flags |= InodeFlag.tail }
      }
    default:
      break
    }
    guard a.inline.count <= capacity else {
      throw RoseFSError.internalInvariant(
        "inode \(inode.ino) (\(inode.kind), \(a.size) bytes) has \(a.inline.count) inline bytes"
      )
    }
    if !inode.xattrs.isEmpty {
      let x = try encodeXattrRecords(inode.xattrs, path: "inode \(inode.ino)")
      if form.xattrsInline {
        a.xattrInline = x
      } else if x.count <= RoseLayout.maxXattrBytes {
        let nid = alloc()
        let loader = BTreeBulkLoader(
          magic: Magic.xattrNode, ownerIno: inode.ino, cpVer: cpVer, keyWidth: 8)
        a.nodes.append(
          PendingNode(
            nid: nid, bytes: loader.block(nid: nid, level: 0, count: inode.xattrs.count, body: x)))
        a.xattrNid = nid
        a.flags |= InodeFlag.xattrNode
      } else {
        throw RoseFSError.xattrsTooLarge(path: "inode \(inode.ino)", bytes: x.count)
      }
    }
    nextNid = localNid
    return a
  }
}

/// What `planNodes` decided: the distinct inode objects of all heads in a deterministic order, the
/// forms of the objects that own tree or xattr nodes, and those nodes (with the objects owning them).
///
/// Memory (issue 10): the forms of the other inodes (almost all of them) are not kept: `form(of:)`
/// builds them again when their page is written. That is exact because `buildAux` is deterministic
/// and allocates nids only for nodes, so an inode without nodes comes out the same at any nid.
struct NodePlan {
  /// With several heads only (one head's objects are its view's inodes: no copy, 8 bytes an entry).
  var objects: [Inode] = []
  /// Forms of the objects with nodes (their own or shared), by object.
  var auxWithNodes: [ObjectIdentifier: ImageBuilder.AuxNodes] = [:]
  /// Nodes to write, by nid, with their first owner.
  var nodes: [PendingNode] = []
  var nodeOwner: [ObjectIdentifier] = []
  /// Other objects (a snapshot's copy of a directory) sharing a node, by nid.
  var nodeSharers: [UInt32: [ObjectIdentifier]] = [:]
  /// With one head, `nodes` hold nids only (no bytes): the owners, in nid order, with the first nid
  /// their `buildAux` started from, so `writeTreeNodes` builds each owner's nodes again just before
  /// writing them. Memory (issue 10): holding every directory's 4 KiB tree blocks from the plan to
  /// the write was 29 bytes per entry in directories of 1000.
  var rebuild: [(inode: Inode, startNid: UInt32)] = []
  var firstNodeNid: UInt32 = 0
  var nextFreeNid: UInt32 = 0
  var hashSeed: [UInt8] = []
}

extension ImageBuilder {
  /// The forms of `inode` as `planNodes` decided them.
  func form(of inode: Inode, in plan: NodePlan) throws -> AuxNodes {
    if let a = plan.auxWithNodes[ObjectIdentifier(inode)] { return a }
    var probe = plan.nextFreeNid
    let a = try buildAux(inode, hashSeed: plan.hashSeed, nextNid: &probe)
    guard a.nodes.isEmpty else {
      throw RoseFSError.internalInvariant("inode \(inode.ino) gained nodes after the node plan")
    }
    return a
  }

  /// Packer phase "node plan": nids after the inode pages for every tree and xattr node. Objects with
  /// the same ino (a snapshot's copy of a directory) whose nodes come out identical share them: same
  /// nids, written once.
  func planNodes(views: [HeadView], hashSeed: [UInt8]) throws -> NodePlan {
    views.count == 1
      ? try planOneHead(views[0], hashSeed: hashSeed)
      : try planSeveralHeads(views, hashSeed: hashSeed)
  }

  /// Inode positions per chunk of `planNodes` on two cores: a few directories per chunk when they
  /// are spread among their files, and about a hundred rounds for 200,000 inodes.
  static let planChunk = 1024

  /// One head: its objects are distinct (HeadView refuses two objects with one number) and are the
  /// view's inodes, read in place. It shares nothing, so each inode's forms are independent of the
  /// others': they are built on both cores with nids from 0, then given their nids in inode order on
  /// this thread. Only the nids are kept; `writeTreeNodes` builds the bytes again.
  private func planOneHead(_ view: HeadView, hashSeed: [UInt8]) throws -> NodePlan {
    var plan = NodePlan()
    plan.hashSeed = hashSeed
    let perPage = UInt32(RoseLayout.inodesPerPage)
    plan.firstNodeNid = (allocatedInoLimit + perPage - 1) / perPage
    var nextNid = plan.firstNodeNid
    let table = view.inodes
    try TwoLanes.run(
      count: table.positions.count, chunk: Self.planChunk,
      work: { range in
        var withNodes: [(Inode, AuxNodes, UInt32)] = []
        for p in range {
          guard let inode = table.inode(atPosition: p) else { continue }
          var used: UInt32 = 0
          let a = try buildAux(inode, hashSeed: hashSeed, nextNid: &used)
          // Only inodes with nodes are kept (memory: most inodes have none).
          if !a.nodes.isEmpty { withNodes.append((inode, a.withoutNodeBytes(), used)) }
        }
        return withNodes
      },
      consume: { withNodes in
        for (inode, a, used) in withNodes {
          let id = ObjectIdentifier(inode)
          plan.rebuild.append((inode, nextNid))
          let kept = a.numbered(from: nextNid)
          nextNid += used
          plan.auxWithNodes[id] = kept
          for n in kept.nodes {
            plan.nodes.append(n)
            plan.nodeOwner.append(id)
          }
        }
      })
    plan.nextFreeNid = nextNid
    return plan
  }

  /// Several heads: each object once, in a list; objects of one number whose nodes come out the
  /// same share them, which compares node bytes, so they are held until written.
  private func planSeveralHeads(_ views: [HeadView], hashSeed: [UInt8]) throws -> NodePlan {
    var plan = NodePlan()
    plan.hashSeed = hashSeed
    var seen = Set<ObjectIdentifier>()
    for v in views {
      for inode in v.inodes.values where seen.insert(ObjectIdentifier(inode)).inserted {
        plan.objects.append(inode)
      }
    }
    let perPage = UInt32(RoseLayout.inodesPerPage)
    plan.firstNodeNid = (allocatedInoLimit + perPage - 1) / perPage
    var nextNid = plan.firstNodeNid
    var auxByIno: [UInt32: [(AuxNodes, [ObjectIdentifier])]] = [:]
    func consider(_ inode: Inode) throws {
      let id = ObjectIdentifier(inode)
      var probe = nextNid
      let a = try buildAux(inode, hashSeed: hashSeed, nextNid: &probe)
      // Only inodes with nodes are kept or shared (memory: most inodes have none).
      guard !a.nodes.isEmpty else { return }
      if let candidates = auxByIno[inode.ino],
        let match = candidates.firstIndex(where: { $0.0.sameNodes(as: a) })
      {
        let shared = candidates[match].0
        plan.auxWithNodes[id] = shared
        auxByIno[inode.ino]?[match].1.append(id)
        for n in shared.nodes { plan.nodeSharers[n.nid, default: []].append(id) }
        return
      }
      auxByIno[inode.ino, default: []].append((a, [id]))
      nextNid = probe
      plan.auxWithNodes[id] = a
      for n in a.nodes {
        plan.nodes.append(n)
        plan.nodeOwner.append(id)
      }
    }
    for inode in plan.objects { try consider(inode) }
    plan.nextFreeNid = nextNid
    return plan
  }
}
