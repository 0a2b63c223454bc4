#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

// The contract between the read-write engine (FORMAT.md section 13) and its callers: the FUSE mount,
// `rosepack update`, the model-based tests and the heat benchmark. Operations are keyed by inode number,
// as FUSE's low-level API is, so a caller keeps no paths. Every error is a POSIX errno, because that is
// what a mount replies with and what the tests compare against a host directory.

/// A failed operation: the errno a POSIX filesystem returns for it, and for corruption or I/O failures
/// a sentence saying what and where.
public struct EngineError: Error, Equatable, CustomStringConvertible, Sendable {
  public var errno: Int32
  public var detail: String
  public init(_ errno: Int32, _ detail: String = "") {
    self.errno = errno
    self.detail = detail
  }
  public var description: String {
    let reason = String(cString: strerror(errno))
    return detail.isEmpty ? reason : "\(detail): \(reason)"
  }
  public static func noEntry(_ d: String = "") -> EngineError { EngineError(ENOENT, d) }
  public static func exists(_ d: String = "") -> EngineError { EngineError(EEXIST, d) }
  public static func noSpace(_ d: String = "") -> EngineError { EngineError(ENOSPC, d) }
  /// The image is damaged (EUCLEAN, as Linux filesystems report structure corruption).
  public static func corrupt(_ d: String) -> EngineError { EngineError(117, d) }
  public static func io(_ d: String, errno e: Int32 = EIO) -> EngineError { EngineError(e, d) }
}

/// What `stat` shows of an inode.
public struct NodeAttributes: Equatable, Sendable {
  public var ino: UInt32
  /// File type (S_IFMT bits) and permission bits.
  public var mode: UInt16
  public var nlink: UInt32
  public var uid: UInt32
  public var gid: UInt32
  public var size: UInt64
  /// 512-byte units allocated to the file's own data blocks.
  public var blocks: UInt64
  public var atime: Timestamp
  public var mtime: Timestamp
  public var ctime: Timestamp
  public var rdevMajor: UInt32
  public var rdevMinor: UInt32
  public init(
    ino: UInt32, mode: UInt16, nlink: UInt32, uid: UInt32, gid: UInt32, size: UInt64,
    blocks: UInt64, atime: Timestamp, mtime: Timestamp, ctime: Timestamp, rdevMajor: UInt32 = 0,
    rdevMinor: UInt32 = 0
  ) {
    self.ino = ino
    self.mode = mode
    self.nlink = nlink
    self.uid = uid
    self.gid = gid
    self.size = size
    self.blocks = blocks
    self.atime = atime
    self.mtime = mtime
    self.ctime = ctime
    self.rdevMajor = rdevMajor
    self.rdevMinor = rdevMinor
  }
  public var kind: FileKind? { FileKind(modeBits: UInt32(mode)) }
}

/// A `setattr`: each field that is not nil is changed. `size` truncates or extends (with a hole).
public struct AttributeChanges: Equatable, Sendable {
  /// Permission bits only (07777); the type never changes.
  public var permissions: UInt16?
  public var uid: UInt32?
  public var gid: UInt32?
  public var size: UInt64?
  public var atime: Timestamp?
  public var mtime: Timestamp?
  /// Set explicitly (an exported tree's ctime); otherwise every change sets ctime to the engine's clock.
  public var ctime: Timestamp?
  public init(
    permissions: UInt16? = nil, uid: UInt32? = nil, gid: UInt32? = nil, size: UInt64? = nil,
    atime: Timestamp? = nil, mtime: Timestamp? = nil, ctime: Timestamp? = nil
  ) {
    self.permissions = permissions
    self.uid = uid
    self.gid = gid
    self.size = size
    self.atime = atime
    self.mtime = mtime
    self.ctime = ctime
  }
}

/// One directory entry as readdir returns it. `cookie` is the entry's key (FORMAT.md section 8:
/// `hash << 32 | seq`): stable while the entry exists, so a readdir resumed after changes neither
/// repeats nor skips an entry that stayed.
public struct DirectoryListing: Equatable, Sendable {
  public var name: [UInt8]
  public var ino: UInt32
  public var kind: FileKind
  public var cookie: UInt64
  public init(name: [UInt8], ino: UInt32, kind: FileKind, cookie: UInt64) {
    self.name = name
    self.ino = ino
    self.kind = kind
    self.cookie = cookie
  }
}

/// `statfs`, in 4096-byte blocks. `availableBlocks` is what user writes may still take (the reserve of
/// FORMAT.md 13.3 excluded); `freeBlocks` includes the reserve.
public struct VolumeStatistics: Equatable, Sendable {
  public var blockSize: UInt32
  public var totalBlocks: UInt64
  public var freeBlocks: UInt64
  public var availableBlocks: UInt64
  public var totalInodes: UInt64
  public var freeInodes: UInt64
  public var nameMax: UInt32
  public init(
    blockSize: UInt32, totalBlocks: UInt64, freeBlocks: UInt64, availableBlocks: UInt64,
    totalInodes: UInt64, freeInodes: UInt64, nameMax: UInt32 = 255
  ) {
    self.blockSize = blockSize
    self.totalBlocks = totalBlocks
    self.freeBlocks = freeBlocks
    self.availableBlocks = availableBlocks
    self.totalInodes = totalInodes
    self.freeInodes = freeInodes
    self.nameMax = nameMax
  }
}

