// The in-memory tree the builder packs: what ingest produces and what the image holds.
// Names and symlink targets are raw bytes (any byte but '/' and NUL), never Strings, because
// rootfs tarballs carry names that are not UTF-8 and String would silently replace those bytes.

/// A file name or a path component, kept as bytes.
public struct Name: Hashable, Comparable, Sendable, CustomStringConvertible {
  public var bytes: [UInt8]
  public init(_ bytes: [UInt8]) { self.bytes = bytes }
  public init(_ string: String) { self.bytes = Array(string.utf8) }
  public static func < (a: Name, b: Name) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
  /// For messages only: invalid UTF-8 shown as \xNN escapes, so errors name the exact entry.
  public var description: String { Name.printable(bytes) }
  public static func printable(_ bytes: [UInt8]) -> String {
    var out = ""
    var i = 0
    while i < bytes.count {
      let b = bytes[i]
      if b >= 0x20 && b < 0x7F {
        out.unicodeScalars.append(Unicode.Scalar(b))
        i += 1
        continue
      }
      // Accept valid multi-byte UTF-8 sequences as they are.
      let len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0
      if len > 0, i + len <= bytes.count,
        let s = String(validating: bytes[i..<i + len], as: UTF8.self)
      {
        out += s
        i += len
        continue
      }
      out += "\\x" + String(b, radix: 16, uppercase: false).leftPadded(to: 2)
      i += 1
    }
    return out
  }
}

extension String {
  func leftPadded(to n: Int, with c: Character = "0") -> String {
    count >= n ? self : String(repeating: c, count: n - count) + self
  }
}

/// Seconds and nanoseconds since the epoch in the Linux `timespec` convention, as FORMAT.md section 7
/// stores them: `seconds` is the floor of the time (negative before 1970) and `nanoseconds` is always
/// 0...999999999 counted forward from it, so -1234567889.012345679 is (-1234567890, 987654321).
public struct Timestamp: Hashable, Sendable, Comparable {
  public var seconds: Int64
  public var nanoseconds: UInt32
  public init(seconds: Int64, nanoseconds: UInt32 = 0) {
    self.seconds = seconds
    self.nanoseconds = nanoseconds
  }

  /// A time given as sign and magnitude, the way tar's pax records write it and libarchive (3.6)
  /// hands it over: -1234567889.012345679 arrives as seconds -1234567889, nanoseconds 12345679.
  /// Nanoseconds above 999999999 are clamped. (Such a pair cannot express -1 < t < 0.)
  public init(signMagnitudeSeconds s: Int64, nanoseconds ns: Int) {
    let n = UInt32(clamping: max(0, min(ns, 999_999_999)))
    if s < 0 && n > 0 {
      self.init(seconds: s - 1, nanoseconds: 1_000_000_000 - n)
    } else {
      self.init(seconds: s, nanoseconds: n)
    }
  }

  /// The same time as sign and magnitude, for writers that take that form (libarchive's pax writer
  /// prints `seconds.nanoseconds` literally): (-1234567890, 987654321) gives (-1234567889, 12345679).
  public var signMagnitude: (seconds: Int64, nanoseconds: Int) {
    if seconds < 0 && nanoseconds > 0 {
      return (seconds + 1, Int(1_000_000_000 - nanoseconds))
    }
    return (seconds, Int(nanoseconds))
  }
  public static func < (a: Timestamp, b: Timestamp) -> Bool {
    (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
  }
}

/// File types, numbered as FORMAT.md stores them in the directory entry `type` byte.
public enum FileKind: UInt8, Sendable, CaseIterable {
  case regular = 1
  case directory = 2
  case symlink = 3
  case characterDevice = 4
  case blockDevice = 5
  case fifo = 6
  case socket = 7

  /// POSIX S_IFMT bits of this kind.
  public var modeBits: UInt16 {
    switch self {
    case .regular: 0o100000
    case .directory: 0o040000
    case .symlink: 0o120000
    case .characterDevice: 0o020000
    case .blockDevice: 0o060000
    case .fifo: 0o010000
    case .socket: 0o140000
    }
  }

