import CFuse
import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// Why a mount could not be served: one sentence naming the mountpoint and what to do.
public struct MountError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// Serves one `VolumeOperations` on a mountpoint through the FUSE low-level API, single-threaded
/// (the volume is not thread-safe; the kernel queues requests). Inode numbers are the volume's, except
/// that FUSE's root id 1 and the volume's root inode are swapped. Permission checks are the kernel's
/// (`default_permissions`), and POSIX ACLs are enforced by the kernel and stored as
/// `system.posix_acl_*` xattrs.
public final class FuseMount {
  let volume: any VolumeOperations
  let rootIno: UInt64
  /// The first error the volume reported on unmount (the clean checkpoint failed).
  public private(set) var unmountError: EngineError?
  /// Where volume errors that are not plain POSIX outcomes (EIO, EUCLEAN) are reported.
  let log: (String) -> Void
  /// FUSE_CAP_POSIX_ACL and FUSE_CAP_DONT_MASK were granted at init (read-write mounts).
  var aclEnabled = false
  var dontMask = false
  /// Kernel cache timeout: every change goes through this process, so the kernel's view stays true.
  let timeout: Double = 1.0
  /// Open file handles per volume inode (open/create minus release).
  var openHandles: [UInt32: Int] = [:]
  /// Files whose last name was removed while open: POSIX keeps them readable and writable through
  /// their descriptors until the last close, so the name is moved to a hidden one in the same
  /// directory (as libfuse's high-level `hide` does) and removed at the last release or at unmount.
  var hidden: [UInt32: (parent: UInt32, name: [UInt8])] = [:]

  /// `.rosepack_hidden_INO`: the name an unlinked open file keeps until its last close.
  static func hiddenName(_ ino: UInt32) -> [UInt8] { Array(".rosepack_hidden_\(ino)".utf8) }

  /// Unlink, or hide when the name is the file's last and a handle is open.
  func unlinkOrHide(parent: UInt32, name: [UInt8]) throws(EngineError) {
    let a = try volume.lookup(parent: parent, name: name)
    if a.kind == .regular, a.nlink == 1, openHandles[a.ino, default: 0] > 0, hidden[a.ino] == nil {
      let hide = Self.hiddenName(a.ino)
      try volume.rename(
        parent: parent, name: name, newParent: parent, newName: hide, flags: RenameFlags())
      hidden[a.ino] = (parent, hide)
      return
    }
    try volume.unlink(parent: parent, name: name)
  }

  /// The last release of a hidden file removes it.
  func released(_ ino: UInt32) {
    let left = openHandles[ino, default: 1] - 1
    openHandles[ino] = left > 0 ? left : nil
    guard left <= 0, let h = hidden.removeValue(forKey: ino) else { return }
    do {
      try volume.unlink(parent: h.parent, name: h.name)
    } catch {
      log("removing the unlinked file \(String(decoding: h.name, as: UTF8.self)) failed: \(error)")
    }
  }

  public init(volume: any VolumeOperations, log: @escaping (String) -> Void) {
    self.volume = volume
    self.rootIno = UInt64(volume.rootIno)
    self.log = log
  }

  /// FUSE inode id of a volume inode.
  func fuseIno(_ ino: UInt32) -> fuse_ino_t {
    let i = UInt64(ino)
    return i == rootIno ? UInt64(FUSE_ROOT_ID) : i == UInt64(FUSE_ROOT_ID) ? rootIno : i
  }

  /// Volume inode of a FUSE inode id (the same swap, which is its own inverse).
  func volumeIno(_ ino: fuse_ino_t) throws(EngineError) -> UInt32 {
    let i = ino == UInt64(FUSE_ROOT_ID) ? rootIno : ino == rootIno ? UInt64(FUSE_ROOT_ID) : ino
    guard let v = UInt32(exactly: i) else { throw EngineError(ESTALE) }
    return v
  }