/// renameat2 flags.
public struct RenameFlags: OptionSet, Sendable {
  public let rawValue: UInt32
  public init(rawValue: UInt32) { self.rawValue = rawValue }
  /// RENAME_NOREPLACE: EEXIST if the target exists.
  public static let noReplace = RenameFlags(rawValue: 1)
  /// RENAME_EXCHANGE: swap the two entries atomically.
  public static let exchange = RenameFlags(rawValue: 2)
}

/// setxattr flags.
public enum XattrMode: Sendable {
  case createOrReplace
  /// XATTR_CREATE: EEXIST if the name exists.
  case create
  /// XATTR_REPLACE: ENODATA if the name does not exist.
  case replace
}

/// The POSIX surface of one mounted subvolume, keyed by inode number (FUSE low-level style).
/// Implemented by the read-write engine; a read-only open answers every change with EROFS.
/// Names are bytes (any byte but `/` and NUL, 1..255 bytes). Times not given are the engine's clock.
public protocol VolumeOperations: AnyObject {
  /// Inode number of the subvolume's root directory.
  var rootIno: UInt32 { get }
  var isReadOnly: Bool { get }

  func getattr(_ ino: UInt32) throws(EngineError) -> NodeAttributes
  func lookup(parent: UInt32, name: [UInt8]) throws(EngineError) -> NodeAttributes
  /// Entries with a cookie greater than `cookie` (0: from the start), at most `limit`, in cookie order.
  func readdir(_ ino: UInt32, after cookie: UInt64, limit: Int) throws(EngineError)
    -> [DirectoryListing]

  /// Regular files, devices, fifos and sockets: `mode` carries the type bits.
  func mknod(
    parent: UInt32, name: [UInt8], mode: UInt16, uid: UInt32, gid: UInt32, rdevMajor: UInt32,
    rdevMinor: UInt32
  ) throws(EngineError) -> NodeAttributes
  func mkdir(parent: UInt32, name: [UInt8], mode: UInt16, uid: UInt32, gid: UInt32)
    throws(EngineError) -> NodeAttributes
  func symlink(parent: UInt32, name: [UInt8], target: [UInt8], uid: UInt32, gid: UInt32)
    throws(EngineError) -> NodeAttributes
  func link(_ ino: UInt32, newParent: UInt32, newName: [UInt8]) throws(EngineError)
    -> NodeAttributes
  func unlink(parent: UInt32, name: [UInt8]) throws(EngineError)
  func rmdir(parent: UInt32, name: [UInt8]) throws(EngineError)
  func rename(
    parent: UInt32, name: [UInt8], newParent: UInt32, newName: [UInt8], flags: RenameFlags
  ) throws(EngineError)
  func readlink(_ ino: UInt32) throws(EngineError) -> [UInt8]

  /// Up to `count` bytes from `offset` (fewer at end of file; holes read as zeros).
  func read(_ ino: UInt32, offset: UInt64, count: Int) throws(EngineError) -> [UInt8]
  /// Writes all of `bytes` at `offset`, extending the file (with a hole) when it starts past the end.
  func write(_ ino: UInt32, offset: UInt64, bytes: UnsafeRawBufferPointer) throws(EngineError)
  func setattr(_ ino: UInt32, _ changes: AttributeChanges) throws(EngineError) -> NodeAttributes
  /// Allocates blocks for the range (mode 0), growing the size unless `keepSize`.
  func fallocate(_ ino: UInt32, offset: UInt64, length: UInt64, keepSize: Bool) throws(EngineError)

  func getxattr(_ ino: UInt32, name: [UInt8]) throws(EngineError) -> [UInt8]
  func listxattr(_ ino: UInt32) throws(EngineError) -> [[UInt8]]
  func setxattr(_ ino: UInt32, name: [UInt8], value: [UInt8], mode: XattrMode) throws(EngineError)
  func removexattr(_ ino: UInt32, name: [UInt8]) throws(EngineError)

  func statfs() throws(EngineError) -> VolumeStatistics
  /// After it returns, the inode's data and metadata survive a crash (a checkpoint, or a roll-forward
  /// record the spec defines).
  func fsync(_ ino: UInt32, dataOnly: Bool) throws(EngineError)
  /// Writes a checkpoint: everything done so far survives a crash.
  func sync() throws(EngineError)
  /// A clean unmount: a final checkpoint with UMOUNT set. No operation is valid afterwards.
  func unmount() throws(EngineError)
}
