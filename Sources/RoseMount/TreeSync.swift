import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// Makes a mounted subvolume exactly a given tree (`rosepack update`), changing only what differs:
/// an entry whose type stays keeps its inode; a regular file is rewritten only in the 4 KiB blocks
/// whose bytes differ (compared before writing); entries the tree lacks are removed, new ones created;
/// modes, owners, times, xattrs and device numbers are set to the tree's. Hard links of the tree are
/// hard links in the volume. Times are set last, so nothing done afterwards moves a ctime.
public final class TreeSync {
  /// What an update did, for the report.
  public struct Summary: Codable, Sendable, Equatable {
    /// Regular files and symlinks of the tree (each inode once), and their bytes.
    public var files = 0
    public var contentBytes: UInt64 = 0
    /// Entries created, removed, and regular files rewritten in some block.
    public var created = 0
    public var removed = 0
    public var changedFiles = 0
    /// File bytes handed to `write` (only blocks that differed, or new files' data).
    public var dataBytesWritten: UInt64 = 0
  }

  let volume: any VolumeOperations
  let source: any ContentSource
  public private(set) var summary = Summary()
  /// Tree inode -> volume inode, for hard links.
  private var placed: [ObjectIdentifier: UInt32] = [:]
  /// Volume inode -> the tree inode it became: an old hard link shared with another tree inode is
  /// broken rather than rewritten.
  private var claimed: [UInt32: ObjectIdentifier] = [:]
  /// Metadata to set once every entry is in place, children before their directory.
  private var finishing: [(UInt32, Inode)] = []
  private var counted = Set<ObjectIdentifier>()
  static let window = 1 << 20
  let blockSize = RoseLayout.blockSize

  public init(volume: any VolumeOperations, source: any ContentSource) {
    self.volume = volume
    self.source = source
  }

  /// Makes the volume's root directory `root`.
  public func apply(root: Inode) throws {
    guard root.kind == .directory else { throw EngineError(ENOTDIR, "the new tree's root") }
    try sync(directory: volume.rootIno, to: root, path: "")
    finishing.append((volume.rootIno, root))
    for (ino, node) in finishing { try setMetadata(ino, node) }
  }

  private func count(_ node: Inode) {
    guard node.kind == .regular || node.kind == .symlink,
      counted.insert(ObjectIdentifier(node)).inserted
    else { return }
    summary.files += 1
    summary.contentBytes += node.content.size
  }

  private func sync(directory dir: UInt32, to tree: Inode, path: String) throws {
    var existing: [Name: DirectoryListing] = [:]
    var cookie: UInt64 = 0
    while true {
      let batch = try volume.readdir(dir, after: cookie, limit: 1024)
      for e in batch { existing[Name(e.name)] = e }
      guard let last = batch.last else { break }
      cookie = last.cookie
    }
    for (name, entry) in existing where tree.children[name] == nil {
      try remove(parent: dir, name: name.bytes, kind: entry.kind, ino: entry.ino)
    }
    for (name, node) in tree.children.sorted(by: { $0.key < $1.key }) {
      count(node)
      let childPath = path + "/" + name.description
      if let entry = existing[name], let ino = try reuse(entry, for: node, parent: dir, name: name)
      {
        if node.kind == .directory { try sync(directory: ino, to: node, path: childPath) }
        continue
      }
      if let target = placed[ObjectIdentifier(node)], node.kind != .directory {
        _ = try volume.link(target, newParent: dir, newName: name.bytes)
        summary.created += 1
        continue
      }
      let ino = try create(parent: dir, name: name.bytes, node: node)
      summary.created += 1
      placed[ObjectIdentifier(node)] = ino
      claimed[ino] = ObjectIdentifier(node)
      if node.kind == .directory { try sync(directory: ino, to: node, path: childPath) }
      finishing.append((ino, node))
    }
  }

