import Foundation
import RoseTestSupport
import Testing

@testable import RoseDisk

@Suite struct LayoutTests {
  func spec(_ label: String, _ size: PartitionSizeRule, content: UInt64 = 0, offset: UInt64? = nil)
    -> PartitionRequest
  {
    PartitionRequest(
      label: label, type: GUID.derived(seed: "t", label: "type"),
      uuid: GUID.derived(seed: "t", label: label),
      size: size, contentSize: content, offset: offset)
  }

  @Test func alignmentAndAutoSize() throws {
    let layout = try DiskLayout.plan(
      diskGUID: .zero,
      partitions: [
        spec("esp", .fixed(4 * mib)), spec("root", .auto(), content: 3 * mib + 512 * 1024),
      ])
    #expect(layout.partitions[0].offset == mib)
    #expect(layout.partitions[0].firstLBA == 2048)
    #expect(layout.partitions[1].offset == 5 * mib)
    #expect(layout.partitions[1].size == 4 * mib)
    // 9 MiB of partitions + 33 backup sectors, rounded up to 4 KiB.
    #expect(layout.diskSize == 9 * mib + 20480)
    #expect(layout.firstUsableLBA == 34)
    #expect(layout.lastUsableLBA == layout.totalSectors - 34)
    for p in layout.partitions { #expect(p.offset % mib == 0) }
  }

  @Test func fourKSectorAreas() throws {
    let layout = try DiskLayout.plan(
      sectorSize: 4096, diskSize: 64 * mib, diskGUID: .zero, partitions: [])
    #expect(layout.entryArraySectors == 4)
    #expect(layout.firstUsableLBA == 6)
    #expect(layout.totalSectors == 16384)
    #expect(layout.lastUsableLBA == 16378)
    #expect(layout.backupEntriesLBA == 16379)
    #expect(layout.backupHeaderLBA == 16383)
  }

  @Test func growFillsTheDisk() throws {
    let layout = try DiskLayout.plan(
      diskSize: 64 * mib, diskGUID: .zero,
      partitions: [spec("esp", .fixed(8 * mib)), spec("data", .grow(min: mib))])
    let data = layout.partitions[1]
    #expect(data.offset == 9 * mib)
    // Usable end is 64 MiB - 33 sectors; the grow partition ends on the last 1 MiB boundary before it.
    #expect(data.end == 63 * mib)
    #expect(data.lastLBA <= layout.lastUsableLBA)
  }

  @Test func growSharesByWeightAndMax() throws {
    let layout = try DiskLayout.plan(
      diskSize: 104 * mib, diskGUID: .zero,
      partitions: [
        spec("a", .grow(min: mib, weight: 1)), spec("b", .grow(min: mib, weight: 3)),
        spec("c", .grow(min: mib, max: 5 * mib, weight: 100)),
      ])
    let sizes = layout.partitions.map { $0.size / mib }
    #expect(sizes[2] == 5)
    // 102 MiB usable after the first MiB (last MiB holds the backup): 102 - 5 = 97 split 1:3.
    #expect(sizes[0] + sizes[1] == 97)
    #expect(sizes[1] >= 3 * sizes[0] - 3 && sizes[1] <= 3 * sizes[0] + 3)
  }

  @Test func autoSizeGivesGrowItsMinimum() throws {
    let layout = try DiskLayout.plan(
      diskGUID: .zero, partitions: [spec("data", .grow(min: 3 * mib))])
    #expect(layout.partitions[0].size == 3 * mib)
  }

  @Test func tooSmallMessage() throws {
    do {
      _ = try DiskLayout.plan(
        diskGUID: .zero, partitions: [spec("root", .auto(max: 256 * mib), content: 412 * mib)])
      Issue.record("expected an error")
    } catch let error as DiskError {
      #expect(
        error.description.contains("partition 'root' does not fit: needs 412 MiB, has 256 MiB"))
    }
    do {
      _ = try DiskLayout.plan(
        diskSize: 64 * mib, diskGUID: .zero,
        partitions: [spec("esp", .fixed(8 * mib)), spec("root", .auto(), content: 100 * mib)])
      Issue.record("expected an error")
    } catch let error as DiskError {
      #expect(
        error == .partitionDoesNotFit(label: "root", needed: 100 * mib, available: 55 * mib - 16896)
      )
      #expect(error.description.contains("needs 100 MiB"))
    }
    #expect(
      throws: DiskError.partitionDoesNotFit(label: "esp", needed: 5 * mib, available: 4 * mib)
    ) {
      try DiskLayout.plan(
        diskGUID: .zero, partitions: [spec("esp", .fixed(4 * mib), content: 5 * mib)])
    }
  }

  @Test func overlapAndMisalignment() throws {
    #expect(
      throws: DiskError.overlap(
        label: "b", other: "partition 'a'", offset: 2 * mib, otherEnd: 5 * mib)
    ) {
      try DiskLayout.plan(
        diskGUID: .zero,
        partitions: [spec("a", .fixed(4 * mib)), spec("b", .fixed(mib), offset: 2 * mib)])
    }
    #expect(
      throws: DiskError.misaligned(label: "b", what: "offset", value: 6 * mib + 100, alignment: 512)
    ) {
      try DiskLayout.plan(
        diskGUID: .zero,
        partitions: [spec("a", .fixed(4 * mib)), spec("b", .fixed(mib), offset: 6 * mib + 100)])
    }
    #expect(throws: DiskError.misaligned(label: "a", what: "size", value: 1000, alignment: 512)) {
      try DiskLayout.plan(diskGUID: .zero, partitions: [spec("a", .fixed(1000))])
    }
    do {
      _ = try DiskLayout.plan(
        diskGUID: .zero, partitions: [spec("boot", .fixed(mib), offset: 8192)])
      Issue.record("expected an error")
    } catch let error as DiskError {
      #expect(
        error.description.contains(
          "overlaps the GPT header and partition entries which ends at 17408"))
    }
    // A fixed offset that is sector- but not MiB-aligned is allowed (SoC boot loaders).
    let layout = try DiskLayout.plan(
      diskGUID: .zero, partitions: [spec("spl", .fixed(mib), offset: 32 * 1024)])
    #expect(layout.partitions[0].firstLBA == 64)
  }

  @Test func limitsAndErrors() throws {
    let many = (0..<129).map { spec("p\($0)", .fixed(mib)) }
    #expect(throws: DiskError.tooManyPartitions(count: 129, maximum: 128)) {
      try DiskLayout.plan(diskGUID: .zero, partitions: many)
    }
    #expect(throws: DiskError.invalidSectorSize(520)) {
      try DiskLayout.plan(sectorSize: 520, diskGUID: .zero, partitions: [])
    }
    #expect(throws: DiskError.diskTooSmall(needed: 9 * mib + 16896, given: 16384)) {
      try DiskLayout.plan(
        diskSize: 16384, diskGUID: .zero, partitions: [spec("a", .fixed(8 * mib))])
    }
    #expect(throws: DiskError.self) {
      try DiskLayout.plan(
        diskGUID: .zero, partitions: [spec("same", .fixed(mib)), spec("same", .fixed(mib))])
    }
    #expect(throws: DiskError.self) {
      try DiskLayout.plan(
        diskGUID: .zero, partitions: [spec(String(repeating: "x", count: 37), .fixed(mib))])
    }
  }
}

