import RoseFS

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Metadata of one entry as an input describes it, before it becomes an inode.
public struct EntryMetadata: Sendable {
  public var permissions: UInt16
  public var uid: UInt32
  public var gid: UInt32
  public var mtime: Timestamp
  public var atime: Timestamp?
  public var ctime: Timestamp?
  public var xattrs: [Xattr]
  public init(
    permissions: UInt16, uid: UInt32 = 0, gid: UInt32 = 0, mtime: Timestamp,
    atime: Timestamp? = nil,
    ctime: Timestamp? = nil, xattrs: [Xattr] = []
  ) {
    self.permissions = permissions & 0o7777
    self.uid = uid
    self.gid = gid
    self.mtime = mtime
    self.atime = atime
    self.ctime = ctime
    self.xattrs = xattrs
  }
}

/// The tree being built, with tar semantics: a later entry replaces an earlier one, a directory
/// replacing a directory keeps its children and takes the new metadata, missing parents are created
/// (0755, root:root, SOURCE_DATE_EPOCH), and paths that could escape (`..`, through a symlink) are
/// refused. File data streams into `builder.data`; replaced files give their blocks back.
public final class TreeEditor {
  public let builder: ImageBuilder
  public let root: Inode
  /// Names per non-directory inode with more than one (hard links), so a replaced name frees data
  /// only with its last name. An inode missing here has one name: memory follows hard links, not
  /// entries (issue 10).
  private var linkCount: [ObjectIdentifier: Int] = [:]

  public init(builder: ImageBuilder, root: Inode? = nil) {
    self.builder = builder
    self.root =
      root
      ?? builder.makeInode(
        kind: .directory, permissions: 0o755,
        mtime: Timestamp(seconds: builder.options.sourceDateEpoch))
  }

  public var epoch: Timestamp { Timestamp(seconds: builder.options.sourceDateEpoch) }

  // MARK: lookup

  /// The inode at `path` (normalised), never following symlinks; nil when missing or when a parent
  /// is not a directory.
  public func lookup(_ path: [UInt8]) -> Inode? {
    guard let comps = try? ImagePath.components(path, input: "") else { return nil }
    return lookup(comps)
  }

  public func lookup(_ path: String) -> Inode? { lookup(Array(path.utf8)) }

  public func lookup(_ comps: [Name]) -> Inode? {
    var cur = root
    for c in comps {
      guard cur.kind == .directory, let next = cur.children[c] else { return nil }
      cur = next
    }
    return cur
  }

  /// The directory that will hold `comps.last`, creating missing parents. Throws when a parent is a
  /// symlink or not a directory.
  func parent(of comps: [Name], path: [UInt8], input: String) throws -> Inode {
    var cur = root
    for (i, c) in comps.dropLast().enumerated() {
      if let next = cur.children[c] {
        guard next.kind == .directory else {
          throw IngestError.parentNotDirectory(
            input: input, entry: path, parent: ImagePath.join(Array(comps[...i])))
        }
        cur = next
      } else {
        let d = builder.makeInode(kind: .directory, permissions: 0o755, mtime: epoch)
        cur.children[c] = d
        cur = d
      }
    }
    return cur
  }

  func split(_ path: [UInt8], input: String, allowRoot: Bool) throws -> [Name] {
    let comps = try ImagePath.components(path, input: input)
    if comps.isEmpty && !allowRoot {
      throw IngestError.emptyName(input: input, position: "'\(Name.printable(path))'")
    }
    return comps
  }

  // MARK: primitive edits

  /// Drops one name of `inode`; frees its data (and its subtree's) when no other name is left.
  func forget(_ top: Inode) {
    // A whole subtree, with an explicit stack (its depth is the input's).
    var pending = [top]
    while let inode = pending.popLast() {
      if inode.kind == .directory {
        pending.append(contentsOf: inode.children.values)
      } else {
        forgetOne(inode)
      }
    }
  }

  private func forgetOne(_ inode: Inode) {
    let id = ObjectIdentifier(inode)
    let n = (linkCount[id] ?? 1) - 1
    if n <= 0 {
      linkCount[id] = nil
      if inode.kind == .regular || inode.kind == .symlink { builder.data.release(inode.content) }
    } else {
      linkCount[id] = n > 1 ? n : nil
    }
  }

  /// Puts `inode` at `comps` in `dir`, replacing what was there. `inode` must not be a directory that
  /// merges (use `directory(at:)`). `anotherName`: the inode already has a name (a hard link);
  /// otherwise it was just made and this is its first.
  func place(_ inode: Inode, named name: Name, in dir: Inode, anotherName: Bool = false) {
    if let old = dir.children[name] {
      if old === inode { return }
      forget(old)
    }
    dir.children[name] = inode
    if anotherName && inode.kind != .directory {
      linkCount[ObjectIdentifier(inode)] = names(of: inode) + 1
    }
  }

