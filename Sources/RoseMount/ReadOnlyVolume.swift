import RoseFS

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// One subvolume of a packed image served through `VolumeOperations` by the image reader: every
/// change answers EROFS. It mounts any image the reader accepts, independently of the read-write
/// engine, so `rosepack mount --read-only` also opens images the engine refuses.
public final class ReadOnlyVolume: VolumeOperations {
  public let reader: ImageReader
  public let head: Int
  public let rootIno: UInt32
  public var isReadOnly: Bool { true }
  /// The last directories listed: a `readdir` resumed at a cookie must not re-read a large directory.
  private var listings: [UInt32: [DirectoryEntry]] = [:]
  private var contents: [UInt32: FileContent] = [:]
  private static let cacheLimit = 256

  public init(reader: ImageReader, subvolume: String?) throws(EngineError) {
    self.reader = reader
    do {
      head = try reader.headIndex(named: subvolume)
    } catch {
      throw EngineError(ENOENT, "\(error)")
    }
    rootIno = reader.checkpoint.heads[head].rootIno
  }

  /// Reader errors as errno: a missing name is ENOENT, damage is EUCLEAN, anything else EIO.
  private func mapped<T>(_ body: () throws -> T) throws(EngineError) -> T {
    do {
      return try body()
    } catch let e as EngineError {
      throw e
    } catch let e as RoseFSError {
      switch e {
      case .notFound(let m): throw EngineError.noEntry(m)
      case .corrupt: throw EngineError.corrupt("\(e)")
      default: throw EngineError.io("\(e)")
      }
    } catch {
      throw EngineError.io("\(error)")
    }
  }

  private func record(_ ino: UInt32) throws(EngineError) -> InodeRecord {
    try mapped { try reader.readInodeRecord(ino, head: head) }
  }

  private static func attributes(_ r: InodeRecord) -> NodeAttributes {
    NodeAttributes(
      ino: r.ino, mode: r.mode, nlink: r.nlink, uid: r.uid, gid: r.gid, size: r.size,
      blocks: r.blocks, atime: r.atime, mtime: r.mtime, ctime: r.ctime, rdevMajor: r.rdevMajor,
      rdevMinor: r.rdevMinor)
  }

  public func getattr(_ ino: UInt32) throws(EngineError) -> NodeAttributes {
    Self.attributes(try record(ino))
  }

  public func lookup(parent: UInt32, name: [UInt8]) throws(EngineError) -> NodeAttributes {
    let dir = try record(parent)
    guard dir.kind == .directory else { throw EngineError(ENOTDIR) }
    let entry = try mapped { try reader.lookup(name: name, inDirectory: dir, head: head) }
    guard let entry else { throw EngineError.noEntry() }
    return try getattr(entry.ino)
  }

