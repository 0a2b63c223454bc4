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

  /// `buf` is the caller's reusable read buffer: one allocation per walk, not per file.
  static func copy(
    fd: Int32, size: UInt64, allocated: Int64, path: () -> String, to data: DataWriter,
    buffer buf: UnsafeMutableRawBufferPointer
  ) throws {
    guard size > 0 else { return }
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
        let want = Int(min(UInt64(buf.count), end - off))
        let n = pread(fd, buf.baseAddress, want, off_t(off))
        if n < 0 {
          if errno == EINTR { continue }
          throw IngestError.io(path: path(), operation: "read", errno: errno)
        }
        if n == 0 { return }  // the file shrank while read: the rest reads as zeros
        try data.write(UnsafeRawBufferPointer(rebasing: buf[0..<n]), at: off)
        off += UInt64(n)
      }
    }
  }

  static func copy(fd: Int32, size: UInt64, allocated: Int64, path: String, to data: DataWriter)
    throws
  {
    guard size > 0 else { return }
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
    defer { buf.deallocate() }
    try copy(fd: fd, size: size, allocated: allocated, path: { path }, to: data, buffer: buf)
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

/// Reads a host directory tree, never following symlinks, in name-byte order. The walk works on
/// directory descriptors (`openat`, `fstatat` with AT_SYMLINK_NOFOLLOW, `readlinkat`, `flistxattr`
/// on the opened file): the kernel resolves one name per call instead of a whole path from the top,
/// and no host path is built per entry (only for error messages, and for the xattrs of the entries
/// that are not opened: symlinks and special files).
public final class DirectoryReader {
  public let path: String
  public var progress: ((IngestProgress) -> Void)?
  private var seen: [Key: Inode] = [:]
  private var entries = 0
  private var bytes: Int64 = 0
  /// Entries between progress reports (the display redraws at most ten times a second anyway).
  static let progressEvery = 256

  struct Key: Hashable {
    var dev: UInt64
    var ino: UInt64
  }

  /// Directories deeper than this keep no descriptor open while their subtree is read: such a level
  /// gives its descriptor back and reopens itself by path when the walk returns to it, so a deep
  /// input cannot run the process out of descriptors.
  static let openLevels = 128

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
    let fd = open(path, O_RDONLY | O_CLOEXEC | rose_o_directory)
    guard fd >= 0 else { throw IngestError.io(path: path, operation: "open", errno: errno) }
    let level = Level(fd: fd, host: top, image: prefix)
    defer { level.close() }
    guard fstat(fd, &st) == 0 else {
      throw IngestError.io(path: path, operation: "stat", errno: errno)
    }
    try editor.directory(
      at: prefix, metadata(st, xattrs: try xattrs(fd: fd, host: top)), input: path)
    level.names = try sortedNames(level)
    try walk(level, editor: editor)
  }

  /// One directory being read: its descriptor (or -1 while given back), where it is on the host and
  /// in the image, and its names in byte order.
  private final class Level {
    var fd: Int32
    let host: [UInt8]
    let image: [UInt8]
    var names: [[UInt8]] = []
    var next = 0

    init(fd: Int32, host: [UInt8], image: [UInt8]) {
      self.fd = fd
      self.host = host
      self.image = image
    }

    func close() {
      if fd >= 0 { _ = Glibc.close(fd) }
      fd = -1
    }

    func hostPath(_ name: [UInt8]) -> [UInt8] { host + [UInt8(ascii: "/")] + name }
  }

  private func cpath<R>(_ p: [UInt8], _ body: (UnsafePointer<CChar>) throws -> R) rethrows -> R {
    try (p + [0]).withUnsafeBufferPointer { b in
      try b.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
    }
  }

  private func printable(_ p: [UInt8]) -> String { Name.printable(p) }

  /// The names in a directory, sorted by bytes (so the image does not depend on readdir). Reads
  /// through a second descriptor of the directory (`closedir` closes the one it was given).
  private func sortedNames(_ level: Level) throws -> [[UInt8]] {
    var names: [[UInt8]] = []
    let copy = openat(level.fd, ".", O_RDONLY | O_CLOEXEC | rose_o_directory)
    guard copy >= 0 else {
      throw IngestError.io(path: printable(level.host), operation: "opendir", errno: errno)
    }
    guard let dir = fdopendir(copy) else {
      let e = errno
      close(copy)
      throw IngestError.io(path: printable(level.host), operation: "opendir", errno: e)
    }
    defer { closedir(dir) }
    while true {
      errno = 0
      guard let ent = readdir(dir) else {
        if errno != 0 {
          throw IngestError.io(path: printable(level.host), operation: "readdir", errno: errno)
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

  /// Adds everything below the level `top`, depth first in name order. Iterative with an explicit
  /// stack of open levels: the depth of the tree is the input's, the thread stack is not.
  private func walk(_ top: Level, editor: TreeEditor) throws {
    var levels: [Level] = [top]
    defer { for l in levels.dropFirst() { l.close() } }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: HostData.chunk, alignment: 4096)
    defer { buffer.deallocate() }
    while let level = levels.last {
      guard level.next < level.names.count else {
        levels.removeLast()
        if !levels.isEmpty { level.close() }
        if let parent = levels.last, parent.fd < 0 { try reopen(parent) }
        continue
      }
      let name = level.names[level.next]
      level.next += 1
      let image = level.image
      let i = image.isEmpty ? name : image + [UInt8(ascii: "/")] + name
      if name.count > ImagePath.maxNameLength {
        throw IngestError.nameTooLong(input: path, entry: i, length: name.count)
      }
      let dirfd = level.fd
      var st = stat()
      guard cname(name, { fstatat(dirfd, $0, &st, rose_at_symlink_nofollow) }) == 0 else {
        throw IngestError.io(
          path: printable(level.hostPath(name)), operation: "lstat", errno: errno)
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
      var made: Inode
      switch kindBits {
      case S_IFDIR:
        let fd = cname(name) {
          openat(dirfd, $0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | rose_o_directory)
        }
        guard fd >= 0 else {
          throw IngestError.io(
            path: printable(level.hostPath(name)), operation: "open", errno: errno)
        }
        let child = Level(fd: fd, host: level.hostPath(name), image: i)
        do {
          let meta = metadata(st, xattrs: try xattrs(fd: fd, host: child.host))
          try editor.directory(at: i, meta, input: path)
          child.names = try sortedNames(child)
        } catch {
          child.close()
          throw error
        }
        if levels.count >= DirectoryReader.openLevels { level.close() }
        levels.append(child)
        continue
      case S_IFREG:
        // O_NONBLOCK: fstatat said regular, but the name may have been swapped for a FIFO since.
        let fd = cname(name) { openat(dirfd, $0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) }
        guard fd >= 0 else {
          throw IngestError.io(
            path: printable(level.hostPath(name)), operation: "open", errno: errno)
        }
        defer { close(fd) }
        let meta = metadata(st, xattrs: try xattrs(fd: fd, host: level.hostPath(name)))
        let size = UInt64(st.st_size)
        let allocated = Int64(st.st_blocks) * 512
        let input = { [self] in self.printable(level.hostPath(name)) }
        made = try editor.file(at: i, size: size, meta, input: path) { data in
          try HostData.copy(
            fd: fd, size: size, allocated: allocated, path: input, to: data, buffer: buffer)
        }
        bytes += Int64(size)
      case S_IFLNK:
        var target = [CChar](repeating: 0, count: 4097)
        let n = cname(name) { readlinkat(dirfd, $0, &target, target.count) }
        guard n >= 0 else {
          throw IngestError.io(
            path: printable(level.hostPath(name)), operation: "readlink", errno: errno)
        }
        let meta = metadata(st, xattrs: try xattrs(path: level.hostPath(name)))
        made = try editor.symlink(
          at: i, target: target[0..<n].map { UInt8(bitPattern: $0) }, meta, input: path)
      case S_IFCHR, S_IFBLK:
        let meta = metadata(st, xattrs: try xattrs(path: level.hostPath(name)))
        let dev = UInt64(st.st_rdev)
        let major = UInt32(
          truncatingIfNeeded: ((dev >> 8) & 0xFFF) | ((dev >> 32) & ~UInt64(0xFFF)))
        let minor = UInt32(truncatingIfNeeded: (dev & 0xFF) | ((dev >> 12) & ~UInt64(0xFF)))
        made = try editor.node(
          at: i, kind: kindBits == S_IFCHR ? .characterDevice : .blockDevice, meta,
          rdevMajor: major,
          rdevMinor: minor, input: path)
      case S_IFIFO:
        let meta = metadata(st, xattrs: try xattrs(path: level.hostPath(name)))
        made = try editor.node(at: i, kind: .fifo, meta, input: path)
      case S_IFSOCK:
        let meta = metadata(st, xattrs: try xattrs(path: level.hostPath(name)))
        made = try editor.node(at: i, kind: .socket, meta, input: path)
      default:
        throw IngestError.unsupportedType(input: path, entry: i, mode: UInt32(st.st_mode))
      }
      if st.st_nlink > 1 { seen[Key(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))] = made }
      if entries % DirectoryReader.progressEvery == 0 { report() }
    }
    report()
  }

  private func report() {
    progress?(IngestProgress(bytesRead: bytes, totalBytes: nil, entries: entries))
  }

  /// A level that gave its descriptor back (deeper than `openLevels`) opens itself again by path.
  private func reopen(_ level: Level) throws {
    let fd = cpath(level.host) { open($0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | rose_o_directory) }
    guard fd >= 0 else {
      throw IngestError.io(path: printable(level.host), operation: "open", errno: errno)
    }
    level.fd = fd
  }

  /// `name` as a C string (readdir names hold no NUL), built on the stack.
  private func cname<R>(_ name: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
    withUnsafeTemporaryAllocation(of: CChar.self, capacity: name.count + 1) { buf in
      name.withUnsafeBufferPointer { src in
        for k in 0..<src.count { buf[k] = CChar(bitPattern: src[k]) }
      }
      buf[name.count] = 0
      return body(UnsafePointer(buf.baseAddress!))
    }
  }

  private func metadata(_ st: stat, xattrs: [Xattr]) -> EntryMetadata {
    EntryMetadata(
      permissions: UInt16(truncatingIfNeeded: st.st_mode & 0o7777), uid: st.st_uid, gid: st.st_gid,
      mtime: Timestamp(seconds: Int64(st.st_mtim.tv_sec), nanoseconds: UInt32(st.st_mtim.tv_nsec)),
      atime: Timestamp(seconds: Int64(st.st_atim.tv_sec), nanoseconds: UInt32(st.st_atim.tv_nsec)),
      ctime: Timestamp(seconds: Int64(st.st_ctim.tv_sec), nanoseconds: UInt32(st.st_ctim.tv_nsec)),
      xattrs: xattrs)
  }

  /// The xattrs of an opened file or directory, checked against the format's limits.
  private func xattrs(fd: Int32, host: @autoclosure () -> [UInt8]) throws -> [Xattr] {
    let list = try XattrList.read(
      list: { rose_flistxattr(fd, $0, $1) }, get: { rose_fgetxattr(fd, $0, $1, $2) },
      host: host, listCall: "flistxattr", getCall: "fgetxattr")
    if !list.isEmpty { try XattrLimits.check(list, input: path, entry: host()) }
    return list
  }

  /// The xattrs of a symlink or special file (not opened: opening a FIFO or a device has effects),
  /// by path, without following a final symlink.
  private func xattrs(path h: [UInt8]) throws -> [Xattr] {
    let list = try cpath(h) { p in
      try XattrList.read(
        list: { rose_llistxattr(p, $0, $1) }, get: { rose_lgetxattr(p, $0, $1, $2) },
        host: { h }, listCall: "llistxattr", getCall: "lgetxattr")
    }
    if !list.isEmpty { try XattrLimits.check(list, input: path, entry: h) }
    return list
  }
}

/// Reads all xattrs through a list call and a get call (by descriptor or by path), sorted by name
/// bytes.
enum XattrList {
  static func read(
    list: (UnsafeMutablePointer<CChar>?, Int) -> Int,
    get: (UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int,
    host: () -> [UInt8], listCall: String, getCall: String
  ) throws -> [Xattr] {
    var size = list(nil, 0)
    if size < 0 {
      if errno == ENOTSUP || errno == ENOSYS { return [] }
      throw IngestError.io(path: Name.printable(host()), operation: listCall, errno: errno)
    }
    if size == 0 { return [] }
    var names = [CChar](repeating: 0, count: size + 256)
    size = names.withUnsafeMutableBufferPointer { list($0.baseAddress, $0.count) }
    if size < 0 {
      throw IngestError.io(path: Name.printable(host()), operation: listCall, errno: errno)
    }
    var out: [Xattr] = []
    var start = 0
    for i in 0..<size where names[i] == 0 {
      let name = names[start..<i].map { UInt8(bitPattern: $0) }
      let cname = Array(names[start...i])
      start = i + 1
      if name.isEmpty { continue }
      var n = cname.withUnsafeBufferPointer { get($0.baseAddress!, nil, 0) }
      if n < 0 {
        if errno == ENODATA { continue }
        throw IngestError.io(path: Name.printable(host()), operation: getCall, errno: errno)
      }
      var v = [UInt8](repeating: 0, count: n + 64)
      n = cname.withUnsafeBufferPointer { c in
        v.withUnsafeMutableBytes { get(c.baseAddress!, $0.baseAddress, $0.count) }
      }
      if n < 0 {
        throw IngestError.io(path: Name.printable(host()), operation: getCall, errno: errno)
      }
      out.append(Xattr(name: name, value: Array(v[0..<n])))
    }
    return out.sorted { $0.name.lexicographicallyPrecedes($1.name) }
  }
}
