import CArchive
import RoseFS

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A non-fatal problem libarchive reported while reading one entry (`ARCHIVE_WARN`: a malformed
/// pax record it ignored, a name it could not convert): the entry is still read, but what the
/// image holds may differ from what the archive's author meant, so the user is told.
public struct ArchiveWarning: Sendable, Hashable, CustomStringConvertible, Encodable {
  /// The archive, as the caller named it.
  public var archive: String
  /// The entry's path in the archive, as its bytes.
  public var entry: [UInt8]
  /// libarchive's words.
  public var message: String

  public init(archive: String, entry: [UInt8], message: String) {
    self.archive = archive
    self.entry = entry
    self.message = message
  }

  public var description: String { "\(archive): \(Name.printable(entry)): \(message)" }

  enum CodingKeys: String, CodingKey { case archive, entry, message }

  /// The entry as printable text (`\xNN` for bytes that are not UTF-8), as everywhere else.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(archive, forKey: .archive)
    try container.encode(Name.printable(entry), forKey: .entry)
    try container.encode(message, forKey: .message)
  }
}

/// Reads tar (ustar, pax, GNU, with GNU and pax sparse files), cpio and zip archives, plain or
/// compressed with gzip, xz, zstd, bzip2 or lz4, into a `TreeEditor`. File data streams straight into
/// the image. Only these formats and filters are enabled: formats such as mtree could make libarchive
/// read host files named inside the input.
public final class ArchiveReader {
  public let path: String
  public var progress: ((IngestProgress) -> Void)?
  /// Non-fatal libarchive warnings (e.g. names that are not valid UTF-8), for the caller to show.
  public private(set) var warnings: [ArchiveWarning] = []
  /// Bytes of file data between progress reports inside one big file.
  public var progressInterval: Int64 = 16 << 20
  /// Entries between progress reports (the display redraws at most ten times a second anyway).
  static let progressEvery = 256

  public init(path: String, progress: ((IngestProgress) -> Void)? = nil) {
    self.path = path
    self.progress = progress
  }

  /// Reads every entry of the archive into `editor`, under `prefix` (empty: the image root).
  public func read(into editor: TreeEditor, at prefix: [UInt8] = []) throws {
    ArchiveReader.setLocale()
    var st = stat()
    guard stat(path, &st) == 0 else {
      throw IngestError.io(path: path, operation: "stat", errno: errno)
    }
    if (st.st_mode & S_IFMT) == S_IFDIR {
      throw IngestError.notAnArchive(input: path, detail: "it is a directory")
    }
    try HostInput.check(path, what: "the archive")
    if (st.st_mode & S_IFMT) == S_IFREG && st.st_size == 0 {
      throw IngestError.notAnArchive(input: path, detail: "the file is empty")
    }
    let total: Int64? = (st.st_mode & S_IFMT) == S_IFREG ? Int64(st.st_size) : nil
    guard let a = archive_read_new() else {
      throw IngestError.invalid(input: path, detail: "libarchive: out of memory")
    }
    defer { archive_read_free(a) }
    ArchiveFormats.supportFilters(a)
    ArchiveFormats.supportFormats(a)
    func message() -> String {
      archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }
    // zstd is decompressed on a second thread, ahead of the packing (other formats: in libarchive).
    let prefetch = ZstdPrefetcher.open(path: path)
    // Anything else is read from the file on a second thread (decompressed, if at all, in
    // libarchive on this one).
    let readAhead =
      prefetch == nil && !ArchiveFormats.needsSeeking(path: path) ? ReadAhead.open(path: path) : nil
    // Each thread holds its reader until told to stop: stop them on every way out.
    defer {
      prefetch?.cancel()
      readAhead?.cancel()
    }
    let position: () -> Int64 = { prefetch?.position ?? archive_filter_bytes(a, -1) }
    let opened =
      prefetch.map { $0.attach(a) } ?? readAhead.map { $0.attach(a) }
      ?? archive_read_open_filename(a, path, 1 << 20)
    guard opened == ARCHIVE_OK else {
      let e = archive_errno(a)
      if e != 0 && e != EILSEQ && e != -1 {
        throw IngestError.io(path: path, operation: "open", errno: e)
      }
      throw IngestError.notAnArchive(input: path, detail: message())
    }
    // libarchive runs on a thread of its own from here on (`produce`); this thread builds the
    // tree from what it hands over, in order. Every way out stops that thread before the
    // handle is freed (the `defer` above it runs later).
    let wantsProgress = progress != nil
    let pipeline = ArchivePipeline { [self] out in
      produce(a, into: out, position: position, wantsProgress: wantsProgress)
    }
    defer {
      pipeline.stop {
        prefetch?.cancel()
        readAhead?.cancel()
      }
    }
    try consume(pipeline, into: editor, at: prefix, total: total)
  }

