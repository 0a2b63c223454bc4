import Foundation
import RoseTestSupport
import Testing

@testable import RoseDisk

/// `RepartLayout` and the repart UUID derivation, against numbers systemd-repart 252 printed
/// (`systemd-repart --empty=create --size=... --seed=e2a40bf9-73f1-4278-9160-49c031e7aef8
/// --dry-run=yes --json=short`) and RFC 4231.
@Suite struct RepartLayoutTests {
  static let seed = (try? GUID(parsing: "e2a40bf9-73f1-4278-9160-49c031e7aef8")) ?? .zero
  static let root = PartitionTypes.guid(for: "root", architecture: "x86-64") ?? .zero
  static let home = PartitionTypes.guid(for: "home", architecture: "x86-64") ?? .zero

  @Test func hmacMatchesRFC4231() {
    let mac = HMACSHA256.mac(
      key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
    #expect(
      SHA256Stream.hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    // A key longer than the block is hashed first (RFC 4231 test case 6).
    let long = HMACSHA256.mac(
      key: [UInt8](repeating: 0xAA, count: 131),
      message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))
    #expect(
      SHA256Stream.hex(long) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
  }

  @Test func uuidsAsRepartDerivesThem() throws {
    #expect(
      GUID.repartDiskGUID(seed: Self.seed).description == "ef7f7ee2-47b3-4251-b1a1-09ea8bf12d5d")
    #expect(
      GUID.repartPartitionGUID(seed: Self.seed, type: Self.root, instance: 0).description
        == "ce9c76eb-a8f1-40ff-813c-11dca6c0a55b")
    #expect(
      GUID.repartPartitionGUID(seed: Self.seed, type: Self.root, instance: 1).description
        == "ac60a837-550c-43bd-b5c4-9cb73b884e79")
    #expect(
      GUID.repartPartitionGUID(seed: Self.seed, type: Self.home, instance: 0).description
        == "a6005774-f558-4330-a8e5-d6d2c01c01d6")
  }

  @Test func id128ParsesAsSystemdDoes() {
    #expect(
      GUID.parseID128("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf")?.description
        == "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf")
    #expect(GUID.parseID128("A0A1A2A3-A4A5-A6A7-A8A9-AAABACADAEAF") != nil)
    #expect(GUID.parseID128("a0a1a2a3a4a5a6a7a8a9aaabacadaea") == nil)
    #expect(GUID.parseID128("{a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf}") == nil)
  }

  /// Issue 8's example: root Weight=20000 and home Weight=40000 on a 64 GiB disk.
  @Test func weightsShareTheDisk() throws {
    let layout = try RepartLayout.plan(
      sectorSize: 512, diskSize: 64 << 30, diskGUID: .zero,
      partitions: [
        RepartPartitionRequest(label: "root-x86-64", type: Self.root, uuid: .zero, weight: 20000),
        RepartPartitionRequest(label: "home", type: Self.home, uuid: .zero, weight: 40000),
      ])
    #expect(layout.partitions.map(\.offset) == [1_048_576, 22_907_183_104])
    #expect(layout.partitions.map(\.size) == [22_906_134_528, 45_812_273_152])
    #expect(layout.firstUsableLBA == 2048)
    #expect(layout.lastUsableLBA == (64 << 30) / 512 - 34)
  }

  @Test func minimaBeforeWeightsAndMaximaCapShares() throws {
    // A partition whose minimum is above its share gets the minimum; one whose maximum is below
    // its share gets the maximum; the rest share what is left by weight.
    let layout = try RepartLayout.plan(
      sectorSize: 512, diskSize: 1 << 30, diskGUID: .zero,
      partitions: [
        RepartPartitionRequest(label: "a", type: Self.root, uuid: .zero, sizeMin: 600 << 20),
        RepartPartitionRequest(label: "b", type: Self.home, uuid: .zero, sizeMax: 64 << 20),
        RepartPartitionRequest(label: "c", type: Self.home, uuid: .zero, weight: 0),
      ])
    #expect(layout.partitions[0].size > 600 << 20)
    #expect(layout.partitions[1].size == 64 << 20)
    #expect(layout.partitions[2].size == RepartLayout.defaultMinSize)
    #expect(layout.partitions.allSatisfy { $0.offset % 4096 == 0 && $0.size % 4096 == 0 })
  }

  @Test func tooSmallDiskIsRefused() {
    #expect(throws: DiskError.self) {
      try RepartLayout.plan(
        sectorSize: 512, diskSize: 16 << 20, diskGUID: .zero,
        partitions: [
          RepartPartitionRequest(label: "a", type: Self.root, uuid: .zero),
          RepartPartitionRequest(label: "b", type: Self.root, uuid: .zero),
        ])
    }
  }

  @Test func autoSizeIsRepartsSumOfMinima() {
    // repart 252 printed "Automatically determined minimal disk image size as 523.0M" for an
    // ESP of 512M and a root without SizeMinBytes= (Tests/RepartCorpus/mkosi-default).
    let size = RepartLayout.autoDiskSize(
      sectorSize: 512,
      partitions: [
        RepartPartitionRequest(
          label: "esp", type: .zero, uuid: .zero, sizeMin: 512 << 20, sizeMax: 512 << 20),
        RepartPartitionRequest(label: "root", type: Self.root, uuid: .zero),
      ])
    #expect(size == 548_425_728)
  }

  @Test func rosefsTypesAreInTheTable() {
    #expect(
      PartitionTypes.guid(for: "rosefs-root", architecture: "x86-64")?.uppercased
        == "6BB2C3CA-50CB-4CA0-8E03-C35A3034266E")
    #expect(
      PartitionTypes.guid(for: "rosefs-data", architecture: "x86-64")?.uppercased
        == "2108659E-1A6C-4B2A-BAB1-99C73A2C0B6E")
    // repart does not know them: it names such partitions "linux".
    let data = PartitionTypes.guid(for: "rosefs-data", architecture: "x86-64") ?? .zero
    #expect(PartitionTypes.repartLabelPrefix(for: data) == "linux")
  }
}