  /// Keeps an existing entry for a tree node when it can: returns its inode (updated in place), or
  /// nil after removing it when the node must be created (or linked) instead.
  private func reuse(_ entry: DirectoryListing, for node: Inode, parent: UInt32, name: Name) throws
    -> UInt32?
  {
    let id = ObjectIdentifier(node)
    if let target = placed[id] {
      if target == entry.ino { return entry.ino }  // the same hard link, already synced
    } else if entry.kind == node.kind, claimed[entry.ino] == nil {
      let keep: Bool
      switch node.kind {
      case .regular:
        try syncContent(entry.ino, node)
        keep = true
      case .symlink:
        keep = try volume.readlink(entry.ino) == (try bytes(of: node))
      case .characterDevice, .blockDevice:
        let a = try volume.getattr(entry.ino)
        keep = a.rdevMajor == node.rdevMajor && a.rdevMinor == node.rdevMinor
      case .directory, .fifo, .socket:
        keep = true
      }
      if keep {
        placed[id] = entry.ino
        claimed[entry.ino] = id
        finishing.append((entry.ino, node))
        return entry.ino
      }
    }
    try remove(parent: parent, name: name.bytes, kind: entry.kind, ino: entry.ino)
    return nil
  }

  private func remove(parent: UInt32, name: [UInt8], kind: FileKind, ino: UInt32) throws {
    if kind == .directory {
      // Each pass removes what it lists, so the next starts from the beginning again.
      while case let batch = try volume.readdir(ino, after: 0, limit: 1024), !batch.isEmpty {
        for e in batch { try remove(parent: ino, name: e.name, kind: e.kind, ino: e.ino) }
      }
      try volume.rmdir(parent: parent, name: name)
    } else {
      try volume.unlink(parent: parent, name: name)
    }
    summary.removed += 1
  }

  private func create(parent: UInt32, name: [UInt8], node: Inode) throws -> UInt32 {
    switch node.kind {
    case .directory:
      return try volume.mkdir(
        parent: parent, name: name, mode: node.permissions, uid: node.uid, gid: node.gid
      ).ino
    case .symlink:
      return try volume.symlink(
        parent: parent, name: name, target: try bytes(of: node), uid: node.uid, gid: node.gid
      ).ino
    case .regular:
      let a = try volume.mknod(
        parent: parent, name: name, mode: node.mode, uid: node.uid, gid: node.gid, rdevMajor: 0,
        rdevMinor: 0)
      try writeContent(a.ino, node, fresh: true)
      return a.ino
    case .characterDevice, .blockDevice, .fifo, .socket:
      return try volume.mknod(
        parent: parent, name: name, mode: node.mode, uid: node.uid, gid: node.gid,
        rdevMajor: node.rdevMajor, rdevMinor: node.rdevMinor
      ).ino
    }
  }

  /// A symlink's target (stored like file data).
  private func bytes(of node: Inode) throws -> [UInt8] {
    var out = [UInt8](repeating: 0, count: Int(node.content.size))
    try source.readContent(node.content) { buf, off in
      out.replaceSubrange(Int(off)..<Int(off) + buf.count, with: buf)
    }
    return out
  }

  private func syncContent(_ ino: UInt32, _ node: Inode) throws {
    let before = summary.dataBytesWritten
    let old = try volume.getattr(ino)
    if old.size != node.content.size {
      _ = try volume.setattr(ino, AttributeChanges(size: node.content.size))
    }
    try writeContent(ino, node, fresh: false)
    if summary.dataBytesWritten != before || old.size != node.content.size {
      summary.changedFiles += 1
    }
  }

