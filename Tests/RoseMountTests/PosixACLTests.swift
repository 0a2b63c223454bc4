import Testing

@testable import RoseMount

/// The ACL rules the mount applies on top of the kernel's enforcement (what ext4's ACL code does),
/// checked against the bytes `setfacl` writes (captured from Linux, version 2 xattr layout).
@Suite struct PosixACLTests {
  /// `setfacl -m u:1234:rw` on a 0644 file: user::rw- user:1234:rw- group::r-- mask::rw- other::r--.
  let named: [UInt8] = [
    2, 0, 0, 0, 1, 0, 6, 0, 255, 255, 255, 255, 2, 0, 6, 0, 0xD2, 4, 0, 0, 4, 0, 4, 0, 255, 255,
    255,
    255, 0x10, 0, 6, 0, 255, 255, 255, 255, 0x20, 0, 4, 0, 255, 255, 255, 255,
  ]

  @Test func parsesAndEncodesTheKernelLayout() throws {
    let acl = try #require(PosixACL(named))
    #expect(acl.entries.count == 5)
    #expect(acl.bytes == named)
    // The group bits of the mode are the mask, as on Linux.
    #expect(acl.modeBits == 0o664)
    #expect(!acl.isEquivalentToMode)
  }

  @Test func minimalACLIsTheMode() throws {
    // What `cp -a` writes for a 0755 directory without an ACL.
    let minimal: [UInt8] = [
      2, 0, 0, 0, 1, 0, 7, 0, 255, 255, 255, 255, 4, 0, 5, 0, 255, 255, 255, 255, 0x20, 0, 5, 0,
      255,
      255, 255, 255,
    ]
    let acl = try #require(PosixACL(minimal))
    #expect(acl.isEquivalentToMode)
    #expect(acl.modeBits == 0o755)
  }

  @Test func chmodRewritesOwnerMaskAndOther() throws {
    let acl = try #require(PosixACL(named)).chmod(0o640)
    #expect(acl.modeBits == 0o640)
    // The named entry keeps its bits; the mask limits them.
    #expect(acl.entries.contains { $0.tag == .user && $0.id == 1234 && $0.permissions == 6 })
    #expect(acl.entries.contains { $0.tag == .mask && $0.permissions == 4 })
  }

  @Test func inheritanceLimitsByTheCreateMode() throws {
    let inherited = try #require(PosixACL(named)).inherited(mode: 0o600)
    #expect(inherited.modeBits == 0o600)
    #expect(inherited.entries.contains { $0.tag == .user && $0.permissions == 6 })
  }

  @Test func refusesMalformedACLs() {
    #expect(PosixACL([]) == nil)
    #expect(PosixACL([1, 0, 0, 0]) == nil)  // version 1
    #expect(PosixACL(Array(named.dropLast(2))) == nil)  // truncated
    // A named user without a mask.
    let noMask = Array(named[0..<28]) + Array(named[36...])
    #expect(PosixACL(noMask) == nil)
  }

  @Test func deviceNumbersRoundTripGlibcLayout() {
    for (major, minor) in [(1 as UInt32, 3 as UInt32), (259, 65537), (4095, 255), (4096, 256)] {
      let dev = FuseMount.makeDevice(major, minor)
      let back = FuseMount.deviceNumbers(dev)
      #expect(back.major == major && back.minor == minor)
    }
    // makedev(1, 3) is 0x103 in glibc.
    #expect(FuseMount.makeDevice(1, 3) == 0x103)
  }
}