  public func readdir(_ ino: UInt32, after cookie: UInt64, limit: Int) throws(EngineError)
    -> [DirectoryListing]
  {
    let all: [DirectoryEntry]
    if cookie != 0, let cached = listings[ino] {
      all = cached
    } else {
      let dir = try record(ino)
      guard dir.kind == .directory else { throw EngineError(ENOTDIR) }
      all = try mapped { try reader.entries(of: dir, head: head) }
      if listings.count >= Self.cacheLimit { listings.removeAll() }
      listings[ino] = all
    }
    // Entries are in key order: binary search for the first key after the cookie.
    var lo = 0
    var hi = all.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if all[mid].key <= cookie { lo = mid + 1 } else { hi = mid }
    }
    var out: [DirectoryListing] = []
    for e in all[lo...].prefix(limit) {
      guard let kind = FileKind(rawValue: e.type) else {
        throw EngineError.corrupt("ino \(ino): entry with type \(e.type)")
      }
      out.append(DirectoryListing(name: e.name, ino: e.ino, kind: kind, cookie: e.key))
    }
    return out
  }

  public func readlink(_ ino: UInt32) throws(EngineError) -> [UInt8] {
    let rec = try record(ino)
    guard rec.kind == .symlink else { throw EngineError(EINVAL) }
    return try mapped { try reader.readAll(ino: ino, head: head, limit: 4096) }
  }

  public func read(_ ino: UInt32, offset: UInt64, count: Int) throws(EngineError) -> [UInt8] {
    let content: FileContent
    if let cached = contents[ino] {
      content = cached
    } else {
      let rec = try record(ino)
      guard rec.kind == .regular else {
        throw EngineError(rec.kind == .directory ? EISDIR : EINVAL)
      }
      content = try mapped { try reader.content(of: rec, head: head) }
      if contents.count >= Self.cacheLimit { contents.removeAll() }
      contents[ino] = content
    }
    guard offset < content.size, count > 0 else { return [] }
    let end = min(content.size, offset + UInt64(count))
    var out = [UInt8](repeating: 0, count: Int(end - offset))
    if let inline = content.inline {
      out.replaceSubrange(0..<out.count, with: inline[Int(offset)..<Int(end)])
      return out
    }
    // Only the blocks of the range are read: the extents are clipped to it, holes stay zero.
    let bs = UInt64(RoseLayout.blockSize)
    let firstBlock = offset / bs
    let endBlock = (end + bs - 1) / bs
    var clipped = content
    clipped.extents = content.extents.compactMap { e in
      let l = UInt64(e.logical)
      let from = max(l, firstBlock)
      let to = min(l + UInt64(e.count), endBlock)
      guard from < to else { return nil }
      return Extent(
        logical: UInt32(from), physical: e.physical + UInt32(from - l), count: UInt32(to - from))
    }
    let tailStart = content.size - UInt64(content.tail?.length ?? 0)
    if end <= tailStart { clipped.tail = nil }
    try mapped {
      try reader.readContent(clipped) { buf, at in
        let lo = max(at, offset)
        let hi = min(at + UInt64(buf.count), end)
        guard lo < hi else { return }
        out.withUnsafeMutableBytes { dst in
          let src = UnsafeRawBufferPointer(rebasing: buf[Int(lo - at)..<Int(hi - at)])
          UnsafeMutableRawBufferPointer(rebasing: dst[Int(lo - offset)..<Int(hi - offset)])
            .copyMemory(from: src)
        }
      }
    }
    return out
  }

  public func getxattr(_ ino: UInt32, name: [UInt8]) throws(EngineError) -> [UInt8] {
    let rec = try record(ino)
    let all = try mapped { try reader.xattrs(of: rec, head: head) }
    guard let x = all.first(where: { $0.name == name }) else { throw EngineError(ENODATA) }
    return x.value
  }

  public func listxattr(_ ino: UInt32) throws(EngineError) -> [[UInt8]] {
    let rec = try record(ino)
    return try mapped { try reader.xattrs(of: rec, head: head) }.map(\.name)
  }

  public func statfs() throws(EngineError) -> VolumeStatistics {
    let report = try mapped { try reader.spaceReport() }
    let bs = UInt64(RoseLayout.blockSize)
    let inodes = UInt64(report.heads[head].inodeCount)
    return VolumeStatistics(
      blockSize: UInt32(bs), totalBlocks: report.volumeBytes / bs, freeBlocks: 0,
      availableBlocks: 0, totalInodes: inodes, freeInodes: 0)
  }

  // Every change: EROFS.
  private static let readOnly = EngineError(EROFS)
  public func mknod(
    parent: UInt32, name: [UInt8], mode: UInt16, uid: UInt32, gid: UInt32, rdevMajor: UInt32,
    rdevMinor: UInt32
  ) throws(EngineError) -> NodeAttributes { throw Self.readOnly }
  public func mkdir(parent: UInt32, name: [UInt8], mode: UInt16, uid: UInt32, gid: UInt32)
    throws(EngineError) -> NodeAttributes
  { throw Self.readOnly }
  public func symlink(parent: UInt32, name: [UInt8], target: [UInt8], uid: UInt32, gid: UInt32)
    throws(EngineError) -> NodeAttributes
  { throw Self.readOnly }
  public func link(_ ino: UInt32, newParent: UInt32, newName: [UInt8]) throws(EngineError)
    -> NodeAttributes
  { throw Self.readOnly }
  public func unlink(parent: UInt32, name: [UInt8]) throws(EngineError) { throw Self.readOnly }
  public func rmdir(parent: UInt32, name: [UInt8]) throws(EngineError) { throw Self.readOnly }
  public func rename(
    parent: UInt32, name: [UInt8], newParent: UInt32, newName: [UInt8], flags: RenameFlags
  ) throws(EngineError) { throw Self.readOnly }
  public func write(_ ino: UInt32, offset: UInt64, bytes: UnsafeRawBufferPointer)
    throws(EngineError)
  { throw Self.readOnly }
  public func setattr(_ ino: UInt32, _ changes: AttributeChanges) throws(EngineError)
    -> NodeAttributes
  { throw Self.readOnly }
  public func fallocate(_ ino: UInt32, offset: UInt64, length: UInt64, keepSize: Bool)
    throws(EngineError)
  { throw Self.readOnly }
  public func setxattr(_ ino: UInt32, name: [UInt8], value: [UInt8], mode: XattrMode)
    throws(EngineError)
  { throw Self.readOnly }
  public func removexattr(_ ino: UInt32, name: [UInt8]) throws(EngineError) {
    throw Self.readOnly
  }
  public func fsync(_ ino: UInt32, dataOnly: Bool) throws(EngineError) {}
  public func sync() throws(EngineError) {}
  public func unmount() throws(EngineError) {}
}