  /// Writes the tree's bytes where the volume's differ. A fresh file reads as zeros throughout, so
  /// its holes need nothing and its data is written without reading first.
  private func writeContent(_ ino: UInt32, _ node: Inode, fresh: Bool) throws {
    var position: UInt64 = 0
    try source.readContent(node.content) { buf, offset in
      if !fresh && offset > position { try zeroDifferences(ino, from: position, to: offset) }
      var done = 0
      while done < buf.count {
        let n = min(Self.window, buf.count - done)
        let piece = UnsafeRawBufferPointer(rebasing: buf[done..<done + n])
        if fresh {
          try volume.write(ino, offset: offset + UInt64(done), bytes: piece)
          summary.dataBytesWritten += UInt64(n)
        } else {
          try writeDifferences(ino, piece, at: offset + UInt64(done))
        }
        done += n
      }
      position = offset + UInt64(buf.count)
    }
    if !fresh && position < node.content.size {
      try zeroDifferences(ino, from: position, to: node.content.size)
    }
  }

  /// Compares `piece` with the volume block by block and writes the runs of blocks that differ.
  private func writeDifferences(_ ino: UInt32, _ piece: UnsafeRawBufferPointer, at offset: UInt64)
    throws
  {
    let old = try volume.read(ino, offset: offset, count: piece.count)
    var runStart: Int?
    var i = 0
    func flush(_ end: Int) throws {
      guard let s = runStart else { return }
      try volume.write(
        ino, offset: offset + UInt64(s), bytes: UnsafeRawBufferPointer(rebasing: piece[s..<end]))
      summary.dataBytesWritten += UInt64(end - s)
      runStart = nil
    }
    // Pieces are aligned to the file's blocks except at its end, so the steps are whole blocks.
    let firstStep = blockSize - Int(offset % UInt64(blockSize))
    while i < piece.count {
      let end = min(piece.count, i == 0 ? firstStep : i + blockSize)
      let same =
        end <= old.count
        && old.withUnsafeBytes { o in
          memcmp(o.baseAddress! + i, piece.baseAddress! + i, end - i) == 0
        }
      if same {
        try flush(i)
      } else if runStart == nil {
        runStart = i
      }
      i = end
    }
    try flush(piece.count)
  }

  /// A range the tree has as a hole: blocks the volume holds non-zero bytes in are written as zeros.
  private func zeroDifferences(_ ino: UInt32, from start: UInt64, to end: UInt64) throws {
    let zeros = [UInt8](repeating: 0, count: Self.window)
    var at = start
    while at < end {
      let n = Int(min(UInt64(Self.window), end - at))
      try zeros.withUnsafeBytes { z in
        try writeDifferences(ino, UnsafeRawBufferPointer(rebasing: z[0..<n]), at: at)
      }
      at += UInt64(n)
    }
  }

  private func existingXattr(_ ino: UInt32, _ name: [UInt8]) throws(EngineError) -> [UInt8]? {
    do {
      return try volume.getxattr(ino, name: name)
    } catch {
      if error.errno == ENODATA { return nil }
      throw error
    }
  }

  private func setMetadata(_ ino: UInt32, _ node: Inode) throws {
    let old = try volume.listxattr(ino)
    let want = Dictionary(
      node.xattrs.map { (Name($0.name), $0.value) }, uniquingKeysWith: { a, _ in a })
    for name in old where want[Name(name)] == nil { try volume.removexattr(ino, name: name) }
    for x in node.xattrs {
      if try existingXattr(ino, x.name) != x.value {
        try volume.setxattr(ino, name: x.name, value: x.value, mode: .createOrReplace)
      }
    }
    let a = try volume.getattr(ino)
    var c = AttributeChanges()
    if node.kind != .symlink && a.mode & 0o7777 != node.permissions {
      c.permissions = node.permissions
    }
    if a.uid != node.uid { c.uid = node.uid }
    if a.gid != node.gid { c.gid = node.gid }
    if a.atime != node.atime { c.atime = node.atime }
    if a.mtime != node.mtime { c.mtime = node.mtime }
    if c != AttributeChanges() || a.ctime != node.ctime {
      c.ctime = node.ctime
      _ = try volume.setattr(ino, c)
    }
  }
}