  /// Applies the pipeline's items to `editor` until the archive's end or first error.
  private func consume(
    _ pipeline: ArchivePipeline, into editor: TreeEditor, at prefix: [UInt8], total: Int64?
  ) throws {
    while true {
      switch pipeline.next() {
      case .entry(let header):
        try apply(header, from: pipeline, into: editor, at: prefix, total: total)
      case .data, .dataInPlace, .dataProgress:
        continue  // data of an entry that takes none (a hard link to a non-file): skipped
      case .dataFailure(let e):
        throw e
      case .progress(let bytesRead, let entries):
        progress?(IngestProgress(bytesRead: bytesRead, totalBytes: total, entries: entries))
      case .warning(let w):
        warnings.append(w)
      case .failure(let e):
        throw e
      case .end(let bytesRead, let entries):
        progress?(IngestProgress(bytesRead: bytesRead, totalBytes: total, entries: entries))
        return
      }
    }
  }

  /// One entry into the tree; its data comes from the pipeline's data items that follow it.
  private func apply(
    _ header: ArchiveEntryHeader, from pipeline: ArchivePipeline, into editor: TreeEditor,
    at prefix: [UInt8], total: Int64?
  ) throws {
    let raw = header.name
    let name = ArchiveReader.prefixed(prefix, raw)
    let size = header.size

    func streamData(_ data: DataWriter) throws {
      func write(_ bytes: UnsafeRawBufferPointer, at off: UInt64, streamOffset: Int64) throws {
        do {
          try data.write(bytes, at: off)
        } catch let e as RoseFSError {
          // Writing the image failed (a full disk, an I/O error): the archive is not at fault.
          if case .io = e { throw IngestError.image(input: path, entry: raw, underlying: e) }
          throw IngestError.corruptArchive(
            input: path, entry: raw, offset: streamOffset, detail: "\(e)")
        } catch {
          throw IngestError.corruptArchive(
            input: path, entry: raw, offset: streamOffset, detail: "\(error)")
        }
      }
      while pipeline.nextIsData() {
        switch pipeline.next() {
        case .data(let off, let start, let count, let streamOffset):
          try write(pipeline.bytes(start: start, count: count), at: off, streamOffset: streamOffset)
        case .dataInPlace(let off, let bytes, let streamOffset):
          try write(bytes, at: off, streamOffset: streamOffset)
        case .dataProgress(let bytesRead, let entries):
          progress?(IngestProgress(bytesRead: bytesRead, totalBytes: total, entries: entries))
        case .dataFailure(let e):
          // A read error inside the data: thrown from inside the file, as when reading here.
          throw e
        default:
          return
        }
      }
    }

    switch header.kind {
    case .hardLink(let target):
      let t = ArchiveReader.prefixed(prefix, target)
      let inode = try editor.hardLink(at: name, target: t, input: path)
      // cpio (newc) stores the data with the last name of a hard-linked file.
      if size > 0 && inode.kind == .regular {
        try editor.stream(
          into: inode, size: UInt64(size), path: name, input: path, fill: streamData)
      }
    case .directory:
      try editor.directory(at: name, header.meta, input: path)
    case .regular:
      try editor.file(at: name, size: UInt64(size), header.meta, input: path, fill: streamData)
    case .symlink(let target):
      try editor.symlink(at: name, target: target, header.meta, input: path)
    case .device(let kind, let major, let minor):
      try editor.node(
        at: name, kind: kind, header.meta, rdevMajor: major, rdevMinor: minor, input: path)
    case .fifo:
      try editor.node(at: name, kind: .fifo, header.meta, input: path)
    case .socket:
      try editor.node(at: name, kind: .socket, header.meta, input: path)
    }
  }

