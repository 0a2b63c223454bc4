import CArchive
import RoseFS

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Writes a tree as a pax tarball: paths sorted by name bytes ("./" then "./a", "./a/b"...), numeric
/// owners only, xattrs as SCHILY.xattr, hard links as links (the second and later names of an inode,
/// in path order), devices, fifos, symlinks, times with nanoseconds, and files with holes as sparse
/// entries. The same tree gives the same bytes. Writes `path.tmp-<pid>` and renames it at the end.
public struct TarExporter {
  public enum Compression: Sendable {
    case none, gzip, xz, zstd
  }

  public var compression: Compression
  static let aclAccess = Array("system.posix_acl_access".utf8)
  static let aclDefault = Array("system.posix_acl_default".utf8)
  public init(compression: Compression = .none) { self.compression = compression }

  public func export(root: Inode, source: ContentSource, to path: String) throws {
    ArchiveReader.setLocale()
    let tmp = path + ".tmp-\(getpid())"
    guard let a = archive_write_new() else {
      throw IngestError.export(output: path, entry: nil, detail: "out of memory")
    }
    var ok = false
    defer {
      archive_write_free(a)
      if !ok { unlink(tmp) }
    }
    func fail(_ entry: [UInt8]?, _ what: String) -> IngestError {
      let m = archive_error_string(a).map { String(cString: $0) } ?? "unknown error"
      return IngestError.export(output: path, entry: entry, detail: "\(what): \(m)")
    }
    guard archive_write_set_format_pax(a) == ARCHIVE_OK else { throw fail(nil, "pax format") }
    switch compression {
    case .none: break
    case .gzip:
      archive_write_add_filter_gzip(a)
      archive_write_set_filter_option(a, "gzip", "timestamp", nil)
    case .xz: archive_write_add_filter_xz(a)
    case .zstd: archive_write_add_filter_zstd(a)
    }
    archive_write_set_bytes_in_last_block(a, 1)
    guard archive_write_open_filename(a, tmp) == ARCHIVE_OK else {
      throw fail(nil, "create \(tmp)")
    }

    // Names per inode, to tell which names become hard links.
    var names: [ObjectIdentifier: Int] = [:]
    TreeEditor.walk(root, prefix: []) { _, inode in
      if inode.kind != .directory { names[ObjectIdentifier(inode), default: 0] += 1 }
    }
    var firstPath: [ObjectIdentifier: [UInt8]] = [:]
    let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    zeros.initializeMemory(as: UInt8.self, repeating: 0)
    defer { zeros.deallocate() }

    guard let entry = archive_entry_new() else { throw fail(nil, "out of memory") }
    defer { archive_entry_free(entry) }

    func write(_ p: [UInt8], _ inode: Inode) throws {
      archive_entry_clear(entry)
      let tarPath = [UInt8(ascii: "."), UInt8(ascii: "/")] + p
      withCString(tarPath) { archive_entry_copy_pathname(entry, $0) }
      archive_entry_set_mode(entry, mode_t(inode.mode))
      archive_entry_set_uid(entry, la_int64_t(inode.uid))
      archive_entry_set_gid(entry, la_int64_t(inode.gid))
      archive_entry_set_mtime(entry, time_t(inode.mtime.seconds), Int(inode.mtime.nanoseconds))
      archive_entry_set_atime(entry, time_t(inode.atime.seconds), Int(inode.atime.nanoseconds))
      archive_entry_set_ctime(entry, time_t(inode.ctime.seconds), Int(inode.ctime.nanoseconds))
      for x in inode.xattrs {
        if x.name == TarExporter.aclAccess || x.name == TarExporter.aclDefault {
          let type =
            x.name == TarExporter.aclAccess
            ? ARCHIVE_ENTRY_ACL_TYPE_ACCESS : ARCHIVE_ENTRY_ACL_TYPE_DEFAULT
          if PosixACL.write(entry, value: x.value, type: Int32(type)) { continue }
        }
        withCString(x.name) { n in
          x.value.withUnsafeBytes { v in
            archive_entry_xattr_add_entry(entry, n, v.baseAddress, v.count)
          }
        }
      }
      let id = ObjectIdentifier(inode)
      var dataContent: FileContent?
      if inode.kind != .directory, (names[id] ?? 1) > 1 {
        if let first = firstPath[id] {
          withCString([UInt8(ascii: "."), UInt8(ascii: "/")] + first) {
            archive_entry_copy_hardlink(entry, $0)
          }
          archive_entry_set_size(entry, 0)
          try header(p)
          return
        }
        firstPath[id] = p
      }
      switch inode.kind {
      case .directory: archive_entry_set_size(entry, 0)
      case .regular:
        archive_entry_set_size(entry, la_int64_t(inode.content.size))
        dataContent = inode.content
        if let regions = TarExporter.dataRegions(inode.content) {
          for r in regions {
            archive_entry_sparse_add_entry(entry, la_int64_t(r.0), la_int64_t(r.1))
          }
        }
      case .symlink:
        var target: [UInt8] = []
        try source.readContent(inode.content) { b, _ in target += b }
        withCString(target) { archive_entry_copy_symlink(entry, $0) }
        archive_entry_set_size(entry, 0)
      case .characterDevice, .blockDevice:
        archive_entry_set_rdevmajor(entry, dev_t(inode.rdevMajor))
        archive_entry_set_rdevminor(entry, dev_t(inode.rdevMinor))
        archive_entry_set_size(entry, 0)
      case .fifo, .socket: archive_entry_set_size(entry, 0)
      }
      try header(p)
      if let c = dataContent, c.size > 0 { try data(c, p) }
    }

    func header(_ p: [UInt8]) throws {
      let r = archive_write_header(a, entry)
      if r < ARCHIVE_WARN { throw fail(p, "write header") }
    }

    // Streams the logical bytes (holes as zeros, which the pax writer skips for sparse entries).
    func data(_ c: FileContent, _ p: [UInt8]) throws {
      var written: UInt64 = 0
      func put(_ b: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < b.count {
          let n = archive_write_data(a, b.baseAddress! + done, b.count - done)
          if n <= 0 { throw fail(p, "write data") }
          done += n
        }
        written += UInt64(b.count)
      }
      func zeroTo(_ end: UInt64) throws {
        while written < end {
          let n = Int(min(UInt64(zeros.count), end - written))
          try put(UnsafeRawBufferPointer(rebasing: zeros[0..<n]))
        }
      }
      func emit(_ b: UnsafeRawBufferPointer, at off: UInt64) throws {
        guard off >= written else { return }
        try zeroTo(off)
        let n = Int(min(UInt64(b.count), c.size - written))
        if n > 0 { try put(UnsafeRawBufferPointer(rebasing: b[0..<n])) }
      }
      if TarExporter.dataRegions(c) != nil {
        // Sparse: read each stored piece on its own so a huge hole never becomes a huge buffer.
        try StoredPieces.forEach(c, source) { b, off in try emit(b, at: off) }
      } else {
        try source.readContent(c) { b, off in try emit(b, at: off) }
      }
      try zeroTo(c.size)
    }

    try write([], root)  // "./"
    var failure: Error?
    TreeEditor.walk(root, prefix: []) { p, inode in
      guard failure == nil else { return }
      do { try write(p, inode) } catch let e as IngestError {
        failure = e
      } catch {
        // A damaged image (a data block failing its checksum): name the entry.
        failure = IngestError.export(output: path, entry: p, detail: "\(error)")
      }
    }
    if let failure { throw failure }
    guard archive_write_close(a) == ARCHIVE_OK else { throw fail(nil, "close") }
    guard rename(tmp, path) == 0 else {
      throw IngestError.export(
        output: path, entry: nil, detail: "rename: \(String(cString: strerror(errno)))")
    }
    ok = true
  }