  public init?(modeBits: UInt32) {
    switch modeBits & 0o170000 {
    case 0o100000: self = .regular
    case 0o040000: self = .directory
    case 0o120000: self = .symlink
    case 0o020000: self = .characterDevice
    case 0o060000: self = .blockDevice
    case 0o010000: self = .fifo
    case 0o140000: self = .socket
    default: return nil
    }
  }
}

/// One extended attribute; names are full ("security.capability"), values are binary.
public struct Xattr: Hashable, Sendable {
  public var name: [UInt8]
  public var value: [UInt8]
  public init(name: [UInt8], value: [UInt8]) {
    self.name = name
    self.value = value
  }
  public init(_ name: String, _ value: [UInt8]) { self.init(name: Array(name.utf8), value: value) }
}

/// A run of file blocks stored contiguously: logical block `logical` maps to volume block `physical`.
public struct Extent: Hashable, Sendable {
  public var logical: UInt32
  public var physical: UInt32
  public var count: UInt32
  public init(logical: UInt32, physical: UInt32, count: UInt32) {
    self.logical = logical
    self.physical = physical
    self.count = count
  }
}

/// Where a tail-packed last partial block lives: a fragment of a shared tail block.
public struct TailRef: Hashable, Sendable {
  public var block: UInt32
  public var offset: UInt16
  public var length: UInt16
}

/// Where a regular file's (or long symlink's) bytes are: the builder decides while the data streams in.
public struct FileContent: Hashable, Sendable {
  public var size: UInt64
  /// The whole file, kept in the inode slot (small files and symlink targets).
  public var inline: [UInt8]?
  /// Full blocks, in logical order; holes are the gaps between extents.
  public var extents: [Extent]
  /// The last partial block, packed into a shared tail block.
  public var tail: TailRef?
  public init(size: UInt64, inline: [UInt8]? = nil, extents: [Extent] = [], tail: TailRef? = nil) {
    self.size = size
    self.inline = inline
    self.extents = extents
    self.tail = tail
  }
  public static let empty = FileContent(size: 0, inline: [])
  /// Blocks the file owns (not counting its tail fragment).
  public var blockCount: UInt64 { extents.reduce(0) { $0 + UInt64($1.count) } }
}

/// One inode. A reference type because hard links are several directory entries naming the same
/// inode; a snapshot (subvolume B) shares the objects of A and replaces only those it changes.
public final class Inode {
  public let kind: FileKind
  /// Permission bits including setuid, setgid and sticky (07777); the type comes from `kind`.
  public var permissions: UInt16
  public var uid: UInt32
  public var gid: UInt32
  public var atime: Timestamp
  public var mtime: Timestamp
  public var ctime: Timestamp
  /// Sorted by name, names unique.
  public var xattrs: [Xattr]
  /// Device number for character and block devices.
  public var rdevMajor: UInt32 = 0
  public var rdevMinor: UInt32 = 0
  /// Regular files: their data. Symlinks: the target bytes (stored like file data).
  public var content: FileContent = .empty
  /// Directories only.
  public var children: [Name: Inode] = [:]
  /// Inode number, assigned by the builder when the inode is created (FORMAT.md: nid * 8 + slot).
  public internal(set) var ino: UInt32 = 0

  public init(
    kind: FileKind, permissions: UInt16, uid: UInt32 = 0, gid: UInt32 = 0, mtime: Timestamp,
    atime: Timestamp? = nil, ctime: Timestamp? = nil, xattrs: [Xattr] = []
  ) {
    self.kind = kind
    self.permissions = permissions & 0o7777
    self.uid = uid
    self.gid = gid
    self.mtime = mtime
    self.atime = atime ?? mtime
    self.ctime = ctime ?? mtime
    self.xattrs = xattrs.sorted { $0.name.lexicographicallyPrecedes($1.name) }
  }

  public var mode: UInt16 { kind.modeBits | permissions }

  /// Copy with the same ino, used when subvolume B changes an inode that A shares.
  public func clone() -> Inode {
    let c = Inode(
      kind: kind, permissions: permissions, uid: uid, gid: gid, mtime: mtime, atime: atime,
      ctime: ctime, xattrs: xattrs)
    c.rdevMajor = rdevMajor
    c.rdevMinor = rdevMinor
    c.content = content
    c.children = children
    c.ino = ino
    return c
  }

  public func setXattr(_ x: Xattr) {
    xattrs.removeAll { $0.name == x.name }
    xattrs.append(x)
    xattrs.sort { $0.name.lexicographicallyPrecedes($1.name) }
  }
}

/// One subvolume's tree: a root directory. Subvolume B starts as a snapshot of A (same objects).
public struct Subvolume {
  public var name: String
  public var root: Inode
  public init(name: String, root: Inode) {
    self.name = name
    self.root = root
  }
}