  /// The reading thread: libarchive's loop, every entry and its data handed to `out` in order,
  /// ending with `.end` or the first error (`.failure`), exactly where reading on the packing
  /// thread would have thrown it.
  private func produce(
    _ a: OpaquePointer, into out: ArchivePipeline, position: () -> Int64, wantsProgress: Bool
  ) {
    func message() -> String {
      archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error"
    }
    var entries = 0
    var lastName: [UInt8]? = nil
    var paxRecovery: PaxHeaderScanner?
    do {
      while true {
        var entryPtr: OpaquePointer?
        let r = archive_read_next_header(a, &entryPtr)
        if r == ARCHIVE_EOF { break }
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) || entryPtr == nil {
          if entries == 0 && archive_format(a) == 0 && archive_errno(a) == EILSEQ {
            throw IngestError.notAnArchive(input: path, detail: message())
          }
          throw IngestError.corruptArchive(
            input: path, entry: lastName, offset: archive_filter_bytes(a, -1),
            detail: (lastName == nil ? "" : "after this entry: ") + message())
        }
        guard let entry = entryPtr else { break }
        entries += 1
        guard let pathPtr = archive_entry_pathname(entry) else {
          throw IngestError.emptyName(
            input: path, position: "entry \(entries), byte \(archive_filter_bytes(a, -1))")
        }
        let raw = ArchiveReader.bytes(pathPtr)
        lastName = raw
        if r == ARCHIVE_WARN {
          guard out.emit(.warning(ArchiveWarning(archive: path, entry: raw, message: message())))
          else { return }
        }
        if raw.isEmpty {
          throw IngestError.emptyName(
            input: path, position: "entry \(entries), byte \(archive_filter_bytes(a, -1))")
        }
        let meta = try metadata(entry, name: raw)
        let hardlink = archive_entry_hardlink(entry).map { ArchiveReader.bytes($0) }
        let hasSize = archive_entry_size_is_set(entry) != 0
        let size = hasSize ? archive_entry_size(entry) : 0
        if size < 0 {
          throw IngestError.corruptArchive(
            input: path, entry: raw, offset: archive_filter_bytes(a, -1), detail: "negative size")
        }
        let kind: ArchiveEntryHeader.Kind
        if let target = hardlink, !target.isEmpty {
          kind = .hardLink(target)
        } else {
          let type = archive_entry_filetype(entry) & CA_IFMT
          switch type {
          case CA_IFDIR: kind = .directory
          case CA_IFREG: kind = .regular
          case CA_IFLNK:
            var target = archive_entry_symlink(entry).map { ArchiveReader.bytes($0) } ?? []
            if target.isEmpty {
              // libarchive 3.6 drops a pax `linkpath` record when a SCHILY.xattr record is in
              // the same extended header and the ustar linkname is empty: read the record
              // ourselves.
              if paxRecovery == nil { paxRecovery = PaxHeaderScanner(path: path) }
              target =
                paxRecovery?.record("linkpath", headerAt: archive_read_header_position(a)) ?? []
            }
            guard !target.isEmpty else {
              throw IngestError.emptyName(
                input: path, position: "symlink target of '\(Name.printable(raw))'")
            }
            kind = .symlink(target: target)
          case CA_IFCHR, CA_IFBLK:
            kind = .device(
              type == CA_IFCHR ? .characterDevice : .blockDevice,
              major: UInt32(truncatingIfNeeded: archive_entry_rdevmajor(entry)),
              minor: UInt32(truncatingIfNeeded: archive_entry_rdevminor(entry)))
          case CA_IFIFO: kind = .fifo
          case CA_IFSOCK: kind = .socket
          default:
            throw IngestError.unsupportedType(
              input: path, entry: raw, mode: UInt32(archive_entry_mode(entry)))
          }
        }
        guard out.emit(.entry(ArchiveEntryHeader(name: raw, kind: kind, meta: meta, size: size)))
        else { return }
        // The data of a regular file, and of a hard link that carries some (cpio).
        var streams = false
        switch kind {
        case .regular: streams = true
        case .hardLink: streams = size > 0
        default: break
        }
        if streams {
          do {
            guard
              try streamData(
                a, of: raw, size: size, entries: entries, into: out, position: position,
                wantsProgress: wantsProgress)
            else { return }
          } catch {
            out.emit(.dataFailure(error))
            return
          }
        }
        // Skip data not consumed (e.g. a hard link entry with a body), surfacing corruption.
        if archive_read_data_skip(a) < ARCHIVE_WARN {
          throw IngestError.corruptArchive(
            input: path, entry: raw, offset: archive_filter_bytes(a, -1), detail: message())
        }
        // Every 256 entries: a report per entry costs more than reading a small entry.
        if entries % ArchiveReader.progressEvery == 0 && wantsProgress {
          guard out.emit(.progress(bytesRead: position(), entries: entries)) else { return }
        }
      }
      if entries == 0 && archive_format(a) == 0 {
        throw IngestError.notAnArchive(input: path, detail: message())
      }
      out.emit(.end(bytesRead: position(), entries: entries))
    } catch {
      out.emit(.failure(error))
    }
  }

  /// The reading thread: hands the current entry's data blocks to `out`. False when the packing
  /// side has stopped; throws when libarchive fails inside the data.
  private func streamData(
    _ a: OpaquePointer, of raw: [UInt8], size: Int64, entries: Int, into out: ArchivePipeline,
    position: () -> Int64, wantsProgress: Bool
  ) throws -> Bool {
    var buf: UnsafeRawPointer?
    var len = 0
    var off: la_int64_t = 0
    var sinceReport: Int64 = 0
    while true {
      let rr = archive_read_data_block(a, &buf, &len, &off)
      if rr == ARCHIVE_EOF { return true }
      if rr != ARCHIVE_OK {
        throw IngestError.corruptArchive(
          input: path, entry: raw, offset: archive_filter_bytes(a, -1),
          detail: archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error")
      }
      guard len > 0, let b = buf else { continue }
      guard off >= 0, UInt64(off) + UInt64(len) <= UInt64(size) else {
        throw IngestError.corruptArchive(
          input: path, entry: raw, offset: archive_filter_bytes(a, -1),
          detail: "data at \(off)+\(len) lies past the entry size \(size)")
      }
      guard
        out.emitData(
          UnsafeRawBufferPointer(start: b, count: len), at: UInt64(off),
          streamOffset: archive_filter_bytes(a, -1))
      else { return false }
      sinceReport += Int64(len)
      if sinceReport >= progressInterval && wantsProgress {
        sinceReport = 0
        guard out.emit(.dataProgress(bytesRead: position(), entries: entries)) else { return false }
      }
    }
  }

  private func metadata(_ entry: OpaquePointer, name: [UInt8]) throws -> EntryMetadata {
    let uid = archive_entry_uid(entry)
    let gid = archive_entry_gid(entry)
    if uid < 0 || gid < 0 || uid > Int64(UInt32.max) || gid > Int64(UInt32.max) {
      let (what, id) = uid < 0 || uid > Int64(UInt32.max) ? ("uid", uid) : ("gid", gid)
      throw IngestError.invalid(
        input: path,
        detail:
          "entry \(IngestError.p(name)) has \(what) \(id); RoseFS stores owners from 0 to 4294967295. Map the owner to a 32-bit id when making the archive"
      )
    }
    // libarchive hands times over as sign and magnitude; RoseFS stores a timespec (FORMAT.md 7).
    func ts(_ s: Int64, _ ns: Int) -> Timestamp {
      Timestamp(signMagnitudeSeconds: s, nanoseconds: ns)
    }
    let mtime = ts(Int64(archive_entry_mtime(entry)), archive_entry_mtime_nsec(entry))
    let atime =
      archive_entry_atime_is_set(entry) != 0
      ? ts(Int64(archive_entry_atime(entry)), archive_entry_atime_nsec(entry)) : nil
    let ctime =
      archive_entry_ctime_is_set(entry) != 0
      ? ts(Int64(archive_entry_ctime(entry)), archive_entry_ctime_nsec(entry)) : nil
    var xattrs: [[UInt8]: [UInt8]] = [:]
    if archive_entry_xattr_reset(entry) > 0 {
      var n: UnsafePointer<CChar>?
      var v: UnsafeRawPointer?
      var s = 0
      while archive_entry_xattr_next(entry, &n, &v, &s) == ARCHIVE_OK {
        guard let n else { continue }
        let key = ArchiveReader.bytes(n)
        if key.isEmpty { continue }
        xattrs[key] = v.map { Array(UnsafeRawBufferPointer(start: $0, count: s)) } ?? []
      }
    }
    if !xattrs.isEmpty {
      try XattrLimits.check(
        xattrs.map { Xattr(name: $0.key, value: $0.value) }, input: path, entry: name)
    }
    // Most entries carry no ACL: one libarchive call says so, before any name is built.
    if archive_entry_acl_count(
      entry, ARCHIVE_ENTRY_ACL_TYPE_ACCESS | ARCHIVE_ENTRY_ACL_TYPE_DEFAULT) > 0
    {
      for (type, xname) in [
        (ARCHIVE_ENTRY_ACL_TYPE_ACCESS, "system.posix_acl_access"),
        (ARCHIVE_ENTRY_ACL_TYPE_DEFAULT, "system.posix_acl_default"),
      ] {
        if let value = PosixACL.read(entry, type: Int32(type)) { xattrs[Array(xname.utf8)] = value }
      }
    }
    var permissions = UInt16(truncatingIfNeeded: archive_entry_perm(entry) & 0o7777)
    // With an ACL mask, Linux keeps the mask in the group bits of the mode; libarchive put group::.
    if !xattrs.isEmpty, let v = xattrs[Array("system.posix_acl_access".utf8)],
      let m = PosixACL.decode(v)?.first(where: { $0.tag == PosixACL.mask })
    {
      permissions = (permissions & ~0o070) | ((m.perm & 7) << 3)
    }
    return EntryMetadata(
      permissions: permissions,
      uid: UInt32(uid), gid: UInt32(gid), mtime: mtime, atime: atime, ctime: ctime,
      xattrs: xattrs.isEmpty
        ? []
        : xattrs.map { Xattr(name: $0.key, value: $0.value) }.sorted {
          $0.name.lexicographicallyPrecedes($1.name)
        })
  }

  static func bytes(_ p: UnsafePointer<CChar>) -> [UInt8] {
    let n = strlen(p)
    return p.withMemoryRebound(to: UInt8.self, capacity: n) {
      Array(UnsafeBufferPointer(start: $0, count: n))
    }
  }

  static func prefixed(_ prefix: [UInt8], _ p: [UInt8]) -> [UInt8] {
    prefix.isEmpty ? p : prefix + [UInt8(ascii: "/")] + p
  }

  nonisolated(unsafe) private static var localeSet = false
  /// libarchive converts names through the C locale; without UTF-8 it mangles non-ASCII names.
  static func setLocale() {
    if !localeSet {
      setlocale(LC_CTYPE, "C.UTF-8")
      localeSet = true
    }
  }
}