  /// Number of names of a non-directory inode in this tree (1 for inodes the editor did not place).
  public func names(of inode: Inode) -> Int { linkCount[ObjectIdentifier(inode)] ?? 1 }

  // MARK: entry-level operations (ingest)

  /// A directory entry: creates it, or updates the metadata of the directory already there (keeping
  /// its children). The empty path is the root.
  @discardableResult
  public func directory(at path: [UInt8], _ meta: EntryMetadata, input: String) throws -> Inode {
    let comps = try split(path, input: input, allowRoot: true)
    if comps.isEmpty {
      apply(meta, to: root)
      return root
    }
    let dir = try parent(of: comps, path: path, input: input)
    let name = comps[comps.count - 1]
    if let old = dir.children[name], old.kind == .directory {
      apply(meta, to: old)
      return old
    }
    let d = make(.directory, meta)
    place(d, named: name, in: dir)
    return d
  }

  func apply(_ meta: EntryMetadata, to inode: Inode) {
    inode.permissions = meta.permissions & 0o7777
    inode.uid = meta.uid
    inode.gid = meta.gid
    inode.mtime = meta.mtime
    inode.atime = meta.atime ?? meta.mtime
    inode.ctime = meta.ctime ?? meta.mtime
    inode.xattrs = meta.xattrs.sorted { $0.name.lexicographicallyPrecedes($1.name) }
  }

  func make(_ kind: FileKind, _ meta: EntryMetadata) -> Inode {
    builder.makeInode(
      kind: kind, permissions: meta.permissions, uid: meta.uid, gid: meta.gid, mtime: meta.mtime,
      atime: meta.atime, ctime: meta.ctime, xattrs: meta.xattrs)
  }

  /// A non-directory, non-data entry (device, fifo, socket) or an inode whose content the caller
  /// fills; replaces what was at `path`.
  @discardableResult
  public func node(
    at path: [UInt8], kind: FileKind, _ meta: EntryMetadata, rdevMajor: UInt32 = 0,
    rdevMinor: UInt32 = 0,
    input: String
  ) throws -> Inode {
    let comps = try split(path, input: input, allowRoot: false)
    let dir = try parent(of: comps, path: path, input: input)
    let inode = make(kind, meta)
    inode.rdevMajor = rdevMajor
    inode.rdevMinor = rdevMinor
    place(inode, named: comps[comps.count - 1], in: dir)
    return inode
  }

  /// A regular file whose `size` bytes `fill` streams through `builder.data.write(_:at:)`.
  @discardableResult
  public func file(
    at path: [UInt8], size: UInt64, _ meta: EntryMetadata, input: String,
    fill: (DataWriter) throws -> Void
  ) throws -> Inode {
    let comps = try split(path, input: input, allowRoot: false)
    let dir = try parent(of: comps, path: path, input: input)
    let inode = make(.regular, meta)
    try stream(into: inode, size: size, path: path, input: input, fill: fill)
    place(inode, named: comps[comps.count - 1], in: dir)
    return inode
  }

  /// Replaces the data of an existing regular inode (a cpio hard link carrying the data).
  func stream(
    into inode: Inode, size: UInt64, path: [UInt8], input: String, fill: (DataWriter) throws -> Void
  ) throws {
    guard size <= RoseLayout.maxFileSize else {
      throw IngestError.image(
        input: input, entry: path,
        underlying: .fileTooLarge(path: Name.printable(path), size: size))
    }
    let data = builder.data
    do {
      try data.beginFile(ino: inode.ino, size: size)
      try fill(data)
      let old = inode.content
      inode.content = builder.inlinePool.pack(try data.finishFile())
      data.release(old)
    } catch let e as IngestError {
      if let partial = try? data.finishFile() { data.release(partial) }
      throw e
    } catch {
      if let partial = try? data.finishFile() { data.release(partial) }
      throw IngestError.image(input: input, entry: path, underlying: RoseFSError(wrapping: error))
    }
  }

  /// A symlink to `target` (1...4095 bytes).
  @discardableResult
  public func symlink(at path: [UInt8], target: [UInt8], _ meta: EntryMetadata, input: String)
    throws -> Inode
  {
    let comps = try split(path, input: input, allowRoot: false)
    guard !target.isEmpty else {
      throw IngestError.emptyName(
        input: input, position: "symlink target of '\(Name.printable(path))'")
    }
    guard target.count <= 4095 else {
      throw IngestError.symlinkTargetTooLong(input: input, entry: path, length: target.count)
    }
    let dir = try parent(of: comps, path: path, input: input)
    let inode = make(.symlink, meta)
    do {
      inode.content = builder.inlinePool.pack(try builder.data.store(target, ino: inode.ino))
    } catch {
      throw IngestError.image(input: input, entry: path, underlying: RoseFSError(wrapping: error))
    }
    place(inode, named: comps[comps.count - 1], in: dir)
    return inode
  }

