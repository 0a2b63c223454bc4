// The in-memory tree the builder packs: what ingest produces and what the image holds.
// Names and symlink targets are raw bytes (any byte but '/' and NUL), never Strings, because
// rootfs tarballs carry names that are not UTF-8 and String would silently replace those bytes.

/// A file name or a path component, kept as bytes.
///
/// Names of up to 15 bytes (almost every name in a rootfs) live inside the 16-byte value, so a tree
/// of a million entries does not make a million heap arrays; longer names (and any with a NUL byte,
/// which only error paths see) keep an array. The form is canonical, so equality and hashing are by
/// bytes exactly.
public struct Name: Hashable, Comparable, Sendable, CustomStringConvertible {
  /// `short` holds the bytes zero-padded (names never contain NUL, so the first zero ends them).
  enum Storage: Hashable, Sendable {
    case short(UInt64, UInt32, UInt16, UInt8)
    case long([UInt8])
  }
  var storage: Storage

  public static let inlineCapacity = 15

  public init(_ bytes: [UInt8]) {
    if let short = bytes.withUnsafeBytes({ Name.packed($0) }) {
      storage = short
    } else {
      storage = .long(bytes)
    }
  }

  /// A name from bytes in a buffer (a path component being split, an entry's name in libarchive's
  /// memory): a short name is packed straight from the buffer, with no array made and freed on the
  /// way (ingest splits one path per archive entry).
  public init(_ bytes: UnsafeRawBufferPointer) {
    storage = Name.packed(bytes) ?? .long(Array(bytes))
  }

  /// The `short` form of `bytes`, or nil when they are too long for it or hold a NUL.
  private static func packed(_ bytes: UnsafeRawBufferPointer) -> Storage? {
    guard bytes.count <= Name.inlineCapacity, !bytes.contains(0) else { return nil }
    var packed: (UInt64, UInt32, UInt16, UInt8) = (0, 0, 0, 0)
    withUnsafeMutableBytes(of: &packed) { raw in
      if let src = bytes.baseAddress {
        raw.baseAddress?.copyMemory(from: src, byteCount: bytes.count)
      }
    }
    return .short(packed.0, packed.1, packed.2, packed.3)
  }

  public init(_ string: String) { self.init(Array(string.utf8)) }

  /// The bytes as an array (a new array for short names: prefer `count` or `withBytes` in loops).
  public var bytes: [UInt8] {
    get { withBytes { Array($0) } }
    set { self = Name(newValue) }
  }

  public var count: Int { withBytes { $0.count } }

  /// Calls `body` with the name's bytes without copying them to the heap.
  public func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    switch storage {
    case .long(let a):
      return try a.withUnsafeBytes(body)
    case .short(let w0, let w1, let w2, let w3):
      var packed = (w0, w1, w2, w3)
      return try withUnsafeBytes(of: &packed) { raw in
        var n = 0
        while n < Name.inlineCapacity && raw[n] != 0 { n += 1 }
        return try body(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
      }
    }
  }

  /// Byte order. Two short names compare as four big-endian words: their bytes are zero-padded
  /// and a name has no NUL, so a prefix sorts first as it does bytewise. Sorting directories is
  /// most of these calls (10 % of converting 200,000 small files went to the byte-by-byte closure).
  public static func < (a: Name, b: Name) -> Bool {
    if case .short(let a0, let a1, let a2, let a3) = a.storage,
      case .short(let b0, let b1, let b2, let b3) = b.storage
    {
      if a0 != b0 { return UInt64(bigEndian: a0) < UInt64(bigEndian: b0) }
      if a1 != b1 { return UInt32(bigEndian: a1) < UInt32(bigEndian: b1) }
      if a2 != b2 { return UInt16(bigEndian: a2) < UInt16(bigEndian: b2) }
      return a3 < b3
    }
    return a.withBytes { x in b.withBytes { y in x.lexicographicallyPrecedes(y) } }
  }
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

/// Small files' bytes packed end to end in 64 KiB chunks, so a tree of a million tiny files does
/// not hold a million heap arrays (each with a 32-byte header and malloc's rounding) until the inode
/// pages are written. Bytes are written once, before any `FileContent` refers to them, and never
/// changed: that is what makes sharing the chunk across threads safe.
public final class InlineChunk: @unchecked Sendable {
  static let capacity = 64 * 1024
  let base: UnsafeMutableRawPointer
  var used = 0
  init() { base = UnsafeMutableRawPointer.allocate(byteCount: Self.capacity, alignment: 8) }
  deinit { base.deallocate() }
}

/// Hands out room in `InlineChunk`s; one per builder, used by the thread that ingests.
public final class InlineBytesPool {
  var current = InlineChunk()
  public init() {}

