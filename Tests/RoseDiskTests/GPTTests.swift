import Foundation
import RoseTestSupport
import Testing

@testable import RoseDisk

@Suite struct GPTTests {
  /// Compares `sfdisk --json` with the layout.
  func checkSfdisk(_ image: SampleImage, sectorSize: UInt64) throws {
    let result = try runTool("sfdisk", package: "fdisk", ["--json", image.path])
    guard
      let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any],
      let table = json["partitiontable"] as? [String: Any],
      let parts = table["partitions"] as? [[String: Any]]
    else { throw TestFailure("unexpected sfdisk output: \(result.output)") }
    #expect(table["label"] as? String == "gpt")
    #expect((table["id"] as? String)?.lowercased() == image.layout.diskGUID.description)
    #expect(table["firstlba"] as? Int == Int(image.layout.firstUsableLBA))
    #expect(table["lastlba"] as? Int == Int(image.layout.lastUsableLBA))
    if let reported = table["sectorsize"] as? Int { #expect(reported == Int(sectorSize)) }
    #expect(parts.count == image.layout.partitions.count)
    for (p, s) in zip(image.layout.partitions, parts) {
      #expect(s["name"] as? String == p.label)
      #expect((s["type"] as? String)?.lowercased() == p.type.description)
      #expect((s["uuid"] as? String)?.lowercased() == p.uuid.description)
      #expect(s["start"] as? Int == Int(p.firstLBA))
      #expect(s["size"] as? Int == Int(p.lastLBA - p.firstLBA + 1))
    }
  }

  func checkReader(_ image: SampleImage, sectorSize: UInt64) throws {
    let table = try GPTReader.read(path: image.path)
    #expect(table.sectorSize == sectorSize)
    #expect(table.diskGUID == image.layout.diskGUID)
    #expect(table.warnings.isEmpty)
    #expect(table.firstUsableLBA == image.layout.firstUsableLBA)
    #expect(table.lastUsableLBA == image.layout.lastUsableLBA)
    #expect(table.partitions.count == image.layout.partitions.count)
    for (p, r) in zip(image.layout.partitions, table.partitions) {
      #expect(r.index == p.index && r.label == p.label && r.type == p.type && r.uuid == p.uuid)
      #expect(r.firstLBA == p.firstLBA && r.lastLBA == p.lastLBA && r.attributes == p.attributes)
      #expect(r.offset == p.offset && r.size == p.size)
    }
    #expect(try table.partition("root-a").index == 2)
    #expect(try table.partition("3").label == "data")
    #expect(table.partitions[0].typeName == "esp")
    #expect(throws: DiskError.self) { try table.partition("nope") }
  }

  @Test func sector512() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir, sectorSize: 512)
    let verify = try runTool("sgdisk", package: "gdisk", ["-v", image.path])
    #expect(verify.output.contains("No problems found"))
    try checkSfdisk(image, sectorSize: 512)
    try checkReader(image, sectorSize: 512)
    let attrs = try runTool("sgdisk", package: "gdisk", ["-A", "2:show", image.path])
    #expect(attrs.output.contains("59"))
  }

  @Test func sector4096() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir, sectorSize: 4096, diskSize: 64 << 20)
    #expect(image.layout.firstUsableLBA == 6)
    // sfdisk 2.38 has no --sector-size; fdisk -b 4096 reads the file as a 4Kn disk.
    let fdisk = try runTool(
      "fdisk", package: "fdisk",
      ["-b", "4096", "-l", "-o", "Device,Start,End,Sectors,Type-UUID,UUID,Name", image.path])
    #expect(fdisk.output.contains("Disk identifier: \(image.layout.diskGUID.uppercased)"))
    let rows = fdisk.output.split(separator: "\n").filter { $0.hasPrefix(image.path) }
      .map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
    #expect(rows.count == image.layout.partitions.count)
    for (p, row) in zip(image.layout.partitions, rows) where row.count == 7 {
      #expect(row[1] == String(p.firstLBA) && row[2] == String(p.lastLBA))
      #expect(row[3] == String(p.lastLBA - p.firstLBA + 1))
      #expect(row[4] == p.type.uppercased && row[5] == p.uuid.uppercased && row[6] == p.label)
    }
    #expect(fdisk.output.contains("Disklabel type: gpt"))
    #expect(fdisk.output.contains("Sector size (logical/physical): 4096 bytes"))
    for word in ["mismatch", "corrupt", "invalid", "Warning"] {
      #expect(!fdisk.output.contains(word), "\(fdisk.output)")
    }
    try checkReader(image, sectorSize: 4096)
    // Nothing at byte 512 for a 4Kn disk.
    let head = try Data(contentsOf: URL(fileURLWithPath: image.path)).prefix(1024)
    #expect(head[512..<1024].allSatisfy { $0 == 0 })
  }

  @Test func autoSizedDiskVerifies() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir, diskSize: nil)
    #expect(image.layout.diskSize % 4096 == 0)
    let verify = try runTool("sgdisk", package: "gdisk", ["-v", image.path])
    #expect(verify.output.contains("No problems found"))
  }

  @Test func corruptionIsDetected() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir)
    let fd = open(image.path, O_RDWR)
    defer { close(fd) }
    // Flip a byte of the disk GUID in the primary header (LBA 1, offset 56).
    var byte: UInt8 = 0
    _ = pread(fd, &byte, 1, 512 + 56)
    var flipped = byte ^ 0xFF
    _ = pwrite(fd, &flipped, 1, 512 + 56)
    do {
      _ = try GPTReader.read(path: image.path)
      Issue.record("corrupted header was accepted")
    } catch let error as DiskError {
      #expect(error.description.contains("primary header at LBA 1: header CRC32 mismatch"))
    }
    let recovered = try GPTReader.read(path: image.path, recoverFromBackup: true)
    #expect(recovered.partitions.map(\.label) == ["esp", "root-a", "data"])
    #expect(recovered.warnings.contains { $0.contains("using the backup GPT") })
    _ = pwrite(fd, &byte, 1, 512 + 56)
    #expect(throws: Never.self) { try GPTReader.read(path: image.path) }
    // Corrupt a partition name in the backup entry array.
    let backupEntries = off_t(image.layout.backupEntriesLBA * 512 + 60)
    _ = pwrite(fd, &flipped, 1, backupEntries)
    do {
      _ = try GPTReader.read(path: image.path)
      Issue.record("corrupted backup array was accepted")
    } catch let error as DiskError {
      #expect(error.description.contains("backup header"))
      #expect(error.description.contains("partition entry array CRC32 mismatch"))
    }
    let notGPT = dir.file("zero.img")
    _ = FileManager.default.createFile(atPath: notGPT, contents: Data(count: 65536))
    #expect(throws: DiskError.self) { try GPTReader.read(path: notGPT) }
  }
}
