import CRoseSystem
import RoseFS

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Streams a host file's bytes into the image: pread in 1 MiB chunks; files with fewer blocks than
/// their size are read region by region with SEEK_DATA/SEEK_HOLE so holes stay holes.
enum HostData {
  static let chunk = 1 << 20

  static func copy(fd: Int32, size: UInt64, allocated: Int64, path: String, to data: DataWriter)
    throws
  {
    guard size > 0 else { return }
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
    defer { buf.deallocate() }
    var regions: [(UInt64, UInt64)] = [(0, size)]
    if UInt64(max(allocated, 0)) < size {
      regions = []
      var pos: off_t = 0
      while UInt64(pos) < size {
        let d = lseek(fd, pos, rose_seek_data)
        if d < 0 {
          if errno == ENXIO { break }  // only a hole is left
          regions = [(0, size)]  // SEEK_DATA unsupported: read it all
          break
        }
        var h = lseek(fd, d, rose_seek_hole)
        if h < 0 { h = off_t(size) }
        let end = min(UInt64(h), size)
        if UInt64(d) >= end { break }
        regions.append((UInt64(d), end))
        pos = off_t(end)
      }
    }
    for (start, end) in regions {
      var off = start
      while off < end {
        let want = Int(min(UInt64(chunk), end - off))
        let n = pread(fd, buf.baseAddress, want, off_t(off))
        if n < 0 {
          if errno == EINTR { continue }
          throw IngestError.io(path: path, operation: "read", errno: errno)
        }
        if n == 0 { return }  // the file shrank while read: the rest reads as zeros
        try data.write(UnsafeRawBufferPointer(rebasing: buf[0..<n]), at: off)
        off += UInt64(n)
      }
    }
  }
}

/// Progress of one input, for the CLI's progress bar.
public struct IngestProgress: Sendable {
  /// Bytes of the input consumed (compressed bytes for archives).
  public var bytesRead: Int64
  /// Size of the input when known.
  public var totalBytes: Int64?
  public var entries: Int
}

/// Reads a host directory tree with lstat, never following symlinks, in name-byte order.
public final class DirectoryReader {
  public let path: String
  public var progress: ((IngestProgress) -> Void)?
  private var seen: [Key: Inode] = [:]
  private var entries = 0
  private var bytes: Int64 = 0

  struct Key: Hashable {
    var dev: UInt64
    var ino: UInt64
  }

  public init(path: String, progress: ((IngestProgress) -> Void)? = nil) {
    self.path = path
    self.progress = progress
  }

  /// Adds the tree under `path` at `prefix` in the image (its root directory's metadata goes to
  /// `prefix`, which is created when missing).
  public func read(into editor: TreeEditor, at prefix: [UInt8] = []) throws {
    let top = Array(path.utf8)
    var st = stat()
    // The top directory itself may be a symlink (a rootfs path given on the command line).
    guard stat(path, &st) == 0 else {
      throw IngestError.io(path: path, operation: "stat", errno: errno)
    }
    guard (st.st_mode & S_IFMT) == S_IFDIR else {
      throw IngestError.invalid(input: path, detail: "not a directory")
    }
    try editor.directory(at: prefix, try metadata(top, st), input: path)
    try walk(top, image: prefix, editor: editor)
  }

  private func cpath<R>(_ p: [UInt8], _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
    try (p + [0]).withUnsafeBufferPointer { b in
      try b.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
    }
  }

  private func printable(_ p: [UInt8]) -> String { Name.printable(p) }

  /// The names in a host directory, sorted by bytes (so the image does not depend on readdir).
  private func sortedNames(_ host: [UInt8]) throws -> [[UInt8]] {
    var names: [[UInt8]] = []
    let dp: OpaquePointer? = cpath(host) { opendir($0) }
    guard let dir = dp else {
      throw IngestError.io(path: printable(host), operation: "opendir", errno: errno)
    }
    defer { closedir(dir) }
    while true {
      errno = 0
      guard let ent = readdir(dir) else {
        if errno != 0 {
          throw IngestError.io(path: printable(host), operation: "readdir", errno: errno)
        }
        break
      }
      let name: [UInt8] = withUnsafeBytes(of: &ent.pointee.d_name) { raw in
        let n = raw.firstIndex(of: 0) ?? raw.count
        return Array(raw[0..<n])
      }
      if name == [0x2E] || name == [0x2E, 0x2E] { continue }
      names.append(name)
    }
    names.sort { $0.lexicographicallyPrecedes($1) }
    return names
  }