  /// `content` with its inline bytes moved into the pool; anything else is returned unchanged.
  public func pack(_ content: FileContent) -> FileContent {
    guard case .inline(let bytes) = content.body, !bytes.isEmpty,
      UInt64(bytes.count) == content.size, bytes.count <= InlineChunk.capacity / 4
    else { return content }
    if InlineChunk.capacity - current.used < bytes.count { current = InlineChunk() }
    let chunk = current
    let offset = chunk.used
    bytes.withUnsafeBytes { src in
      if let from = src.baseAddress {
        (chunk.base + offset).copyMemory(from: from, byteCount: src.count)
      }
    }
    chunk.used += bytes.count
    var packed = content
    packed.body = .pooled(chunk)
    packed.sizeField = UInt64(offset) << 32 | UInt64(bytes.count)
    return packed
  }
}

/// Where a regular file's (or long symlink's) bytes are: the builder decides while the data streams in.
/// A file is either inline (its whole bytes in the inode slot) or in blocks (extents plus an optional
/// tail fragment); the two share one stored word, so the struct is 25 bytes.
public struct FileContent: Hashable, Sendable {
  enum Body: Sendable {
    case inline([UInt8])
    case blocks([Extent])
    /// Inline bytes kept in a pool chunk, at the offset in `sizeField`'s high half.
    case pooled(InlineChunk)
  }
  /// The size; for `.pooled`, the chunk offset << 32 | the size.
  var sizeField: UInt64
  var body: Body
  /// The last partial block, packed into a shared tail block.
  public var tail: TailRef?

  public init(size: UInt64, inline: [UInt8]? = nil, extents: [Extent] = [], tail: TailRef? = nil) {
    self.sizeField = size
    // An inline file has no blocks; a caller giving both keeps the inline bytes, as the packer would.
    self.body = inline.map { .inline($0) } ?? .blocks(extents)
    self.tail = tail
  }
  public static let empty = FileContent(size: 0, inline: [])

  public var size: UInt64 {
    get {
      if case .pooled = body { return sizeField & 0xFFFF_FFFF }
      return sizeField
    }
    set {
      unpool()
      sizeField = newValue
    }
  }

  /// Back to a plain array before an edit, so the pool's bytes are never changed.
  mutating func unpool() {
    if case .pooled = body, let bytes = inline {
      body = .inline(bytes)
      sizeField &= 0xFFFF_FFFF
    }
  }