/// POSIX ACLs between libarchive's ACL API and the Linux xattr format (`system.posix_acl_*`,
/// version 2: a u32 header, then {u16 tag, u16 perm, u32 id} entries sorted by tag, then id).
public enum PosixACL {
  static let userObj: UInt16 = 0x01, user: UInt16 = 0x02, groupObj: UInt16 = 0x04,
    group: UInt16 = 0x08
  static let mask: UInt16 = 0x10, other: UInt16 = 0x20
  static let undefinedID: UInt32 = 0xFFFF_FFFF

  public struct Entry: Hashable, Sendable {
    public var tag: UInt16
    public var perm: UInt16
    public var id: UInt32
  }

  public static func encode(_ entries: [Entry]) -> [UInt8] {
    var out: [UInt8] = [2, 0, 0, 0]
    for e in entries.sorted(by: { ($0.tag, $0.id) < ($1.tag, $1.id) }) {
      out += [UInt8(e.tag & 0xFF), UInt8(e.tag >> 8), UInt8(e.perm & 0xFF), UInt8(e.perm >> 8)]
      out += [
        UInt8(e.id & 0xFF), UInt8(e.id >> 8 & 0xFF), UInt8(e.id >> 16 & 0xFF), UInt8(e.id >> 24),
      ]
    }
    return out
  }