  /// Adds everything below the host directory `top`, depth first in name order. Iterative with an
  /// explicit stack of open levels: the depth of the tree is the input's, the thread stack is not.
  private func walk(_ top: [UInt8], image topImage: [UInt8], editor: TreeEditor) throws {
    var levels: [(host: [UInt8], image: [UInt8], names: [[UInt8]], next: Int)] = [
      (top, topImage, try sortedNames(top), 0)
    ]
    while let k = levels.indices.last {
      guard levels[k].next < levels[k].names.count else {
        levels.removeLast()
        continue
      }
      let name = levels[k].names[levels[k].next]
      levels[k].next += 1
      let host = levels[k].host
      let image = levels[k].image
      let h = host + [UInt8(ascii: "/")] + name
      let i = image.isEmpty ? name : image + [UInt8(ascii: "/")] + name
      let input = printable(h)
      if name.count > ImagePath.maxNameLength {
        throw IngestError.nameTooLong(input: path, entry: i, length: name.count)
      }
      var st = stat()
      guard cpath(h, { lstat($0, &st) }) == 0 else {
        throw IngestError.io(path: input, operation: "lstat", errno: errno)
      }
      entries += 1
      let kindBits = st.st_mode & S_IFMT
      if kindBits != S_IFDIR && st.st_nlink > 1 {
        let key = Key(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))
        if let inode = seen[key] {
          try editor.link(inode, at: i, input: path)
          continue
        }
      }
      let meta = try metadata(h, st)
      var made: Inode
      switch kindBits {
      case S_IFDIR:
        try editor.directory(at: i, meta, input: path)
        levels.append((h, i, try sortedNames(h), 0))
        continue
      case S_IFREG:
        // O_NONBLOCK: lstat said regular, but the name may have been swapped for a FIFO since.
        let fd = cpath(h) { open($0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) }
        guard fd >= 0 else { throw IngestError.io(path: input, operation: "open", errno: errno) }
        defer { close(fd) }
        let size = UInt64(st.st_size)
        made = try editor.file(at: i, size: size, meta, input: input) { data in
          try HostData.copy(
            fd: fd, size: size, allocated: Int64(st.st_blocks) * 512, path: input, to: data)
        }
        bytes += Int64(size)
      case S_IFLNK:
        var target = [CChar](repeating: 0, count: 4097)
        let n = cpath(h) { readlink($0, &target, target.count) }
        guard n >= 0 else { throw IngestError.io(path: input, operation: "readlink", errno: errno) }
        made = try editor.symlink(
          at: i, target: target[0..<n].map { UInt8(bitPattern: $0) }, meta, input: path)
      case S_IFCHR, S_IFBLK:
        let dev = UInt64(st.st_rdev)
        let major = UInt32(
          truncatingIfNeeded: ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~UInt64(0xFFF)))
        let minor = UInt32(truncatingIfNeeded: (dev & 0xFF) | ((dev >> 12) & ~UInt64(0xFF)))
        made = try editor.node(
          at: i, kind: kindBits == S_IFCHR ? .characterDevice : .blockDevice, meta,
          rdevMajor: major,
          rdevMinor: minor, input: path)
      case S_IFIFO:
        made = try editor.node(at: i, kind: .fifo, meta, input: path)
      case S_IFSOCK:
        made = try editor.node(at: i, kind: .socket, meta, input: path)
      default:
        throw IngestError.unsupportedType(input: path, entry: i, mode: UInt32(st.st_mode))
      }
      if st.st_nlink > 1 { seen[Key(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))] = made }
      progress?(IngestProgress(bytesRead: bytes, totalBytes: nil, entries: entries))
    }
  }

  private func metadata(_ h: [UInt8], _ st: stat) throws -> EntryMetadata {
    EntryMetadata(
      permissions: UInt16(truncatingIfNeeded: st.st_mode & 0o7777), uid: st.st_uid, gid: st.st_gid,
      mtime: Timestamp(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: UInt32(st.st_mtim.tv_nsec)),
      atime: Timestamp(seconds: Int64(st.st_atim.tv_sec), nanoseconds: UInt32(st.st_atim.tv_nsec)),
      ctime: Timestamp(seconds: Int64(st.st_ctim.tv_sec), nanoseconds: UInt32(st.st_ctim.tv_nsec)),
      xattrs: try checkedXattrs(h))
  }

  private func checkedXattrs(_ h: [UInt8]) throws -> [Xattr] {
    let xattrs = try readXattrs(h)
    try XattrLimits.check(xattrs, input: path, entry: h)
    return xattrs
  }

  private func readXattrs(_ h: [UInt8]) throws -> [Xattr] {
    try cpath(h) { p in
      var size = rose_llistxattr(p, nil, 0)
      if size < 0 {
        if errno == ENOTSUP || errno == ENOSYS { return [] }
        throw IngestError.io(path: printable(h), operation: "llistxattr", errno: errno)
      }
      if size == 0 { return [] }
      var list = [CChar](repeating: 0, count: size + 256)
      size = rose_llistxattr(p, &list, list.count)
      if size < 0 {
        throw IngestError.io(path: printable(h), operation: "llistxattr", errno: errno)
      }
      var out: [Xattr] = []
      var start = 0
      for i in 0..<size where list[i] == 0 {
        let name = list[start..<i].map { UInt8(bitPattern: $0) }
        start = i + 1
        if name.isEmpty { continue }
        var v = [UInt8]()
        let cname = Array(list[(i - name.count)...i])
        var n = rose_lgetxattr(p, cname, nil, 0)
        if n < 0 {
          if errno == ENODATA { continue }
          throw IngestError.io(path: printable(h), operation: "lgetxattr", errno: errno)
        }
        v = [UInt8](repeating: 0, count: n + 64)
        n = rose_lgetxattr(p, cname, &v, v.count)
        if n < 0 { throw IngestError.io(path: printable(h), operation: "lgetxattr", errno: errno) }
        out.append(Xattr(name: name, value: Array(v[0..<n])))
      }
      return out.sorted { $0.name.lexicographicallyPrecedes($1.name) }
    }
  }
}