  /// The whole file, kept in the inode slot (small files and symlink targets); nil when in blocks.
  public var inline: [UInt8]? {
    get {
      switch body {
      case .inline(let bytes): return bytes
      case .pooled(let chunk):
        let n = Int(sizeField & 0xFFFF_FFFF)
        return [UInt8](UnsafeRawBufferPointer(start: chunk.base + Int(sizeField >> 32), count: n))
      case .blocks: return nil
      }
    }
    set {
      unpool()
      if let bytes = newValue {
        body = .inline(bytes)
      } else if case .inline = body {
        body = .blocks([])
      }
    }
  }
  /// Calls `body` with the inline bytes where they are (nil when in blocks): the packer reads every
  /// small file's bytes several times, and `inline` makes an array of a pooled file's bytes each time.
  func withInlineBytes<R>(_ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
    switch self.body {
    case .inline(let bytes): return try bytes.withUnsafeBytes { try body($0) }
    case .pooled(let chunk):
      let n = Int(sizeField & 0xFFFF_FFFF)
      return try body(UnsafeRawBufferPointer(start: chunk.base + Int(sizeField >> 32), count: n))
    case .blocks: return try body(nil)
    }
  }
  /// Bytes of the inline content (nil when in blocks), without copying them.
  var inlineCount: Int? { withInlineBytes { $0?.count } }
  /// Whether the file is inline (`inline != nil`), without copying its bytes.
  public var isInline: Bool {
    if case .blocks = body { return false }
    return true
  }
  /// Full blocks, in logical order; holes are the gaps between extents. Empty when inline; setting
  /// a non-empty list moves the file to blocks.
  public var extents: [Extent] {
    get {
      if case .blocks(let e) = body { return e }
      return []
    }
    set {
      unpool()
      if case .inline = body, newValue.isEmpty { return }
      body = .blocks(newValue)
    }
  }
  /// Blocks the file owns (not counting its tail fragment).
  public var blockCount: UInt64 {
    guard case .blocks(let e) = body else { return 0 }
    return e.reduce(0) { $0 + UInt64($1.count) }
  }

  public static func == (a: FileContent, b: FileContent) -> Bool {
    a.size == b.size && a.tail == b.tail && a.inline == b.inline && a.extents == b.extents
  }
  public func hash(into h: inout Hasher) {
    h.combine(size)
    h.combine(tail)
    h.combine(inline)
    h.combine(extents)
  }
}

/// What most inodes do not have, kept out of line so the common inode is one 80-byte heap chunk:
/// a directory's children, xattrs, a device number, access and change times that differ from the
/// modification time, and modification seconds outside Int32.
final class InodeExtras {
  var children = DirectoryEntries()
  var xattrs: [Xattr] = []
  var rdevMajor: UInt32 = 0
  var rdevMinor: UInt32 = 0
  /// nil: the same as mtime.
  var atime: Timestamp?
  var ctime: Timestamp?
  /// mtime's seconds when they do not fit `Inode.mtimeSeconds32`.
  var mtimeSecondsWide: Int64?

  /// Whether atime and ctime are all the record holds (it can shrink to an `InodeTimes`).
  var holdsOnlyTimes: Bool {
    children.isEmpty && xattrs.isEmpty && rdevMajor == 0 && rdevMinor == 0
      && mtimeSecondsWide == nil
  }

  var isEmpty: Bool { holdsOnlyTimes && atime == nil && ctime == nil }

