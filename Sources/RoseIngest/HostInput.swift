import CArchive
import RoseFS

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// What a host path given as an input may be. A FIFO, socket or character device would block
/// `open` (a FIFO with no writer) or never end, so each is refused before anything opens it.
public enum HostInput {
  /// The kinds a refusal names.
  static func kindName(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFIFO: return "a FIFO (named pipe)"
    case S_IFSOCK: return "a socket"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFDIR: return "a directory"
    case S_IFLNK: return "a symlink"
    default: return "a special file"
    }
  }

  /// Throws unless `path` (following symlinks) is a regular file, or a directory when
  /// `directoryAllowed`, or a block device when `blockDeviceAllowed`.
  public static func check(
    _ path: String, what: String, directoryAllowed: Bool = false, blockDeviceAllowed: Bool = false
  ) throws {
    var st = stat()
    guard stat(path, &st) == 0 else {
      throw IngestError.io(path: path, operation: "stat", errno: errno)
    }
    let type = st.st_mode & S_IFMT
    if type == S_IFREG || (directoryAllowed && type == S_IFDIR)
      || (blockDeviceAllowed && type == S_IFBLK)
    {
      return
    }
    let accepted =
      directoryAllowed
      ? "regular files and directories"
      : blockDeviceAllowed ? "regular files and block devices" : "regular files"
    throw IngestError.invalid(
      input: path,
      detail:
        "\(what) is \(kindName(st.st_mode)); rosepack reads \(accepted) only (a pipe or device could block or never end). Save the stream to a file first"
    )
  }

  /// Opens a regular file for reading without ever blocking in `open` (O_NONBLOCK, then the type
  /// is checked on the descriptor itself, so a path swapped for a FIFO is caught too).
  public static func openRegular(_ path: String, what: String, noFollow: Bool = false) throws
    -> Int32
  {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (noFollow ? O_NOFOLLOW : 0))
    guard fd >= 0 else { throw IngestError.io(path: path, operation: "open", errno: errno) }
    var st = stat()
    guard fstat(fd, &st) == 0 else {
      let e = errno
      close(fd)
      throw IngestError.io(path: path, operation: "stat", errno: e)
    }
    guard (st.st_mode & S_IFMT) == S_IFREG else {
      close(fd)
      throw IngestError.invalid(
        input: path,
        detail:
          "\(what) is \(kindName(st.st_mode)), not a regular file; refused (it could block or never end)"
      )
    }
    // Reads of a regular file never block; clear the flag anyway so the descriptor behaves plainly.
    let flags = fcntl(fd, F_GETFL)
    if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
    return fd
  }
}

/// The format's limits on extended attributes (FORMAT.md section 10): a record holds a name of at
/// most 255 bytes and a value of at most 65535, and all records of an inode at most
/// `RoseLayout.maxXattrBytes`. Checked at ingest so that the error names the entry.
public enum XattrLimits {
  public static let maxName = 255
  public static let maxValue = 65535
  /// Bytes of a record besides its name and value (name length, index, value length).
  static let recordOverhead = 4

  public static func check(_ xattrs: [Xattr], input: String, entry: [UInt8]) throws {
    var total = 0
    for x in xattrs {
      if x.name.count > maxName {
        throw IngestError.invalid(
          input: input,
          detail:
            "entry \(IngestError.p(entry)) has an xattr name of \(x.name.count) bytes (\(IngestError.p(Array(x.name.prefix(40))))...); RoseFS allows at most \(maxName). Remove the xattr"
        )
      }
      if x.value.count > maxValue {
        throw IngestError.invalid(
          input: input,
          detail:
            "entry \(IngestError.p(entry)) has xattr \(IngestError.p(x.name)) with a value of \(x.value.count) bytes; RoseFS allows at most \(maxValue) per value and \(RoseLayout.maxXattrBytes) per inode. Remove the xattr"
        )
      }
      total += recordOverhead + x.name.count + x.value.count
    }
    if total > RoseLayout.maxXattrBytes {
      throw IngestError.invalid(
        input: input,
        detail:
          "entry \(IngestError.p(entry)) has \(xattrs.count) xattrs taking \(total) bytes; RoseFS stores at most \(RoseLayout.maxXattrBytes) bytes of xattrs per inode (4 bytes + name + value each). Remove some"
      )
    }
  }
}

/// Reads one record of a pax extended header straight from the archive bytes, for the records
/// libarchive loses (3.6 drops `linkpath` when a SCHILY.xattr record shares its header). Reads the
/// decompressed stream forward only, so entries asked about in order cost one pass in all.
final class PaxHeaderScanner {
  private let archive: OpaquePointer?
  private var position: Int64 = 0
  private var failed = false

  init(path: String) {
    archive = archive_read_new()
    guard let a = archive else { return }
    ArchiveFormats.supportFilters(a)
    archive_read_support_format_raw(a)
    var entry: OpaquePointer?
    if archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK
      || archive_read_next_header(a, &entry) != ARCHIVE_OK
    {
      failed = true
    }
  }

  deinit { if let archive { archive_read_free(archive) } }

  /// Reads exactly `count` bytes of the decompressed stream, or nil.
  private func read(_ count: Int) -> [UInt8]? {
    guard let a = archive, !failed, count >= 0 else { return nil }
    var out = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let n = out.withUnsafeMutableBytes {
        archive_read_data(a, $0.baseAddress! + done, count - done)
      }
      if n <= 0 {
        failed = true
        return nil
      }
      done += n
    }
    position += Int64(count)
    return out
  }

  /// The value of pax record `key` in the extended header at stream offset `headerAt`, or nil.
  func record(_ key: String, headerAt: Int64) -> [UInt8]? {
    guard headerAt >= position else { return nil }
    var skip = headerAt - position
    while skip > 0 {
      let n = Int(min(skip, 1 << 16))
      guard read(n) != nil else { return nil }
      skip -= Int64(n)
    }
    guard let header = read(512),
      header[156] == UInt8(ascii: "x") || header[156] == UInt8(ascii: "g")
    else { return nil }
    var size = 0
    for c in header[124..<136] {
      guard c >= UInt8(ascii: "0") && c <= UInt8(ascii: "7") else { continue }
      size = size * 8 + Int(c - UInt8(ascii: "0"))
      guard size <= 1 << 24 else { return nil }  // a pax header of more than 16 MiB is not sane
    }
    guard let body = read((size + 511) / 512 * 512) else { return nil }
    // Records: "LEN key=value\n", LEN counting the whole record.
    var i = 0
    while i < size {
      var len = 0
      var j = i
      while j < size, body[j] >= UInt8(ascii: "0"), body[j] <= UInt8(ascii: "9") {
        len = len * 10 + Int(body[j] - UInt8(ascii: "0"))
        guard len <= size else { return nil }
        j += 1
      }
      guard len > 0, j < size, body[j] == UInt8(ascii: " "), i + len <= size else { return nil }
      let recordBytes = body[(j + 1)..<(i + len - 1)]
      if let eq = recordBytes.firstIndex(of: UInt8(ascii: "=")),
        Array(recordBytes[recordBytes.startIndex..<eq]) == Array(key.utf8)
      {
        return Array(recordBytes[(eq + 1)...])
      }
      i += len
    }
    return nil
  }
}
