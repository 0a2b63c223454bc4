import Foundation
import Testing

@testable import RoseFS

/// Automatic volume size for content just under a segment-class boundary (issue 10's benchmark:
/// `convert` of 1.5 GiB of files failed with "volume of 26 TB is larger than RoseFS supports").
/// Overprovisioning stands in for the data, so no gigabytes are written.
@Suite struct GeometryScaleTests {
  @Test func contentNearASegmentClassBoundaryGetsAVolume() throws {
    let tmp = TempImage()
    let b = try ImageBuilder(
      image: tmp.image,
      options: BuildOptions(sourceDateEpoch: 1, overprovisionBlocks: 393_216))  // 1.5 GiB
    let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: Timestamp(seconds: 1))
    let report = try b.finish(subvolumes: [Subvolume(name: "a", root: root)])
    #expect(report.volumeBytes >= 393_216 * 4096)
    #expect(report.volumeBytes < 3 << 30, "the smallest volume, not a doubled one")
    #expect(Fsck.check(image: tmp.image).isEmpty, "\(Fsck.check(image: tmp.image).prefix(3))")
  }
}