  public static func decode(_ v: [UInt8]) -> [Entry]? {
    guard v.count >= 4, (v.count - 4) % 8 == 0, v[0] == 2, v[1] == 0, v[2] == 0, v[3] == 0 else {
      return nil
    }
    var out: [Entry] = []
    var i = 4
    while i < v.count {
      let tag = UInt16(v[i]) | UInt16(v[i + 1]) << 8
      let perm = UInt16(v[i + 2]) | UInt16(v[i + 3]) << 8
      let id =
        UInt32(v[i + 4]) | UInt32(v[i + 5]) << 8 | UInt32(v[i + 6]) << 16 | UInt32(v[i + 7]) << 24
      out.append(Entry(tag: tag, perm: perm, id: id))
      i += 8
    }
    return out
  }

  /// Adds a Linux ACL xattr value to `entry` through libarchive's ACL API (after its mode is set),
  /// so the pax writer stores SCHILY.acl.access/default, which GNU tar and bsdtar restore.
  /// Returns false when the value is not a valid version-2 ACL (then it stays a plain xattr).
  static func write(_ entry: OpaquePointer, value: [UInt8], type: Int32) -> Bool {
    guard let entries = decode(value) else { return false }
    for e in entries {
      let tag: Int32
      switch e.tag {
      case userObj: tag = ARCHIVE_ENTRY_ACL_USER_OBJ
      case user: tag = ARCHIVE_ENTRY_ACL_USER
      case groupObj: tag = ARCHIVE_ENTRY_ACL_GROUP_OBJ
      case group: tag = ARCHIVE_ENTRY_ACL_GROUP
      case mask: tag = ARCHIVE_ENTRY_ACL_MASK
      case other: tag = ARCHIVE_ENTRY_ACL_OTHER
      default: return false
      }
      let qual: Int32 = (e.tag == user || e.tag == group) ? Int32(bitPattern: e.id) : -1
      if archive_entry_acl_add_entry(entry, type, Int32(e.perm & 7), tag, qual, nil) != ARCHIVE_OK {
        return false
      }
    }
    return true
  }

