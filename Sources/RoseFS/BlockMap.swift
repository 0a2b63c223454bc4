// The owner of every block of a volume: what `rosepack map` draws. Built on the same walk as fsck
// (FsckRun: every head's reachable blocks and what each one is), so the map and fsck never disagree
// about who owns a block.

/// What a block of the volume is (FORMAT.md sections 2 to 10).
public enum BlockOwnerKind: UInt8, CaseIterable, Codable, Sendable {
  case superblock, checkpoint, reserved
  case inodePage, directoryNode, extentNode, xattrNode
  case tail, fileData
  case nat, vbm, ssa, mapIndex
  /// A main-area block live in no head.
  case free
  /// Past the main area (the last partial segment), never used.
  case unused

  public var label: String {
    switch self {
    case .superblock: "superblock"
    case .checkpoint: "checkpoint slot"
    case .reserved: "reserved (blocks 4-15)"
    case .inodePage: "inode page"
    case .directoryNode: "directory tree node"
    case .extentNode: "extent tree node"
    case .xattrNode: "xattr node"
    case .tail: "tail block"
    case .fileData: "file data"
    case .nat: "NAT"
    case .vbm: "VBM"
    case .ssa: "SSA"
    case .mapIndex: "meta-file map index"
    case .free: "free"
    case .unused: "past the main area"
    }
  }
}

/// One block's owner: its kind, the heads it is live in (bit h for head h), and for data blocks the
/// file (inode and logical block), for nodes the nid.
public struct BlockOwner: Equatable, Sendable {
  public var kind: BlockOwnerKind
  public var headMask: UInt8
  /// Data: the inode; inode pages, tree and xattr nodes: the nid; meta-file blocks: the index.
  public var id: UInt32
  /// Data: the logical block in the file.
  public var index: UInt32
  public init(kind: BlockOwnerKind, headMask: UInt8 = 0, id: UInt32 = 0, index: UInt32 = 0) {
    self.kind = kind
    self.headMask = headMask
    self.id = id
    self.index = index
  }
  /// Live in more than one head (shared by A and B).
  public var isShared: Bool { headMask & (headMask &- 1) != 0 }
}

/// Owners of every block of one volume, plus paths for the inodes that own data.
public struct BlockMap: Sendable {
  public var blockCount: Int
  public var owners: [BlockOwner]
  public var headNames: [String]
  /// A path per inode that owns data or an inode slot, from the first head that reaches it.
  public var paths: [UInt32: String]
  /// Problems the walk met (a damaged image is still mapped as far as it can be walked).
  public var problems: [String]

  /// Walks the volume. Throws only when there is no superblock or checkpoint to start from.
  public static func build(image: ImageFile) throws -> BlockMap {
    let reader = try ImageReader(image: image)
    let sb = reader.superblock
    let run = FsckRun(image: image, verifyData: false)
    run.run()
    let count = Int(sb.blockCount)
    var owners = Array(repeating: BlockOwner(kind: .unused), count: count)
    for b in 0..<min(count, Int(sb.mainBlkaddr)) {
      switch b {
      case 0, 1: owners[b].kind = .superblock
      case Int(sb.cpBlkaddr)..<Int(sb.cpBlkaddr) + RoseLayout.checkpointSlots:
        owners[b].kind = .checkpoint
      default: owners[b].kind = .reserved
      }
    }
    let mainEnd = min(count, Int(sb.mainBlkaddr) + Int(sb.mainBlocks))
    if Int(sb.mainBlkaddr) < mainEnd {
      for b in Int(sb.mainBlkaddr)..<mainEnd { owners[b].kind = .free }
    }
    for (h, uses) in run.uses.enumerated() {
      for (a, u) in uses where Int(a) < count {
        var o = owners[Int(a)]
        o.headMask |= UInt8(1) << UInt8(min(h, 7))
        if o.kind == .free {
          switch u {
          case .data(let ino, let lblk):
            o.kind = .fileData
            o.id = ino
            o.index = lblk
          case .tail: o.kind = .tail
          case .inodePage(let nid):
            o.kind = .inodePage
            o.id = nid
          case .dirNode(let nid):
            o.kind = .directoryNode
            o.id = nid
          case .extentNode(let nid):
            o.kind = .extentNode
            o.id = nid
          case .xattrNode(let nid):
            o.kind = .xattrNode
            o.id = nid
          case .meta(let type, _, let level, let index):
            o.kind =
              level > 0
              ? .mapIndex : type == MetaType.nat ? .nat : type == MetaType.vbm ? .vbm : .ssa
            o.id = index
          }
        }
        owners[Int(a)] = o
      }
    }
    // Paths: a breadth-first walk of every head's directories (first name found wins).
    var paths: [UInt32: String] = [:]
    for h in 0..<reader.checkpoint.heads.count {
      let root = reader.checkpoint.heads[h].rootIno
      if paths[root] == nil { paths[root] = "/" }
      var queue: [(UInt32, String)] = [(root, "")]
      var seen: Set<UInt32> = [root]
      var next = 0
      while next < queue.count {
        let (dir, prefix) = queue[next]
        next += 1
        guard let entries = try? reader.entries(ofDirectory: dir, head: h) else { continue }
        for e in entries {
          let path = prefix + "/" + String(decoding: e.name, as: UTF8.self)
          if paths[e.ino] == nil { paths[e.ino] = path }
          if e.type == 2, seen.insert(e.ino).inserted { queue.append((e.ino, path)) }
        }
      }
    }
    return BlockMap(
      blockCount: count, owners: owners,
      headNames: reader.checkpoint.heads.map { $0.nameString }, paths: paths,
      problems: run.problems)
  }

  /// Heads a block is live in, by name ("a+b").
  public func headList(_ mask: UInt8) -> String {
    var names: [String] = []
    for (h, n) in headNames.enumerated() where h < 8 && mask & (1 << UInt8(h)) != 0 {
      names.append(n.isEmpty ? "head \(h)" : n)
    }
    return names.joined(separator: "+")
  }

  /// One line saying what block `b` is: "block 123: file data /etc/passwd (ino 42) block 0, heads a+b".
  public func describe(_ b: Int) -> String {
    guard b >= 0, b < blockCount else { return "block \(b): outside the volume" }
    let o = owners[b]
    var s = "block \(b): \(o.kind.label)"
    switch o.kind {
    case .fileData:
      s += " \(paths[o.id] ?? "?") (ino \(o.id)) block \(o.index)"
    case .inodePage:
      let perPage = UInt32(RoseLayout.inodesPerPage)
      s += " nid \(o.id) (ino \(o.id * perPage)..\(o.id * perPage + perPage - 1))"
    case .directoryNode, .extentNode, .xattrNode:
      s += " nid \(o.id)"
    case .nat, .vbm, .ssa, .mapIndex:
      s += " \(o.id)"
    default: break
    }
    if o.headMask != 0 { s += ", live in \(headList(o.headMask))" }
    return s
  }
}
