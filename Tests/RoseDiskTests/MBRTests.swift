import Foundation
import RoseTestSupport
import Testing

@testable import RoseDisk

@Suite struct MBRTests {
  /// CHS bytes genimage 16 wrote for a RPi layout (`xxd -s 446 sdcard.img`): boot at LBA 8192
  /// (65536 sectors), rootfs at 73728 (131072 sectors).
  @Test func chsMatchesGenimage() {
    #expect(MBREntry.chs(8192) == [0x82, 0x03, 0x00])
    #expect(MBREntry.chs(73727) == [0x96, 0x12, 0x04])
    #expect(MBREntry.chs(73728) == [0x96, 0x13, 0x04])
    #expect(MBREntry.chs(204799) == [0xBE, 0x32, 0x0C])
    #expect(MBREntry.chs(0) == [0, 0, 0])
    // Cylinder bits 8-9 go to bits 6-7 of the sector byte; genimage drops bit 10 and up.
    #expect(MBREntry.chs(768 * 255 * 63) == [0x00, 0xC1, 0x00])
    #expect(MBREntry.chs(1024 * 255 * 63) == [0x00, 0x01, 0x00])
  }

  func layout(_ count: Int, sizeMiB: UInt64 = 4) throws -> DiskLayout {
    let specs = (0..<count).map { i in
      PartitionRequest(
        label: "p\(i)", type: GUID.derived(seed: "t", label: "type"),
        uuid: GUID.derived(seed: "t", label: "p\(i)"), size: .fixed(sizeMiB << 20))
    }
    return try DiskLayout.plan(diskGUID: GUID.derived(seed: "t", label: "disk"), partitions: specs)
  }

  @Test func entriesRoundTrip() throws {
    let disk = try layout(2)
    let entries = try MBRWriter.entries(
      layout: disk, types: [0x0C, 0x83], bootable: [true, false])
    let tail = MBRWriter.encodeTail(signature: 0x1234_5678, entries: entries)
    #expect(tail.count == 72)
    #expect(Array(tail[0..<4]) == [0x78, 0x56, 0x34, 0x12])
    #expect(Array(tail[70..<72]) == [0x55, 0xAA])
    var sector = [UInt8](repeating: 0, count: 440) + tail
    #expect(sector.count == 512)
    let table = try #require(MBRTable.parse(sector))
    #expect(table.signature == 0x1234_5678)
    #expect(table.entries.map(\.entry) == entries)
    #expect(entries[0].firstLBA == 2048 && entries[0].sectorCount == 8192 && entries[0].bootable)
    sector[511] = 0
    #expect(MBRTable.parse(sector) == nil)
  }

  @Test func aFifthPrimaryIsRefusedByName() throws {
    let disk = try layout(5, sizeMiB: 1)
    #expect(throws: TableError.tooManyPrimaries(label: "p4", count: 5)) {
      try MBRWriter.entries(layout: disk, types: [], bootable: [])
    }
  }

  @Test func hybridPutsMirrorsThenTheProtectiveEntry() throws {
    let disk = try layout(3)
    let entries = try MBRWriter.hybridEntries(
      layout: disk, types: [0x0C, nil, 0x83], bootable: [true, false, false])
    #expect(entries.map(\.type) == [0x0C, 0x83, 0xEE])
    #expect(entries[2].firstLBA == 1 && entries[2].sectorCount == 33)
    #expect(entries[1].firstLBA == UInt32(disk.partitions[2].firstLBA))
    let four = try layout(4, sizeMiB: 1)
    #expect(throws: TableError.tooManyHybrid(labels: ["p0", "p1", "p2", "p3"])) {
      try MBRWriter.hybridEntries(layout: four, types: [1, 2, 3, 4], bootable: [])
    }
  }

  @Test func blobsMayNotOverlapTablesPartitionsOrEachOther() throws {
    let disk = try layout(1)
    let uboot = PlacedBlob(name: "u-boot", source: "/dev/null", offset: 8192, size: 4096)
    // 8 KiB is inside the GPT entry array but free on an MBR disk.
    try BlobPlacement.check([uboot], layout: disk, table: .mbr)
    #expect(
      throws: TableError.blobOverlap(
        blob: "u-boot", start: 8192, end: 12288, other: "the primary GPT", otherStart: 512,
        otherEnd: 17408)
    ) { try BlobPlacement.check([uboot], layout: disk, table: .gpt) }
    let big = PlacedBlob(name: "spl", source: "/dev/null", offset: 32768, size: 2 << 20)
    #expect(
      throws: TableError.blobOverlap(
        blob: "spl", start: 32768, end: 32768 + (2 << 20), other: "partition 'p0'",
        otherStart: 1 << 20, otherEnd: 5 << 20)
    ) { try BlobPlacement.check([big], layout: disk, table: .gpt) }
    let second = PlacedBlob(name: "env", source: "/dev/null", offset: 10240, size: 512)
    #expect(throws: TableError.self) {
      try BlobPlacement.check([uboot, second], layout: disk, table: .mbr)
    }
    let late = PlacedBlob(name: "late", source: "/dev/null", offset: disk.diskSize, size: 1)
    #expect(throws: TableError.self) { try BlobPlacement.check([late], layout: disk, table: .mbr) }
  }

  @Test func typeDefaultsAndShortcuts() throws {
    let esp = try PartitionTypes.guid(for: "esp")
    #expect(MBRWriter.defaultType(gptType: esp, isFAT: true) == 0xEF)
    #expect(
      MBRWriter.defaultType(gptType: try PartitionTypes.guid(for: "swap"), isFAT: false) == 0x82)
    #expect(MBRWriter.defaultType(gptType: .zero, isFAT: true) == 0x0C)
    #expect(MBRWriter.defaultType(gptType: .zero, isFAT: false) == 0x83)
    #expect(PartitionTypes.guid(for: "U", architecture: "arm64") == esp)
    #expect(
      PartitionTypes.guid(for: "V", architecture: "arm64")?.description
        == "e6d6d379-f507-44c2-a23c-238f2a3df928")
    #expect(PartitionTypes.guid(for: "X", architecture: "arm64") == nil)
  }
}