  /// A hard link: `path` becomes another name of the inode at `target`.
  @discardableResult
  public func hardLink(at path: [UInt8], target: [UInt8], input: String) throws -> Inode {
    let comps = try split(path, input: input, allowRoot: false)
    let tcomps: [Name]
    do {
      tcomps = try ImagePath.components(target, input: input)
    } catch IngestError.dotDotComponent {
      throw IngestError.dotDotComponent(
        input: input, entry: path + Array(" (hard link to ".utf8) + target + [0x29])
    }
    guard !tcomps.isEmpty else {
      throw IngestError.hardLinkToDirectory(input: input, entry: path, target: target)
    }
    guard let t = lookup(tcomps) else {
      throw IngestError.hardLinkTargetMissing(input: input, entry: path, target: target)
    }
    guard t.kind != .directory else {
      throw IngestError.hardLinkToDirectory(input: input, entry: path, target: target)
    }
    let dir = try parent(of: comps, path: path, input: input)
    place(t, named: comps[comps.count - 1], in: dir, anotherName: true)
    return t
  }

  /// Another name for an inode the caller already holds (directory input: same st_dev/st_ino).
  public func link(_ inode: Inode, at path: [UInt8], input: String) throws {
    let comps = try split(path, input: input, allowRoot: false)
    let dir = try parent(of: comps, path: path, input: input)
    place(inode, named: comps[comps.count - 1], in: dir, anotherName: true)
  }

  // MARK: recipe-level operations

  /// Copies a host file (never following a symlink at `hostPath`'s last component) to `path`.
  /// Metadata defaults to root:root 0644 with mtime SOURCE_DATE_EPOCH.
  @discardableResult
  public func addFile(
    hostPath: String, at path: [UInt8], permissions: UInt16 = 0o644, uid: UInt32 = 0,
    gid: UInt32 = 0,
    mtime: Timestamp? = nil
  ) throws -> Inode {
    let fd = try HostInput.openRegular(hostPath, what: "the file", noFollow: true)
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
      throw IngestError.io(path: hostPath, operation: "stat", errno: errno)
    }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
      throw IngestError.invalid(input: hostPath, detail: "not a regular file")
    }
    let meta = EntryMetadata(permissions: permissions, uid: uid, gid: gid, mtime: mtime ?? epoch)
    return try file(at: path, size: UInt64(st.st_size), meta, input: hostPath) { data in
      try HostData.copy(
        fd: fd, size: UInt64(st.st_size), allocated: Int64(st.st_blocks) * 512, path: hostPath,
        to: data)
    }
  }

  /// A file whose bytes the recipe gives inline.
  @discardableResult
  public func addInline(
    _ bytes: [UInt8], at path: [UInt8], permissions: UInt16 = 0o644, uid: UInt32 = 0,
    gid: UInt32 = 0,
    mtime: Timestamp? = nil, input: String = "recipe"
  ) throws -> Inode {
    let meta = EntryMetadata(permissions: permissions, uid: uid, gid: gid, mtime: mtime ?? epoch)
    return try file(at: path, size: UInt64(bytes.count), meta, input: input) {
      try $0.write(bytes, at: 0)
    }
  }

  @discardableResult
  public func addSymlink(
    at path: [UInt8], target: [UInt8], uid: UInt32 = 0, gid: UInt32 = 0, mtime: Timestamp? = nil,
    input: String = "recipe"
  ) throws -> Inode {
    try symlink(
      at: path, target: target,
      EntryMetadata(permissions: 0o777, uid: uid, gid: gid, mtime: mtime ?? epoch),
      input: input)
  }

  /// `mkdir -p`: creates missing directories with the given metadata; existing ones are kept as they are.
  @discardableResult
  public func makeDirectories(
    _ path: [UInt8], permissions: UInt16 = 0o755, uid: UInt32 = 0, gid: UInt32 = 0,
    mtime: Timestamp? = nil,
    input: String = "recipe"
  ) throws -> Inode {
    let comps = try split(path, input: input, allowRoot: true)
    var cur = root
    for (i, c) in comps.enumerated() {
      if let next = cur.children[c] {
        guard next.kind == .directory else {
          throw IngestError.parentNotDirectory(
            input: input, entry: path, parent: ImagePath.join(Array(comps[...i])))
        }
        cur = next
      } else {
        let d = builder.makeInode(
          kind: .directory, permissions: permissions, uid: uid, gid: gid, mtime: mtime ?? epoch)
        cur.children[c] = d
        cur = d
      }
    }
    return cur
  }

  /// Every path in the tree (no leading slash, root excluded), depth first, sorted by name bytes.
  public func walk(_ body: ([UInt8], Inode) throws -> Void) rethrows {
    try TreeEditor.walk(root, prefix: [], body)
  }

  static func walk(_ dir: Inode, prefix: [UInt8], _ body: ([UInt8], Inode) throws -> Void) rethrows
  {
    // Depth first in name order, with an explicit stack: the depth is the input's to choose.
    var levels: [(dir: Inode, prefix: [UInt8], names: [Name], next: Int)] = [
      (dir, prefix, dir.children.keys.sorted(), 0)
    ]
    while let k = levels.indices.last {
      guard levels[k].next < levels[k].names.count else {
        levels.removeLast()
        continue
      }
      let name = levels[k].names[levels[k].next]
      levels[k].next += 1
      guard let child = levels[k].dir.children[name] else { continue }
      let base = levels[k].prefix
      let path = base.isEmpty ? name.bytes : base + [UInt8(ascii: "/")] + name.bytes
      try body(path, child)
      if child.kind == .directory { levels.append((child, path, child.children.keys.sorted(), 0)) }
    }
  }

  /// Paths matching `glob` (see `PathGlob`).
  public func paths(matching glob: PathGlob) -> [[UInt8]] {
    var out: [[UInt8]] = []
    walk { path, _ in if glob.matches(path) { out.append(path) } }
    return out
  }

  /// Removes every path matching `glob` (a matching directory goes with its subtree); returns how
  /// many entries matched.
  @discardableResult
  public func remove(glob: String) -> Int { remove(glob: PathGlob(glob)) }

  @discardableResult
  public func remove(glob: PathGlob) -> Int {
    let matched = paths(matching: glob)
    var removed = 0
    for path in matched {
      guard let comps = try? ImagePath.components(path, input: ""), let last = comps.last,
        let dir = lookup(Array(comps.dropLast())), let old = dir.children[last]
      else { continue }  // already gone with a removed parent
      forget(old)
      dir.children[last] = nil
      removed += 1
    }
    return removed
  }

}

