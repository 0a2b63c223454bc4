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

  /// Two staging trees with the same names and bytes, created in opposite orders (so readdir
  /// lists them differently on a filesystem that keeps creation order, as tmpfs does), give the
  /// same image: mcopy gets each directory's names sorted, never in readdir order.
  @Test func sameImageFromStagingTreesMadeInOppositeOrders() throws {
    let dir = try TempDir()
    let fm = FileManager.default
    var images: [String] = []
    for (tree, order) in [("up", Array(0..<12)), ("down", Array((0..<12).reversed()))] {
      for d in order {
        try fm.createDirectory(
          atPath: dir.file("\(tree)/d\(d)"), withIntermediateDirectories: true)
        for f in order {
          _ = fm.createFile(
            atPath: dir.file("\(tree)/d\(d)/f\(f).txt"),
            contents: Data(pseudoRandomBytes(count: 100 + 37 * f, seed: UInt64(d * 100 + f))))
        }
      }
      let fat = FATPartition(size: 16 * mib, volumeID: 7, sourceDateEpoch: 1_700_000_000)
      images.append(
        try fat.build(
          files: [FATPartition.File(source: dir.file(tree), destination: "/")], in: dir.path))
    }
    #expect(try filesEqual(images[0], images[1]))
  }

  /// The names FAT cannot hold, and the ones it can.
  @Test func fatNameRules() {
    for good in ["BOOTX64.EFI", "loader.conf", "Mixed Case.txt", "a.b.c", "x-y_z (1)"] {
      #expect(StagedTree.fatNameProblem(Array(good.utf8)) == nil, "\(good)")
    }
    for (bad, reason) in [
      ("a?b", "the character ?"), ("a:b", "the character :"), ("a\\b", "the character \\"),
      ("trailing.", "trailing dot"), ("trailing ", "trailing dot or space"),
      ("caf\u{e9}", "non-ASCII"), ("tab\there", "control byte"),
      (String(repeating: "n", count: 256), "255 UTF-16"),
    ] {
      let problem = StagedTree.fatNameProblem(Array(bad.utf8))
      #expect(problem?.contains(reason) == true, "\(bad): \(problem ?? "accepted")")
    }
    #expect(StagedTree.fatNameProblem([0x61, 0xFF]) == "not UTF-8: FAT long names are UTF-16")
    #expect(VfatMaker.label("esp") == "ESP")
    #expect(VfatMaker.label("boot-a.b/c longer") == "BOOT-A_B_C ")
    #expect(VfatMaker.label(nil) == "NO NAME")
  }
}
