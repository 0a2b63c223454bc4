// Small value types of the read-write engine: a validity bitmap, the in-memory map of one meta-file,
// the inode slot encoder, and the engine's in-memory inode.

/// One bit per main-area block (FORMAT.md 6.3), held in 64-bit words.
struct EngineBitmap: Equatable {
  var words: [UInt64]
  let count: Int
  init(count: Int) {
    self.count = count
    words = [UInt64](repeating: 0, count: (count + 63) / 64)
  }
  @inline(__always) func get(_ k: Int) -> Bool { words[k >> 6] & (1 << UInt64(k & 63)) != 0 }
  @inline(__always) mutating func set(_ k: Int) { words[k >> 6] |= 1 << UInt64(k & 63) }
  @inline(__always) mutating func clear(_ k: Int) { words[k >> 6] &= ~(1 << UInt64(k & 63)) }
  var population: Int { words.reduce(0) { $0 + $1.nonzeroBitCount } }
  /// Byte `i` of the on-disk bitmap (bit k is bit k % 8 of byte k / 8).
  func byte(_ i: Int) -> UInt8 {
    guard i / 8 < words.count else { return 0 }
    return UInt8(truncatingIfNeeded: words[i / 8] >> UInt64((i % 8) * 8))
  }
  mutating func setByte(_ i: Int, _ v: UInt8) {
    guard i / 8 < words.count else { return }
    let shift = UInt64((i % 8) * 8)
    words[i / 8] = (words[i / 8] & ~(0xFF << shift)) | UInt64(v) << shift
  }
}

/// The in-memory map of one meta-file (FORMAT.md 6.1): content block addresses (0 = hole) and the
/// index blocks above them, as last written.
struct EngineMetaFile {
  let type: UInt8
  /// The head named in index blocks' `aux` and in SSA owners (0 for the SSA).
  var head: Int
  var nblocks: Int
  var leaves: [UInt32]
  /// Index blocks as stored: level, index within level, address.
  var index: [(level: UInt8, index: UInt32, addr: UInt32)] = []
  /// Content blocks whose bytes changed since they were last written.
  var dirty = Set<Int>()
  /// Content blocks already given a new address in the checkpoint being written.
  var relocated = Set<Int>()
  /// The index above the content blocks must be written again.
  var indexStale = false
  /// Index addresses handed out in this checkpoint, in MapTree.build order.
  var newIndexAddrs: [UInt32] = []

  var depth: Int { MapTree.depth(nblocks: nblocks) }

  func root() -> MetaRoot {
    if depth == 0 {
      return MetaRoot(root: leaves.first ?? 0, nblocks: UInt32(nblocks), depth: 0)
    }
    let top = index.first { Int($0.level) == depth && $0.index == 0 }
    return MetaRoot(root: top?.addr ?? 0, nblocks: UInt32(nblocks), depth: UInt8(depth))
  }

  /// Every stored block of the map (content and index).
  var allAddresses: [UInt32] { leaves.filter { $0 != 0 } + index.map { $0.addr } }
}

extension InodeRecord {
  /// An empty record for a new inode.
  static func fresh(ino: UInt32, mode: UInt16, uid: UInt32, gid: UInt32, time: Timestamp)
    -> InodeRecord
  {
    InodeRecord(
      ino: ino, mode: mode, uid: uid, gid: gid, atime: time, mtime: time, ctime: time)
  }
}

/// Where the last partial block of a file in block form is.
enum PartialBlock: Equatable {
  /// The size is a multiple of 4096 (or the file is inline).
  case none
  /// A fragment of a tail block, as stored.
  case tail(block: UInt32, offset: UInt16, length: UInt16)
  /// A full data block at lblk `size / 4096` (a tail longer than `tail_max`).
  case block(UInt32)
  /// Not stored: reads as zeros.
  case hole
  /// Changed since the last checkpoint: placed when the checkpoint packs tails.
  case memory([UInt8])
}

/// An inode as the engine holds it while it is in use: the slot's fields and its decoded content.
final class EngineInode {
  var rec: InodeRecord
  let kind: FileKind
  /// Regular files and symlinks in INLINE_DATA form: the content.
  var inline: [UInt8] = []
  /// Regular files and symlinks: the content is `inline` (INLINE_DATA), not blocks and a tail.
  var inlineData = false
  /// Slots the inode takes in its page as last written (0: not written yet); `rec.nslots` is what
  /// it holds now, claimed from the free slot pool (FORMAT.md 13.2).
  var diskSlots = 0
  /// Full blocks (lblk < size / 4096): logical block to address.
  var blocks: [UInt32: UInt32] = [:]
  var partial: PartialBlock = .none
  /// Directories: name to (ino, entry type).
  var entries: [[UInt8]: (ino: UInt32, type: UInt8)] = [:] {
    didSet { leafCache = nil }
  }
  /// Directories: bytes the entries take in tree leaves (16 + name each), kept for space estimates.
  var entryBytes = 0
  /// Directories: the entries in key order in the leaves the next checkpoint writes, built when
  /// needed and then kept up to date entry by entry.
  var leafCache: DirectoryLeafSet?
  var xattrs: [Xattr] = []
  /// Nids of this inode's tree and xattr nodes as the head's NAT has them now.
  var nodeNids: [UInt32] = []
  var dirty = false
  var deleted = false
  /// Lost a name in its `parent` directory while keeping another: `parent` is checked before the
  /// inode is written.
  var parentUnverified = false

  init(rec: InodeRecord, kind: FileKind) {
    self.rec = rec
    self.kind = kind
  }

  var isInlineForm: Bool { (kind == .regular || kind == .symlink) && inlineData }

  /// The largest size this file keeps inline: the `i_u` of the slots an inline file already holds
  /// (0 for a new file's bare core: the engine grows files into blocks and a tail, not into more
  /// slots).
  var inlineLimit: UInt64 {
    UInt64(inlineData ? rec.inlineCapacity : 0)
  }
}