/// `security.capability` values.
public enum Capabilities {
  /// Sets (or with 0 removes) the file capabilities of `inode`, as an fs_config line does.
  public static func apply(_ permitted: UInt64, to inode: Inode) {
    if permitted == 0 {
      inode.xattrs.removeAll { $0.name == Array("security.capability".utf8) }
    } else {
      inode.setXattr(xattr(permitted: permitted))
    }
  }

  /// VFS_CAP_REVISION_2 with the effective flag, permitted = `permitted`, inheritable = 0: what
  /// Android's fs_config / e2fsdroid write.
  public static func xattr(permitted: UInt64, inheritable: UInt64 = 0, effective: Bool = true)
    -> Xattr
  {
    var v: [UInt8] = []
    func le32(_ x: UInt32) {
      v += [UInt8(x & 0xFF), UInt8(x >> 8 & 0xFF), UInt8(x >> 16 & 0xFF), UInt8(x >> 24)]
    }
    le32(0x0200_0000 | (effective ? 1 : 0))
    le32(UInt32(truncatingIfNeeded: permitted))
    le32(UInt32(truncatingIfNeeded: inheritable))
    le32(UInt32(truncatingIfNeeded: permitted >> 32))
    le32(UInt32(truncatingIfNeeded: inheritable >> 32))
    return Xattr("security.capability", v)
  }
}

extension TreeEditor {
  /// Adds one input: a host directory (read with `DirectoryReader`) or an archive file (read with
  /// `ArchiveReader`), under `prefix` in the image. Inputs applied in order: later entries replace
  /// earlier ones. Returns libarchive's non-fatal warnings.
  @discardableResult
  public func ingest(
    _ path: String, at prefix: [UInt8] = [], progress: ((IngestProgress) -> Void)? = nil
  ) throws -> [ArchiveWarning] {
    var st = stat()
    guard stat(path, &st) == 0 else {
      throw IngestError.io(path: path, operation: "stat", errno: errno)
    }
    try HostInput.check(path, what: "the input", directoryAllowed: true)
    if (st.st_mode & S_IFMT) == S_IFDIR {
      try DirectoryReader(path: path, progress: progress).read(into: self, at: prefix)
      return []
    }
    let reader = ArchiveReader(path: path, progress: progress)
    try reader.read(into: self, at: prefix)
    return reader.warnings
  }
}