  /// Data regions (offset, length) of a file with holes; nil when the file is stored densely.
  static func dataRegions(_ c: FileContent) -> [(UInt64, UInt64)]? {
    if c.inline != nil || c.size == 0 { return nil }
    let bs = UInt64(RoseLayout.blockSize)
    var stored = c.blockCount * bs
    if let t = c.tail { stored += UInt64(t.length) }
    if stored >= c.size { return nil }
    var out: [(UInt64, UInt64)] = []
    func add(_ off: UInt64, _ len: UInt64) {
      guard len > 0 else { return }
      if let last = out.last, last.0 + last.1 == off {
        out[out.count - 1].1 += len
      } else {
        out.append((off, len))
      }
    }
    for e in c.extents {
      let off = UInt64(e.logical) * bs
      add(off, min(UInt64(e.count) * bs, c.size - min(off, c.size)))
    }
    if let t = c.tail { add(c.size - UInt64(t.length), UInt64(t.length)) }
    if out.isEmpty { out.append((c.size, 0)) }
    return out
  }
}

func withCString<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
  try (bytes + [0]).withUnsafeBufferPointer { b in
    try b.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
  }
}

/// Reads a file's stored bytes piece by piece (each extent, then the tail), so a sparse file is read
/// without materialising its holes. Offsets are file offsets, increasing.
public enum StoredPieces {
  public static func forEach(
    _ c: FileContent, _ source: ContentSource,
    _ body: (UnsafeRawBufferPointer, UInt64) throws -> Void
  ) throws {
    if c.inline != nil {
      try source.readContent(c, body)
      return
    }
    let bs = UInt64(RoseLayout.blockSize)
    for e in c.extents {
      let piece = FileContent(
        size: UInt64(e.count) * bs,
        extents: [Extent(logical: 0, physical: e.physical, count: e.count)])
      let base = UInt64(e.logical) * bs
      try source.readContent(piece) { b, off in
        let start = base + off
        guard start < c.size else { return }
        let n = Int(min(UInt64(b.count), c.size - start))
        try body(UnsafeRawBufferPointer(rebasing: b[0..<n]), start)
      }
    }
    if let t = c.tail {
      let piece = FileContent(size: UInt64(t.length), tail: t)
      let base = c.size - UInt64(t.length)
      try source.readContent(piece) { b, off in try body(b, base + off) }
    }
  }
}