  func copy() -> InodeExtras {
    let c = InodeExtras()
    c.children = children
    c.xattrs = xattrs
    c.rdevMajor = rdevMajor
    c.rdevMinor = rdevMinor
    c.atime = atime
    c.ctime = ctime
    c.mtimeSecondsWide = mtimeSecondsWide
    return c
  }
}

/// Access and change times of an inode that has no other rare field: a host file's atime and ctime
/// almost always differ from its mtime, and an `InodeExtras` (80 bytes) for each of them was most of
/// what a directory input cost beyond a tarball. Stored as four fields so the object is 40 bytes (a
/// 48-byte malloc chunk); nothing is narrowed (64-bit seconds, nanoseconds).
final class InodeTimes {
  var atimeSeconds: Int64
  var ctimeSeconds: Int64
  var atimeNanoseconds: UInt32
  var ctimeNanoseconds: UInt32
  init(atime: Timestamp, ctime: Timestamp) {
    atimeSeconds = atime.seconds
    ctimeSeconds = ctime.seconds
    atimeNanoseconds = atime.nanoseconds
    ctimeNanoseconds = ctime.nanoseconds
  }
  var atime: Timestamp { Timestamp(seconds: atimeSeconds, nanoseconds: atimeNanoseconds) }
  var ctime: Timestamp { Timestamp(seconds: ctimeSeconds, nanoseconds: ctimeNanoseconds) }
}

/// An inode's out-of-line record, one pointer in the inode: times only, or everything rare.
enum InodeSide {
  case times(InodeTimes)
  case full(InodeExtras)
}

/// One inode. A reference type because hard links are several directory entries naming the same
/// inode; a snapshot (subvolume B) shares the objects of A and replaces only those it changes.
///
/// A tree holds one of these per entry, so its stored fields are kept to 56 bytes (72 with the object
/// header, one 80-byte malloc chunk; `TreeMemoryTests` checks it): rare fields live in
/// `InodeExtras`, times are stored once when atime and ctime equal mtime. The stored order is the
/// layout order, chosen so no field pads.
public final class Inode {
  /// Regular files: their data. Symlinks: the target bytes (stored like file data).
  public var content: FileContent = .empty
  public let kind: FileKind
  /// Permission bits including setuid, setgid and sticky (07777); the type comes from `kind`.
  public var permissions: UInt16
  public var uid: UInt32
  public var gid: UInt32
  var mtimeNanoseconds: UInt32
  /// mtime's seconds when they fit (1901-2038); otherwise `extras.mtimeSecondsWide` holds them.
  var mtimeSeconds32: Int32
  /// Inode number, assigned by the builder when the inode is created (FORMAT.md: nid * 8 + slot).
  public internal(set) var ino: UInt32 = 0
  var side: InodeSide?

  /// The full side record, when the inode has one (not for times alone).
  var extras: InodeExtras? {
    if case .full(let e) = side { return e }
    return nil
  }

  public init(
    kind: FileKind, permissions: UInt16, uid: UInt32 = 0, gid: UInt32 = 0, mtime: Timestamp,
    atime: Timestamp? = nil, ctime: Timestamp? = nil, xattrs: [Xattr] = []
  ) {
    self.kind = kind
    self.permissions = permissions & 0o7777
    self.uid = uid
    self.gid = gid
    self.mtimeNanoseconds = mtime.nanoseconds
    self.mtimeSeconds32 = Int32(truncatingIfNeeded: mtime.seconds)
    if Int64(mtimeSeconds32) != mtime.seconds { editExtras().mtimeSecondsWide = mtime.seconds }
    if atime != nil || ctime != nil { storeTimes(atime ?? mtime, ctime ?? mtime) }
    if !xattrs.isEmpty {
      editExtras().xattrs = xattrs.sorted { $0.name.lexicographicallyPrecedes($1.name) }
    }
  }

  func editExtras() -> InodeExtras {
    let e: InodeExtras
    switch side {
    case .full(let full): return full
    case .times(let t):
      e = InodeExtras()
      let m = mtime
      e.atime = t.atime == m ? nil : t.atime
      e.ctime = t.ctime == m ? nil : t.ctime
    case nil:
      e = InodeExtras()
    }
    side = .full(e)
    return e
  }
  /// Drops a full record that holds nothing, or shrinks it to the times record when times are all
  /// it holds.
  func dropExtrasIfEmpty() {
    guard let e = extras else { return }
    if e.isEmpty {
      side = nil
    } else if e.holdsOnlyTimes {
      let m = mtime
      side = .times(InodeTimes(atime: e.atime ?? m, ctime: e.ctime ?? m))
    }
  }
  /// Sets a rare field in the full record; set to its empty value, the field leaves the record,
  /// and the record goes when nothing is left in it.
  private func setRare<T: Equatable>(
    _ field: ReferenceWritableKeyPath<InodeExtras, T>, _ value: T, empty: T
  ) {
    if value == empty {
      extras?[keyPath: field] = empty
      dropExtrasIfEmpty()
    } else {
      editExtras()[keyPath: field] = value
    }
  }
  /// Stores atime and ctime in the smallest form: nothing when both equal mtime, the times record
  /// when no full record exists, otherwise the full record.
  func storeTimes(_ a: Timestamp, _ c: Timestamp) {
    let m = mtime
    switch side {
    case .full(let e):
      e.atime = a == m ? nil : a
      e.ctime = c == m ? nil : c
      dropExtrasIfEmpty()
    case .times(let t):
      if a == m && c == m {
        side = nil
      } else {
        t.atimeSeconds = a.seconds
        t.atimeNanoseconds = a.nanoseconds
        t.ctimeSeconds = c.seconds
        t.ctimeNanoseconds = c.nanoseconds
      }
    case nil:
      if a != m || c != m { side = .times(InodeTimes(atime: a, ctime: c)) }
    }
  }

