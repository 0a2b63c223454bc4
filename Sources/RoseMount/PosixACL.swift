import RoseFS

#if canImport(Glibc)
  import Glibc
#endif

/// A POSIX ACL in its xattr form (`system.posix_acl_access` / `_default`: u32 version 2, then
/// entries of u16 tag, u16 perm, u32 id). With FUSE_CAP_POSIX_ACL the kernel enforces ACLs but leaves
/// to the filesystem what a Linux filesystem's ACL code does: keep the mode's permission bits in step
/// with the access ACL (the group bits are the mask when there is one), and give a new inode the
/// default ACL of its directory.
struct PosixACL: Equatable {
  static let accessName = Array("system.posix_acl_access".utf8)
  static let defaultName = Array("system.posix_acl_default".utf8)
  static let version: UInt32 = 2

  enum Tag: UInt16 {
    case userObject = 0x01
    case user = 0x02
    case groupObject = 0x04
    case group = 0x08
    case mask = 0x10
    case other = 0x20
  }

  struct Entry: Equatable {
    var tag: Tag
    var permissions: UInt16
    var id: UInt32
  }

  var entries: [Entry]

  init(entries: [Entry]) { self.entries = entries }

  /// Parses the xattr value; nil when it is not a well-formed version 2 ACL.
  init?(_ bytes: [UInt8]) {
    guard bytes.count >= 4, (bytes.count - 4) % 8 == 0 else { return nil }
    func u16(_ o: Int) -> UInt16 { UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8 }
    func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
    guard u32(0) == Self.version else { return nil }
    var entries: [Entry] = []
    for o in stride(from: 4, to: bytes.count, by: 8) {
      guard let tag = Tag(rawValue: u16(o)), u16(o + 2) & ~0o7 == 0 else { return nil }
      entries.append(Entry(tag: tag, permissions: u16(o + 2), id: u32(o + 4)))
    }
    let count = { (t: Tag) in entries.filter { $0.tag == t }.count }
    // The three owner entries exactly once; a mask whenever named entries exist.
    guard count(.userObject) == 1, count(.groupObject) == 1, count(.other) == 1, count(.mask) <= 1,
      count(.user) + count(.group) == 0 || count(.mask) == 1
    else { return nil }
    self.entries = entries
  }

  var bytes: [UInt8] {
    var out: [UInt8] = []
    func put16(_ v: UInt16) { out += [UInt8(v & 0xFF), UInt8(v >> 8)] }
    func put32(_ v: UInt32) {
      put16(UInt16(v & 0xFFFF))
      put16(UInt16(v >> 16))
    }
    put32(Self.version)
    // The kernel's order: by tag, then by id.
    for e in entries.sorted(by: { ($0.tag.rawValue, $0.id) < ($1.tag.rawValue, $1.id) }) {
      put16(e.tag.rawValue)
      put16(e.permissions)
      put32(e.id)
    }
    return out
  }

  /// Only the owner, group and other entries: the mode says it all and no xattr is kept.
  var isEquivalentToMode: Bool { entries.count == 3 }

  private func permissions(_ tag: Tag) -> UInt16 {
    entries.first { $0.tag == tag }?.permissions ?? 0
  }

  /// The permission bits (0777) the mode shows: owner, mask (or group), other.
  var modeBits: UInt16 {
    let group =
      entries.contains { $0.tag == .mask } ? permissions(.mask) : permissions(.groupObject)
    return permissions(.userObject) << 6 | group << 3 | permissions(.other)
  }

  /// After a chmod: the owner, mask (or group) and other entries take the new bits.
  func chmod(_ mode: UInt16) -> PosixACL {
    let hasMask = entries.contains { $0.tag == .mask }
    var copy = self
    for i in copy.entries.indices {
      switch copy.entries[i].tag {
      case .userObject: copy.entries[i].permissions = (mode >> 6) & 7
      case .mask: copy.entries[i].permissions = (mode >> 3) & 7
      case .groupObject where !hasMask: copy.entries[i].permissions = (mode >> 3) & 7
      case .other: copy.entries[i].permissions = mode & 7
      default: break
      }
    }
    return copy
  }

  /// The access ACL of a new inode from its directory's default ACL and the mode asked for
  /// (Linux's posix_acl_create): owner, mask (or group) and other are limited by the mode.
  func inherited(mode: UInt16) -> PosixACL {
    let hasMask = entries.contains { $0.tag == .mask }
    var copy = self
    for i in copy.entries.indices {
      switch copy.entries[i].tag {
      case .userObject: copy.entries[i].permissions &= (mode >> 6) & 7
      case .mask: copy.entries[i].permissions &= (mode >> 3) & 7
      case .groupObject where !hasMask: copy.entries[i].permissions &= (mode >> 3) & 7
      case .other: copy.entries[i].permissions &= mode & 7
      default: break
      }
    }
    return copy
  }
}
