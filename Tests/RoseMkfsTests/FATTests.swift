import Foundation
import RoseDisk
import RoseTestSupport
import Testing

@testable import RoseMkfs

@Suite struct FATTests {
  func makeTree(_ dir: TempDir) throws -> [FATPartition.File] {
    let fm = FileManager.default
    try fm.createDirectory(
      atPath: dir.file("src/loader/entries"), withIntermediateDirectories: true)
    _ = fm.createFile(
      atPath: dir.file("bootx64.efi"), contents: Data(pseudoRandomBytes(count: 70_000, seed: 7)))
    _ = fm.createFile(
      atPath: dir.file("src/loader/loader.conf"), contents: Data("timeout 3\n".utf8))
    _ = fm.createFile(
      atPath: dir.file("src/loader/entries/a.conf"), contents: Data("title A\n".utf8))
    _ = fm.createFile(
      atPath: dir.file("src/loader/entries/b.conf"), contents: Data("title B\n".utf8))
    return [
      FATPartition.File(source: dir.file("bootx64.efi"), destination: "EFI/BOOT/BOOTX64.EFI"),
      FATPartition.File(source: dir.file("src"), destination: "/"),
    ]
  }

  @Test func buildsCleanDeterministicESP() throws {
    let dir = try TempDir()
    let files = try makeTree(dir)
    let fat = FATPartition(
      size: 34 * mib, label: "esp", volumeID: FATPartition.volumeID(seed: "s", label: "esp"),
      sourceDateEpoch: 1_700_000_000)
    let first = try fat.build(files: files, in: dir.path)
    try runTool("fsck.fat", package: "dosfstools", ["-n", first])
    let listing = try runTool("mdir", package: "mtools", ["-i", first, "-/", "-b", "::/"])
    for name in [
      "::/EFI/BOOT/BOOTX64.EFI", "::/loader/loader.conf", "::/loader/entries/a.conf",
      "::/loader/entries/b.conf",
    ] {
      #expect(listing.output.contains(name), "\(listing.output)")
    }
    let extracted = dir.file("out.efi")
    try runTool("mcopy", package: "mtools", ["-i", first, "::/EFI/BOOT/BOOTX64.EFI", extracted])
    #expect(try filesEqual(extracted, dir.file("bootx64.efi")))
    let info = try runTool("minfo", package: "mtools", ["-i", first, "::"])
    let id = String(format: "%08X", FATPartition.volumeID(seed: "s", label: "esp"))
    #expect(
      info.output.uppercased().contains(id.prefix(4) + "-" + id.suffix(4))
        || info.output.uppercased().contains(id))

    // Change the source mtimes and build again: the bytes must not change.
    try FileManager.default.setAttributes(
      [.modificationDate: Date(timeIntervalSince1970: 1_000_000)],
      ofItemAtPath: dir.file("bootx64.efi"))
    let second = try fat.build(files: files, in: dir.path)
    #expect(first != second)
    #expect(try filesEqual(first, second))
    unlink(first)
    unlink(second)
  }

  @Test func fourKSectorsAndErrors() throws {
    let dir = try TempDir()
    let files = try makeTree(dir)
    let fat = FATPartition(
      size: 64 * mib, label: "ESP", volumeID: 0x1234_5678, sourceDateEpoch: 0, sectorSize: 4096)
    let path = try fat.build(files: files, in: dir.path)
    try runTool("fsck.fat", package: "dosfstools", ["-n", path])
    unlink(path)
    #expect(throws: DiskError.self) {
      try FATPartition(size: 8 * mib, label: "much-too-long-label", volumeID: 1).build(
        files: files, in: dir.path)
    }
    #expect(throws: DiskError.self) {
      try FATPartition(size: 8 * mib, volumeID: 1).build(
        files: [.init(source: dir.file("missing"), destination: "x")], in: dir.path)
    }
    #expect(
      DiskError.toolMissing(tool: "mcopy", debianPackage: "mtools").description.contains(
        "apt-get install mtools"))
  }

  @Test func fatImageOfAHugeSizeIsAnError() throws {
    let dir = try TempDir()
    #expect(throws: (any Error).self) {
      _ = try FATPartition(size: UInt64(1) << 63, volumeID: 1).build(
        files: [], in: dir.path)
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
  }
}