  /// The entry's ACL of `type` as a Linux xattr value; nil when it has none beyond the mode bits.
  static func read(_ entry: OpaquePointer, type: Int32) -> [UInt8]? {
    guard archive_entry_acl_reset(entry, type) > 0 else { return nil }
    var out: [Entry] = []
    var t: Int32 = 0
    var perm: Int32 = 0
    var tag: Int32 = 0
    var qual: Int32 = 0
    var name: UnsafePointer<CChar>?
    var extended = false
    while archive_entry_acl_next(entry, type, &t, &perm, &tag, &qual, &name) == ARCHIVE_OK {
      let p = UInt16(perm & 7)
      switch tag {
      case ARCHIVE_ENTRY_ACL_USER_OBJ: out.append(Entry(tag: userObj, perm: p, id: undefinedID))
      case ARCHIVE_ENTRY_ACL_USER:
        out.append(Entry(tag: user, perm: p, id: UInt32(truncatingIfNeeded: qual)))
        extended = true
      case ARCHIVE_ENTRY_ACL_GROUP_OBJ: out.append(Entry(tag: groupObj, perm: p, id: undefinedID))
      case ARCHIVE_ENTRY_ACL_GROUP:
        out.append(Entry(tag: group, perm: p, id: UInt32(truncatingIfNeeded: qual)))
        extended = true
      case ARCHIVE_ENTRY_ACL_MASK:
        out.append(Entry(tag: mask, perm: p, id: undefinedID))
        extended = true
      case ARCHIVE_ENTRY_ACL_OTHER: out.append(Entry(tag: other, perm: p, id: undefinedID))
      default: continue  // NFSv4 entries have no POSIX form
      }
    }
    if out.isEmpty || (type == ARCHIVE_ENTRY_ACL_TYPE_ACCESS && !extended) { return nil }
    return encode(out)
  }
}
