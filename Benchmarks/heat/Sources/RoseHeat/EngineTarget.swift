import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// The RoseFS engine through its contract (`VolumeOperations`, keyed by inode number): paths are
/// resolved by `lookup` from the root, as the FUSE kernel module would, and writes go in 128 KiB
/// pieces (FUSE's default max_write), so the engine sees what it would see under `rosepack mount`.
public final class EngineTarget: OperationTarget {
  public let volume: any VolumeOperations
  public static let writePiece = 128 << 10
  public init(volume: any VolumeOperations) { self.volume = volume }

  static func components(_ path: String) -> [[UInt8]] {
    path.split(separator: "/").map { Array($0.utf8) }
  }

  func resolve(_ path: String) throws(EngineError) -> UInt32 {
    var ino = volume.rootIno
    for c in Self.components(path) { ino = try volume.lookup(parent: ino, name: c).ino }
    return ino
  }

  func parentAndName(_ path: String) throws(EngineError) -> (UInt32, [UInt8]) {
    var cs = Self.components(path)
    guard let name = cs.popLast() else { throw EngineError(EINVAL, "\(path): no name") }
    var ino = volume.rootIno
    for c in cs { ino = try volume.lookup(parent: ino, name: c).ino }
    return (ino, name)
  }

  func write(_ ino: UInt32, at offset: UInt64, _ bytes: [UInt8]) throws(EngineError) {
    var done = 0
    while done < bytes.count {
      let n = min(Self.writePiece, bytes.count - done)
      let r: Result<Void, EngineError> = bytes.withUnsafeBytes { b in
        do throws(EngineError) {
          try volume.write(
            ino, offset: offset + UInt64(done),
            bytes: UnsafeRawBufferPointer(rebasing: b[done..<done + n]))
          return .success(())
        } catch { return .failure(error) }
      }
      try r.get()
      done += n
    }
  }

  func perform(_ op: HeatOp, payload: [UInt8]) throws(EngineError) {
    switch op {
    case .mkdir(let p):
      let (parent, name) = try parentAndName(p)
      _ = try volume.mkdir(parent: parent, name: name, mode: 0o755, uid: 0, gid: 0)
    case .rmdir(let p):
      let (parent, name) = try parentAndName(p)
      try volume.rmdir(parent: parent, name: name)
    case .unlink(let p):
      let (parent, name) = try parentAndName(p)
      try volume.unlink(parent: parent, name: name)
    case .rename(let a, let b):
      let (pa, na) = try parentAndName(a)
      let (pb, nb) = try parentAndName(b)
      try volume.rename(parent: pa, name: na, newParent: pb, newName: nb, flags: [])
    case .truncate(let p, let n):
      _ = try volume.setattr(try resolve(p), AttributeChanges(size: UInt64(n)))
    case .create(let p, _):
      let (parent, name) = try parentAndName(p)
      var existing: UInt32? = nil
      do {
        existing = try volume.lookup(parent: parent, name: name).ino
      } catch  where error.errno == ENOENT {}
      let ino: UInt32
      if let existing {
        ino = existing
        _ = try volume.setattr(ino, AttributeChanges(size: 0))
      } else {
        ino =
          try volume.mknod(
            parent: parent, name: name, mode: UInt16(S_IFREG) | 0o644, uid: 0, gid: 0,
            rdevMajor: 0, rdevMinor: 0
          ).ino
      }
      try write(ino, at: 0, payload)
    case .append(let p, _):
      let ino = try resolve(p)
      try write(ino, at: try volume.getattr(ino).size, payload)
    case .overwrite(let p, let offset, _):
      try write(try resolve(p), at: UInt64(offset), payload)
    case .fsync(let p):
      try volume.fsync(try resolve(p), dataOnly: false)
    }
  }

  public func apply(_ op: HeatOp, payload: [UInt8]) -> Int32 {
    do throws(EngineError) {
      try perform(op, payload: payload)
      return 0
    } catch { return error.errno }
  }

  public func finish() -> Int32 {
    do throws(EngineError) {
      try volume.unmount()
      return 0
    } catch { return error.errno }
  }
}