  public var mtime: Timestamp {
    get {
      Timestamp(
        seconds: extras?.mtimeSecondsWide ?? Int64(mtimeSeconds32), nanoseconds: mtimeNanoseconds)
    }
    set {
      let old = mtime
      guard newValue != old else { return }
      // atime and ctime stored as "same as mtime" keep their value when mtime moves.
      let a = atime
      let c = ctime
      let wide =
        Int64(Int32(truncatingIfNeeded: newValue.seconds)) == newValue.seconds
        ? nil : newValue.seconds
      if wide != nil || extras != nil {
        // Converts a times record while mtime still has its old value.
        let e = editExtras()
        e.atime = a
        e.ctime = c
        e.mtimeSecondsWide = wide
      }
      mtimeNanoseconds = newValue.nanoseconds
      mtimeSeconds32 = Int32(truncatingIfNeeded: newValue.seconds)
      storeTimes(a, c)
    }
  }
  public var atime: Timestamp {
    get {
      switch side {
      case .times(let t): return t.atime
      case .full(let e): return e.atime ?? mtime
      case nil: return mtime
      }
    }
    set { storeTimes(newValue, ctime) }
  }
  public var ctime: Timestamp {
    get {
      switch side {
      case .times(let t): return t.ctime
      case .full(let e): return e.ctime ?? mtime
      case nil: return mtime
      }
    }
    set { storeTimes(atime, newValue) }
  }
  /// Sorted by name, names unique.
  public var xattrs: [Xattr] {
    get { extras?.xattrs ?? [] }
    set { setRare(\.xattrs, newValue, empty: []) }
  }
  /// Device number for character and block devices.
  public var rdevMajor: UInt32 {
    get { extras?.rdevMajor ?? 0 }
    set { setRare(\.rdevMajor, newValue, empty: 0) }
  }
  public var rdevMinor: UInt32 {
    get { extras?.rdevMinor ?? 0 }
    set { setRare(\.rdevMinor, newValue, empty: 0) }
  }
  /// Directories only. Edited in place (`_modify`), so adding a child does not copy the entries.
  public var children: DirectoryEntries {
    get { extras?.children ?? DirectoryEntries() }
    set {
      if newValue.isEmpty {
        extras?.children = DirectoryEntries()
        dropExtrasIfEmpty()
      } else {
        editExtras().children = newValue
      }
    }
    _modify {
      let e = editExtras()
      yield &e.children
      dropExtrasIfEmpty()
    }
  }

  /// Puts a directory's children in name order once, so later passes read them in place.
  public func sortChildren() { extras?.children.sort() }

  public var mode: UInt16 { kind.modeBits | permissions }

  /// Copy with the same ino, used when subvolume B changes an inode that A shares.
  public func clone() -> Inode {
    let c = Inode(kind: kind, permissions: permissions, uid: uid, gid: gid, mtime: mtime)
    switch side {
    case .full(let e): c.side = .full(e.copy())
    case .times(let t): c.side = .times(InodeTimes(atime: t.atime, ctime: t.ctime))
    case nil: break
    }
    c.content = content
    c.ino = ino
    return c
  }

  public func setXattr(_ x: Xattr) {
    var list = xattrs
    list.removeAll { $0.name == x.name }
    list.append(x)
    list.sort { $0.name.lexicographicallyPrecedes($1.name) }
    xattrs = list
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