  /// Mounts, calls `ready` once the kernel has the mount, serves until unmounted or signalled
  /// (SIGINT, SIGTERM, SIGHUP), then lets the volume write its clean checkpoint.
  public func serve(mountpoint: String, fsname: String, ready: () -> Void) throws(MountError) {
    var options =
      "default_permissions,fsname=\(fsname.replacingOccurrences(",", "_")),subtype=rosefs"
    if volume.isReadOnly { options += ",ro" }
    let argv: [UnsafeMutablePointer<CChar>?] = ["rosepack", "-o", options].map { (s: String) in
      strdup(s)
    }
    defer { for p in argv { free(p) } }
    var cargv = argv + [nil]
    var ops = Self.operations()
    let me = Unmanaged.passUnretained(self).toOpaque()
    let session: OpaquePointer? = cargv.withUnsafeMutableBufferPointer { buf in
      var args = fuse_args(argc: Int32(argv.count), argv: buf.baseAddress, allocated: 0)
      defer { fuse_opt_free_args(&args) }
      return fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, me)
    }
    guard let session else {
      throw MountError("\(mountpoint): libfuse could not start a session (options \(options))")
    }
    defer { fuse_session_destroy(session) }
    guard fuse_set_signal_handlers(session) == 0 else {
      throw MountError("\(mountpoint): could not install the signal handlers")
    }
    defer { fuse_remove_signal_handlers(session) }
    guard fuse_session_mount(session, mountpoint) == 0 else {
      throw MountError(
        "\(mountpoint): the FUSE mount failed (libfuse printed why above); is it a directory, and is /dev/fuse usable?"
      )
    }
    ready()
    let status = fuse_session_loop(session)
    fuse_session_unmount(session)
    if status < 0 { log("FUSE session ended with \(String(cString: strerror(-status)))") }
    // fuse_session_destroy (deferred) calls `destroy`, which unmounts the volume.
  }

  // MARK: Replies

  static func stat(_ a: NodeAttributes, ino: fuse_ino_t) -> stat {
    var st = Glibc.stat()
    st.st_ino = UInt(ino)
    st.st_mode = mode_t(a.mode)
    st.st_nlink = nlink_t(a.nlink)
    st.st_uid = a.uid
    st.st_gid = a.gid
    st.st_size = off_t(clamping: a.size)
    st.st_blocks = blkcnt_t(clamping: a.blocks)
    st.st_blksize = blksize_t(RoseLayout.blockSize)
    st.st_rdev = makeDevice(a.rdevMajor, a.rdevMinor)
    st.st_atim = timespec(a.atime)
    st.st_mtim = timespec(a.mtime)
    st.st_ctim = timespec(a.ctime)
    return st
  }

  static func timespec(_ t: Timestamp) -> Glibc.timespec {
    Glibc.timespec(tv_sec: Int(t.seconds), tv_nsec: Int(t.nanoseconds))
  }

  static func timestamp(_ t: Glibc.timespec) -> Timestamp {
    Timestamp(seconds: Int64(t.tv_sec), nanoseconds: UInt32(clamping: t.tv_nsec))
  }

  static func now() -> Timestamp {
    var t = Glibc.timespec()
    clock_gettime(CLOCK_REALTIME, &t)
    return timestamp(t)
  }

  /// glibc's dev_t layout (gnu_dev_makedev is a macro-like inline Swift does not see).
  static func makeDevice(_ major: UInt32, _ minor: UInt32) -> dev_t {
    let ma = UInt64(major)
    let mi = UInt64(minor)
    let high: UInt64 = ((ma & 0xffff_f000) << 32) | ((mi & 0xffff_ff00) << 12)
    let low: UInt64 = ((ma & 0xfff) << 8) | (mi & 0xff)
    return dev_t(high | low)
  }

  static func deviceNumbers(_ dev: dev_t) -> (major: UInt32, minor: UInt32) {
    let d = UInt64(dev)
    let major: UInt64 = ((d >> 8) & 0xfff) | ((d >> 32) & 0xffff_f000)
    let minor: UInt64 = (d & 0xff) | ((d >> 12) & 0xffff_ff00)
    return (UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
  }

  func entry(_ a: NodeAttributes) -> fuse_entry_param {
    var e = fuse_entry_param()
    e.ino = fuseIno(a.ino)
    e.generation = 0
    e.attr = Self.stat(a, ino: e.ino)
    e.attr_timeout = timeout
    e.entry_timeout = timeout
    return e
  }

  func replyEntry(_ req: fuse_req_t, _ a: NodeAttributes) {
    var e = entry(a)
    fuse_reply_entry(req, &e)
  }

  func replyAttr(_ req: fuse_req_t, _ a: NodeAttributes) {
    var st = Self.stat(a, ino: fuseIno(a.ino))
    fuse_reply_attr(req, &st, timeout)
  }

  /// How a new inode is made: the caller's uid and gid (the directory's group under a setgid
  /// directory, which a new directory inherits), and its mode: limited by the directory's default ACL
  /// when it has one (which the inode then inherits), else by the caller's umask.
  struct Creation {
    var uid: UInt32
    var gid: UInt32
    var mode: UInt16
    var accessACL: PosixACL?
    var defaultACL: PosixACL?
  }

  func creation(_ req: fuse_req_t, parent: UInt32, mode: UInt16) throws(EngineError) -> Creation {
    let ctx = fuse_req_ctx(req)
    var c = Creation(uid: ctx?.pointee.uid ?? 0, gid: ctx?.pointee.gid ?? 0, mode: mode)
    let isDirectory = mode & Mode.typeMask == Mode.directory
    let dir = try volume.getattr(parent)
    if dir.mode & Mode.setgid != 0 {
      c.gid = dir.gid
      if isDirectory { c.mode |= Mode.setgid }
    }
    if mode & Mode.typeMask == Mode.symlink { return c }
    if aclEnabled, let bytes = try? volume.getxattr(parent, name: PosixACL.defaultName),
      let inherited = PosixACL(bytes)
    {
      let access = inherited.inherited(mode: mode & 0o777)
      c.mode = (c.mode & ~0o777) | access.modeBits
      if !access.isEquivalentToMode { c.accessACL = access }
      if isDirectory { c.defaultACL = inherited }
    } else if dontMask {
      c.mode &= ~UInt16(truncatingIfNeeded: ctx?.pointee.umask ?? 0o022)
    }
    return c
  }

  /// Stores the ACLs a new inode inherited; returns its attributes.
  func finish(_ created: NodeAttributes, _ c: Creation) throws(EngineError) -> NodeAttributes {
    if let acl = c.accessACL {
      try volume.setxattr(created.ino, name: PosixACL.accessName, value: acl.bytes, mode: .create)
    }
    if let acl = c.defaultACL {
      try volume.setxattr(created.ino, name: PosixACL.defaultName, value: acl.bytes, mode: .create)
    }
    return created
  }

  /// setxattr of an ACL: the access ACL sets the mode's permission bits (and is not kept when the
  /// mode says it all); a default ACL is for directories only.
  func setACL(_ ino: UInt32, name: [UInt8], value: [UInt8], mode: XattrMode) throws(EngineError) {
    guard let acl = PosixACL(value) else { throw EngineError(EINVAL, "malformed POSIX ACL") }
    let attributes = try volume.getattr(ino)
    if name == PosixACL.defaultName {
      guard attributes.kind == .directory else { throw EngineError(EACCES) }
      try volume.setxattr(ino, name: name, value: acl.bytes, mode: mode)
      return
    }
    let permissions = (attributes.mode & 0o7000) | acl.modeBits
    if permissions != attributes.mode & 0o7777 {
      _ = try volume.setattr(ino, AttributeChanges(permissions: permissions))
    }
    if acl.isEquivalentToMode {
      do {
        try volume.removexattr(ino, name: name)
      } catch  where error.errno == ENODATA {}
    } else {
      try volume.setxattr(ino, name: name, value: acl.bytes, mode: mode)
    }
  }

  /// After a chmod, the access ACL follows the new permission bits.
  func chmodACL(_ ino: UInt32, permissions: UInt16) throws(EngineError) {
    guard aclEnabled, let bytes = try? volume.getxattr(ino, name: PosixACL.accessName),
      let acl = PosixACL(bytes)
    else { return }
    try volume.setxattr(
      ino, name: PosixACL.accessName, value: acl.chmod(permissions).bytes, mode: .replace)
  }

  // MARK: Dispatch

  /// Runs one request: the body replies on success; an error replies its errno.
  static func handle(
    _ req: fuse_req_t?, _ body: (FuseMount, fuse_req_t) throws(EngineError) -> Void
  ) {
    guard let req, let data = fuse_req_userdata(req) else { return }
    let me = Unmanaged<FuseMount>.fromOpaque(data).takeUnretainedValue()
    do {
      try body(me, req)
    } catch {
      if error.errno == EIO || error.errno == 117 { me.log("\(error)") }
      fuse_reply_err(req, error.errno)
    }
  }

  static func name(_ p: UnsafePointer<CChar>?) -> [UInt8] {
    guard let p else { return [] }
    return Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(p), count: strlen(p)))
  }

  /// Fills a readdir reply: entries after `offset` until `size` bytes are used.
  static func directory(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ offset: off_t, plus: Bool
  ) {
    handle(req) { (m, req) throws(EngineError) in
      let dir = try m.volumeIno(ino)
      var buffer = [CChar](repeating: 0, count: size)
      var used = 0
      var cookie = UInt64(bitPattern: Int64(offset))
      // A dirent takes at least 24 bytes (plus: 152): ask for no more entries than fit.
      let limit = max(1, size / (plus ? 152 : 24))
      full: while true {
        let batch = try m.volume.readdir(dir, after: cookie, limit: limit)
        if batch.isEmpty { break }
        for e in batch {
          let name = e.name + [0]
          let next = off_t(Int64(bitPattern: e.cookie))
          let written: Int
          if plus {
            var ent = m.entry(try m.volume.getattr(e.ino))
            written = buffer.withUnsafeMutableBufferPointer { b in
              name.withUnsafeBufferPointer { n in
                n.withMemoryRebound(to: CChar.self) { cname in
                  fuse_add_direntry_plus(
                    req, b.baseAddress! + used, size - used, cname.baseAddress, &ent, next)
                }
              }
            }
          } else {
            var st = Glibc.stat()
            st.st_ino = UInt(m.fuseIno(e.ino))
            st.st_mode = mode_t(e.kind.modeBits)
            written = buffer.withUnsafeMutableBufferPointer { b in
              name.withUnsafeBufferPointer { n in
                n.withMemoryRebound(to: CChar.self) { cname in
                  fuse_add_direntry(
                    req, b.baseAddress! + used, size - used, cname.baseAddress, &st, next)
                }
              }
            }
          }
          if written > size - used { break full }
          used += written
          cookie = e.cookie
        }
        if batch.count < limit { break }
      }
      fuse_reply_buf(req, buffer, used)
    }
  }

  static func operations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()
    ops.`init` = { data, conn in
      guard let data, let conn else { return }
      let me = Unmanaged<FuseMount>.fromOpaque(data).takeUnretainedValue()
      let acl = UInt32(FUSE_CAP_POSIX_ACL) | UInt32(FUSE_CAP_DONT_MASK)
      if !me.volume.isReadOnly && conn.pointee.capable & acl == acl {
        conn.pointee.want |= acl
        me.aclEnabled = true
        me.dontMask = true
      }
    }
    ops.destroy = { data in
      guard let data else { return }
      let me = Unmanaged<FuseMount>.fromOpaque(data).takeUnretainedValue()
      // Files unlinked while open and never closed (the kernel drops handles at unmount).
      for ino in me.hidden.keys.sorted() {
        me.openHandles[ino] = nil
        me.released(ino)
      }
      do {
        try me.volume.unmount()
      } catch {
        let e = error as? EngineError ?? EngineError(EIO, "\(error)")
        me.unmountError = e
        me.log("unmount: \(e)")
      }
    }
    ops.lookup = { req, parent, name in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        m.replyEntry(
          req, try m.volume.lookup(parent: try m.volumeIno(parent), name: FuseMount.name(name)))
      }
    }
    ops.forget = { req, _, _ in fuse_reply_none(req) }
    ops.forget_multi = { req, _, _ in fuse_reply_none(req) }
    ops.getattr = { req, ino, _ in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        m.replyAttr(req, try m.volume.getattr(try m.volumeIno(ino)))
      }
    }
    ops.setattr = { req, ino, attr, toSet, _ in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        guard let attr else { throw EngineError(EINVAL) }
        let a = attr.pointee
        var c = AttributeChanges()
        let set = { (flag: Int32) in toSet & flag != 0 }
        if set(FUSE_SET_ATTR_MODE) { c.permissions = UInt16(a.st_mode & 0o7777) }
        if set(FUSE_SET_ATTR_UID) { c.uid = a.st_uid }
        if set(FUSE_SET_ATTR_GID) { c.gid = a.st_gid }
        if set(FUSE_SET_ATTR_SIZE) {
          guard a.st_size >= 0 else { throw EngineError(EINVAL) }
          c.size = UInt64(a.st_size)
        }
        let now = FuseMount.now()
        if set(FUSE_SET_ATTR_ATIME_NOW) {
          c.atime = now
        } else if set(FUSE_SET_ATTR_ATIME) {
          c.atime = FuseMount.timestamp(a.st_atim)
        }
        if set(FUSE_SET_ATTR_MTIME_NOW) {
          c.mtime = now
        } else if set(FUSE_SET_ATTR_MTIME) {
          c.mtime = FuseMount.timestamp(a.st_mtim)
        }
        if set(FUSE_SET_ATTR_CTIME) { c.ctime = FuseMount.timestamp(a.st_ctim) }
        let target = try m.volumeIno(ino)
        let result = try m.volume.setattr(target, c)
        if let p = c.permissions { try m.chmodACL(target, permissions: p) }
        m.replyAttr(req, result)
      }
    }
    ops.readlink = { req, ino in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        let target = try m.volume.readlink(try m.volumeIno(ino)) + [0]
        target.withUnsafeBufferPointer { b in
          b.withMemoryRebound(to: CChar.self) { _ = fuse_reply_readlink(req, $0.baseAddress) }
        }
      }
    }
    ops.mknod = { req, parent, name, mode, rdev in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        let dir = try m.volumeIno(parent)
        let o = try m.creation(req, parent: dir, mode: UInt16(truncatingIfNeeded: mode))
        let dev = FuseMount.deviceNumbers(rdev)
        let created = try m.volume.mknod(
          parent: dir, name: FuseMount.name(name), mode: o.mode, uid: o.uid, gid: o.gid,
          rdevMajor: dev.major, rdevMinor: dev.minor)
        m.replyEntry(req, try m.finish(created, o))
      }
    }
    ops.mkdir = { req, parent, name, mode in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        let dir = try m.volumeIno(parent)
        let o = try m.creation(
          req, parent: dir, mode: Mode.directory | UInt16(truncatingIfNeeded: mode & 0o7777))
        let created = try m.volume.mkdir(
          parent: dir, name: FuseMount.name(name), mode: o.mode & 0o7777, uid: o.uid, gid: o.gid)
        m.replyEntry(req, try m.finish(created, o))
      }
    }
    ops.unlink = { req, parent, name in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        try m.unlinkOrHide(parent: try m.volumeIno(parent), name: FuseMount.name(name))
        fuse_reply_err(req, 0)
      }
    }
    ops.rmdir = { req, parent, name in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        try m.volume.rmdir(parent: try m.volumeIno(parent), name: FuseMount.name(name))
        fuse_reply_err(req, 0)
      }
    }
    ops.symlink = { req, target, parent, name in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        let dir = try m.volumeIno(parent)
        let o = try m.creation(req, parent: dir, mode: Mode.symlink | 0o777)
        m.replyEntry(
          req,
          try m.volume.symlink(
            parent: dir, name: FuseMount.name(name), target: FuseMount.name(target), uid: o.uid,
            gid: o.gid))
      }
    }
    ops.rename = { req, parent, name, newParent, newName, flags in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        let known = RenameFlags.noReplace.rawValue | RenameFlags.exchange.rawValue
        guard flags & ~known == 0 else { throw EngineError(EINVAL) }
        try m.volume.rename(
          parent: try m.volumeIno(parent), name: FuseMount.name(name),
          newParent: try m.volumeIno(newParent), newName: FuseMount.name(newName),
          flags: RenameFlags(rawValue: flags))
        fuse_reply_err(req, 0)
      }
    }
    ops.link = { req, ino, newParent, newName in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        m.replyEntry(
          req,
          try m.volume.link(
            try m.volumeIno(ino), newParent: try m.volumeIno(newParent),
            newName: FuseMount.name(newName)))
      }
    }
    ops.open = { req, ino, fi in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        if m.volume.isReadOnly, let fi { fi.pointee.keep_cache = 1 }
        m.openHandles[try m.volumeIno(ino), default: 0] += 1
        fuse_reply_open(req, fi)
      }
    }
    ops.create = { req, parent, name, mode, fi in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        let dir = try m.volumeIno(parent)
        let o = try m.creation(
          req, parent: dir, mode: Mode.regular | UInt16(truncatingIfNeeded: mode & 0o7777))
        let created = try m.volume.mknod(
          parent: dir, name: FuseMount.name(name), mode: o.mode, uid: o.uid, gid: o.gid,
          rdevMajor: 0, rdevMinor: 0)
        var e = m.entry(try m.finish(created, o))
        m.openHandles[created.ino, default: 0] += 1
        fuse_reply_create(req, &e, fi)
      }
    }
    ops.read = { req, ino, size, offset, _ in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        guard offset >= 0 else { throw EngineError(EINVAL) }
        let bytes = try m.volume.read(try m.volumeIno(ino), offset: UInt64(offset), count: size)
        fuse_reply_buf(req, bytes, bytes.count)
      }
    }
    ops.write = { req, ino, buf, size, offset, _ in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        guard offset >= 0 else { throw EngineError(EINVAL) }
        try m.volume.write(
          try m.volumeIno(ino), offset: UInt64(offset),
          bytes: UnsafeRawBufferPointer(start: buf, count: size))
        fuse_reply_write(req, size)
      }
    }
    ops.flush = { req, _, _ in fuse_reply_err(req, 0) }
    ops.release = { req, ino, _ in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        m.released(try m.volumeIno(ino))
        fuse_reply_err(req, 0)
      }
    }
    ops.fsync = { req, ino, datasync, _ in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        try m.volume.fsync(try m.volumeIno(ino), dataOnly: datasync != 0)
        fuse_reply_err(req, 0)
      }
    }
    ops.opendir = { req, _, fi in fuse_reply_open(req, fi) }
    ops.releasedir = { req, _, _ in fuse_reply_err(req, 0) }
    ops.fsyncdir = { req, ino, datasync, _ in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        try m.volume.fsync(try m.volumeIno(ino), dataOnly: datasync != 0)
        fuse_reply_err(req, 0)
      }
    }
    ops.readdir = { req, ino, size, offset, _ in
      FuseMount.directory(req, ino, size, offset, plus: false)
    }
    ops.readdirplus = { req, ino, size, offset, _ in
      FuseMount.directory(req, ino, size, offset, plus: true)
    }
    ops.statfs = { req, _ in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        let s = try m.volume.statfs()
        var v = statvfs()
        v.f_bsize = UInt(s.blockSize)
        v.f_frsize = UInt(s.blockSize)
        v.f_blocks = fsblkcnt_t(s.totalBlocks)
        v.f_bfree = fsblkcnt_t(s.freeBlocks)
        v.f_bavail = fsblkcnt_t(s.availableBlocks)
        v.f_files = fsfilcnt_t(s.totalInodes)
        v.f_ffree = fsfilcnt_t(s.freeInodes)
        v.f_favail = fsfilcnt_t(s.freeInodes)
        v.f_namemax = UInt(s.nameMax)
        fuse_reply_statfs(req, &v)
      }
    }
    ops.setxattr = { req, ino, name, value, size, flags in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        let mode: XattrMode =
          Int(flags) & XATTR_CREATE != 0
          ? .create : Int(flags) & XATTR_REPLACE != 0 ? .replace : .createOrReplace
        let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
        let target = try m.volumeIno(ino)
        let key = FuseMount.name(name)
        if m.aclEnabled && (key == PosixACL.accessName || key == PosixACL.defaultName) {
          try m.setACL(target, name: key, value: bytes, mode: mode)
        } else {
          try m.volume.setxattr(target, name: key, value: bytes, mode: mode)
        }
        fuse_reply_err(req, 0)
      }
    }
    ops.getxattr = { req, ino, name, size in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        let value = try m.volume.getxattr(try m.volumeIno(ino), name: FuseMount.name(name))
        if size == 0 {
          fuse_reply_xattr(req, value.count)
        } else if size < value.count {
          throw EngineError(ERANGE)
        } else {
          fuse_reply_buf(req, value, value.count)
        }
      }
    }
    ops.listxattr = { req, ino, size in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        let names = try m.volume.listxattr(try m.volumeIno(ino))
        let list = names.reduce(into: [UInt8]()) { $0 += $1 + [0] }
        if size == 0 {
          fuse_reply_xattr(req, list.count)
        } else if size < list.count {
          throw EngineError(ERANGE)
        } else {
          fuse_reply_buf(req, list, list.count)
        }
      }
    }
    ops.removexattr = { req, ino, name in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        try m.volume.removexattr(try m.volumeIno(ino), name: FuseMount.name(name))
        fuse_reply_err(req, 0)
      }
    }
    ops.fallocate = { req, ino, mode, offset, length, _ in
      FuseMount.handle(req) { (m, req) throws(EngineError) in
        guard offset >= 0, length > 0 else { throw EngineError(EINVAL) }
        let target = try m.volumeIno(ino)
        let keepSize = mode & Falloc.keepSize != 0
        switch mode & ~Falloc.keepSize {
        case 0:
          try m.volume.fallocate(
            target, offset: UInt64(offset), length: UInt64(length), keepSize: keepSize)
        case Falloc.punchHole where keepSize:
          guard let engine = m.volume as? RoseEngine else { throw EngineError(EOPNOTSUPP) }
          try engine.punchHole(target, offset: UInt64(offset), length: UInt64(length))
        case Falloc.zeroRange:
          guard let engine = m.volume as? RoseEngine else { throw EngineError(EOPNOTSUPP) }
          try engine.zeroRange(
            target, offset: UInt64(offset), length: UInt64(length), keepSize: keepSize)
        default:
          // Collapsing, inserting and unsharing ranges are not offered.
          throw EngineError(EOPNOTSUPP)
        }
        fuse_reply_err(req, 0)
      }
    }
    return ops
  }
}

/// fallocate mode flags (linux/falloc.h, which Swift's Glibc does not carry).
enum Falloc {
  static let keepSize: Int32 = 0x01
  static let punchHole: Int32 = 0x02
  static let zeroRange: Int32 = 0x10
}

/// Mode bits (the S_IF* macros are ambiguous between the C modules Swift sees).
enum Mode {
  static let typeMask: UInt16 = 0o170000
  static let directory: UInt16 = 0o040000
  static let regular: UInt16 = 0o100000
  static let symlink: UInt16 = 0o120000
  static let setgid: UInt16 = 0o2000
}

extension String {
  fileprivate func replacingOccurrences(_ of: Character, _ with: Character) -> String {
    String(map { $0 == of ? with : $0 })
  }
}