@Suite struct ValueTypeTests {
  @Test func guidRoundTrip() throws {
    let guid = try GUID(parsing: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
    #expect(guid.description == "c12a7328-f81f-11d2-ba4b-00a0c93ec93b")
    #expect(
      guid.gptBytes == [
        0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9,
        0x3B,
      ])
    #expect(GUID(gptBytes: guid.gptBytes) == guid)
    #expect(try GUID(parsing: "{c12a7328-f81f-11d2-ba4b-00a0c93ec93b}") == guid)
    #expect(throws: DiskError.invalidGUID("c12a7328-f81f-11d2-ba4b-00a0c93ec93")) {
      try GUID(parsing: "c12a7328-f81f-11d2-ba4b-00a0c93ec93")
    }
    #expect(throws: DiskError.self) { try GUID(parsing: "c12a7328xf81f-11d2-ba4b-00a0c93ec93b") }
  }

  @Test func derivedGUIDs() throws {
    let a = GUID.derived(seed: "seed", label: "root")
    #expect(a == GUID.derived(seed: "seed", label: "root"))
    #expect(a != GUID.derived(seed: "seed", label: "usr"))
    #expect(a != GUID.derived(seed: "seed2", label: "root"))
    let bytes = a.canonicalBytes
    #expect(bytes[6] >> 4 == 4)
    #expect(bytes[8] & 0xC0 == 0x80)
    // SHA-256("seed\0root") pinned so derivation never changes silently.
    let digest = SHA256Stream.hex(SHA256Stream.digest(Array("seed\0root".utf8)))
    #expect(a.description.replacingOccurrences(of: "-", with: "").prefix(12) == digest.prefix(12))
  }

  @Test func partitionTypes() throws {
    #expect(
      try PartitionTypes.guid(for: "esp").uppercased == "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
    #expect(
      try PartitionTypes.guid(for: "root-x86-64").uppercased
        == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")
    #expect(
      try PartitionTypes.guid(for: "root-arm64").uppercased
        == "B921B045-1DF0-41C3-AF44-4C6F280D3FAE")
    #expect(
      try PartitionTypes.guid(for: "usr-arm64").uppercased == "B0E01050-EE5F-4390-949A-9101B17104E9"
    )
    #expect(
      try PartitionTypes.guid(for: "root-riscv64").uppercased
        == "72EC70A6-CF74-40E6-BD49-4BDA08E8F224")
    #expect(
      try PartitionTypes.guid(for: "root-x86-64-verity").uppercased
        == "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5")
    #expect(
      try PartitionTypes.guid(for: "xbootldr").uppercased == "BC13C2FF-59E6-4262-A352-B275FD6F7172")
    #expect(
      try PartitionTypes.guid(for: "linux-generic").uppercased
        == "0FC63DAF-8483-4772-8E79-3D69D8477DE4")
    #if arch(x86_64)
      #expect(try PartitionTypes.guid(for: "root") == PartitionTypes.guid(for: "root-x86-64"))
      #expect(
        try PartitionTypes.guid(for: "usr-verity") == PartitionTypes.guid(for: "usr-x86-64-verity"))
    #endif
    #expect(
      try PartitionTypes.guid(for: "0fc63daf-8483-4772-8e79-3d69d8477de4")
        == PartitionTypes.guid(for: "linux-generic"))
    #expect(PartitionTypes.name(for: try PartitionTypes.guid(for: "root-x86-64")) == "root-x86-64")
    do {
      _ = try PartitionTypes.guid(for: "rot")
      Issue.record("expected an error")
    } catch let error as DiskError {
      guard case .unknownPartitionType(_, let matches) = error else {
        throw TestFailure("wrong error \(error)")
      }
      #expect(matches.contains("root"))
      #expect(error.description.contains("did you mean"))
    }
  }

  @Test func allocationMap() {
    var map = AllocationMap()
    map.insert(offset: 100, length: 50)
    map.insert(offset: 0, length: 10)
    map.insert(offset: 150, length: 10)  // touches: merges
    map.insert(offset: 5, length: 100)  // bridges
    #expect(map.extents == [.init(offset: 0, length: 160)])
    map.insert(offset: 8192, length: 1)
    #expect(map.usedBytes == 161)
    #expect(map.contains(159) && !map.contains(160) && map.contains(8192))
    #expect(
      map.holes(imageSize: 10000) == [
        .init(offset: 160, length: 8032), .init(offset: 8193, length: 1807),
      ])
    let blocks = map.blockRanges(blockSize: 4096, imageSize: 10000)
    #expect(blocks.count == 2 && blocks[0] == (0, 0) && blocks[1] == (2, 2))
    #expect(
      map.extents(inRange: 50, length: 8150) == [
        .init(offset: 50, length: 110), .init(offset: 8192, length: 1),
      ])
    let unsorted = AllocationMap(unsorted: [
      .init(offset: 20, length: 5), .init(offset: 0, length: 10), .init(offset: 10, length: 3),
    ])
    #expect(unsorted.extents == [.init(offset: 0, length: 13), .init(offset: 20, length: 5)])
    var shifted = AllocationMap()
    shifted.insert(unsorted, shiftedBy: 1000)
    #expect(shifted.extents.first == .init(offset: 1000, length: 13))
  }
}
