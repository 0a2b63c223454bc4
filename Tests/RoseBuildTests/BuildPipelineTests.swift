import Foundation
import RoseFS
import RoseIngest
import RoseRecipe
import RoseTestSupport
import XCTest

@testable import RoseBuild

/// The pipeline as a library: A/B slot rules and error attribution, without the binary.
final class BuildPipelineTests: XCTestCase {
  /// Writes `recipe` (and `files`) into a fresh directory and loads it.
  func load(_ recipe: String, files: [String: [UInt8]] = [:], in dir: TempDir) throws -> Recipe {
    for (name, bytes) in files {
      try Data(bytes).write(to: URL(fileURLWithPath: dir.file(name)))
    }
    let path = dir.file("test.conf")
    try Data(recipe.utf8).write(to: URL(fileURLWithPath: path))
    return try RecipeLoader.load(path: path)
  }

  /// Fills and packs partition `label` of `recipe` into a scratch volume, as `build` does for an
  /// automatically sized partition; returns the report, the slot trees and the image file.
  func pack(_ recipe: Recipe, label: String, in dir: TempDir) throws -> (
    report: BuildReport, slots: [Subvolume], image: String
  ) {
    guard let spec = recipe.partitions.first(where: { $0.label == label }) else {
      throw TestFailure("no partition \(label)")
    }
    let pipeline = try BuildPipeline(
      recipe: recipe, outputDirectory: dir.file("out"), progress: SilentProgress())
    let file = try pipeline.createFile(dir.file("volume.rosefs"))
    defer { close(file.fd) }
    let packed = try pipeline.buildVolume(
      spec, into: ImageFile(fd: file.fd, path: file.path), size: nil)
    return (packed.report, packed.subvolumes, file.path)
  }

  func child(_ root: Inode, _ path: String) -> Inode? {
    var node = root
    for component in path.split(separator: "/") {
      guard let next = node.children[Name(Array(component.utf8))] else { return nil }
      node = next
    }
    return node
  }

  func read(_ image: String, _ path: String, slot: String) throws -> String {
    let fd = open(image, O_RDONLY)
    guard fd >= 0 else { throw TestFailure("cannot open \(image)") }
    defer { close(fd) }
    let reader = try ImageReader(image: ImageFile(fd: fd, path: image))
    let head = try reader.headIndex(named: slot)
    let ino = try reader.lookup(path, head: head)
    return String(decoding: try reader.readAll(ino: ino, head: head), as: UTF8.self)
  }

  // MARK: A/B rules

  func testSharedLayersAreStoredOnceAndPerSlotLayersApartAfterTheSplit() throws {
    let dir = try TempDir(prefix: "rosebuild")
    let big = (0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    let recipe = try load(
      """
      [Image]
      Name=ab
      SourceDateEpoch=1700000000

      [Partition]
      Type=root
      Label=root
      Format=rosefs
      Slots=a b
      File=big.bin:/usr/big.bin
      Slot=a
      Inline=/etc/slot:a\\n
      Slot=b
      Inline=/etc/slot:b\\n
      Slot=both
      Inline=/etc/after:shared\\n

      """, files: ["big.bin": big], in: dir)
    let (report, slots, image) = try pack(recipe, label: "root", in: dir)
    XCTAssertEqual(slots.map(\.name), ["a", "b"])
    let (a, b) = (slots[0].root, slots[1].root)
    // Rule 1-2: the layer before the first per-slot step is in A, and B is a snapshot of it.
    let bigA = try XCTUnwrap(child(a, "usr/big.bin"))
    XCTAssertTrue(bigA === child(b, "usr/big.bin"), "the shared file is one inode in both slots")
    // Rule 3: per-slot layers go to their slot only; a Slot=both file after the split is linked.
    XCTAssertFalse(try XCTUnwrap(child(a, "etc/slot")) === child(b, "etc/slot"))
    XCTAssertTrue(try XCTUnwrap(child(a, "etc/after")) === child(b, "etc/after"))
    // What the volume holds, read back: each slot sees its own file.
    XCTAssertEqual(try read(image, "/etc/slot", slot: "a"), "a\n")
    XCTAssertEqual(try read(image, "/etc/slot", slot: "b"), "b\n")
    XCTAssertEqual(try read(image, "/etc/after", slot: "b"), "shared\n")
    // Nothing large is private to one slot: the 64 KiB file is stored once.
    let blockBytes = UInt64(RoseLayout.blockSize)
    XCTAssertEqual(report.privateBlocksPerHead.count, 2)
    for privateBlocks in report.privateBlocksPerHead {
      XCTAssertLessThan(privateBlocks * blockBytes, 64 << 10, "\(report.privateBlocksPerHead)")
    }
  }

  func testSlotBEmptyGetsOnlyItsOwnLayers() throws {
    let dir = try TempDir(prefix: "rosebuild")
    let recipe = try load(
      """
      [Image]
      Name=ab
      SourceDateEpoch=1700000000

      [Partition]
      Type=root
      Label=root
      Format=rosefs
      Slots=a b
      SlotB=empty
      Inline=/etc/common:x\\n
      Slot=b
      Inline=/etc/only-b:y\\n

      """, in: dir)
    let (_, slots, _) = try pack(recipe, label: "root", in: dir)
    XCTAssertNotNil(child(slots[0].root, "etc/common"))
    XCTAssertNil(child(slots[0].root, "etc/only-b"))
    XCTAssertNil(child(slots[1].root, "etc/common"), "Slot=both goes to A alone")
    XCTAssertNotNil(child(slots[1].root, "etc/only-b"))
  }

  func testSlotOwnershipCopiesASharedFileForThatSlotOnly() throws {
    let dir = try TempDir(prefix: "rosebuild")
    let data = (0..<(20 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 13) }
    let recipe = try load(
      """
      [Image]
      Name=ab
      SourceDateEpoch=1700000000

      [Partition]
      Type=root
      Label=root
      Format=rosefs
      Slots=a b
      File=tool:/usr/bin/tool
      Slot=b
      Inline=/etc/b:b\\n
      Ownership=fs_b

      """, files: ["tool": data, "fs_b": Array("usr/bin/tool 0 3003 0750\n".utf8)], in: dir)
    let (_, slots, image) = try pack(recipe, label: "root", in: dir)
    let toolA = try XCTUnwrap(child(slots[0].root, "usr/bin/tool"))
    let toolB = try XCTUnwrap(child(slots[1].root, "usr/bin/tool"))
    XCTAssertFalse(toolA === toolB, "slot B's owner change made its own inode")
    XCTAssertEqual(toolA.gid, 0)
    XCTAssertEqual(toolB.gid, 3003)
    XCTAssertEqual(toolB.permissions, 0o750)
    // The copy holds the same bytes.
    let expected = String(decoding: data, as: UTF8.self)
    XCTAssertEqual(try read(image, "/usr/bin/tool", slot: "a"), expected)
    XCTAssertEqual(try read(image, "/usr/bin/tool", slot: "b"), expected)
  }

  // MARK: error attribution

  func testABrokenTarballNamesItsPartitionAndKeepsTheIngestError() throws {
    let dir = try TempDir(prefix: "rosebuild")
    // A tar header block whose checksum field is wrong: libarchive refuses it.
    var header = [UInt8](repeating: 0, count: 512)
    for (i, byte) in "etc/passwd".utf8.enumerated() { header[i] = byte }
    for (i, byte) in "0000644\0".utf8.enumerated() { header[100 + i] = byte }
    for (i, byte) in "00000000017\0".utf8.enumerated() { header[124 + i] = byte }
    for (i, byte) in "9999999\0".utf8.enumerated() { header[148 + i] = byte }
    header[156] = UInt8(ascii: "0")
    for (i, byte) in "ustar\u{0}00".utf8.enumerated() { header[257 + i] = byte }
    let recipe = try load(
      """
      [Image]
      Name=broken

      [Partition]
      Type=root
      Label=root-a
      Format=rosefs
      Inline=/etc/ok:fine\\n

      [Partition]
      Type=root
      Label=root-b
      Format=rosefs
      Tarball=broken.tar:/

      """, files: ["broken.tar": header + [UInt8](repeating: 0, count: 1024)], in: dir)
    do {
      _ = try BuildPipeline(
        recipe: recipe, outputDirectory: dir.file("out"), progress: SilentProgress()
      ).run()
      XCTFail("a broken tarball built")
    } catch let error as BuildFailure {
      XCTAssertEqual(error.partitionLabel, "root-b")
      guard case .layer(let label, let at, .ingest(let cause)) = error else {
        return XCTFail("not a layer failure with an IngestError: \(error)")
      }
      XCTAssertEqual(label, "root-b")
      XCTAssertEqual(at.line, 14, "the Tarball= line")
      switch cause {
      case .notAnArchive(let input, _), .corruptArchive(let input, _, _, _):
        XCTAssertTrue(input.hasSuffix("broken.tar"), "\(cause)")
      default:
        XCTFail("unexpected ingest error \(cause)")
      }
    }
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: dir.file("out")), [],
      "a failed build publishes nothing")
  }

  func testContentLargerThanItsMaximumIsDoesNotFitWithTheLargestInput() throws {
    let dir = try TempDir(prefix: "rosebuild")
    let big = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 >> 12 | 1) }
    let recipe = try load(
      """
      [Image]
      Name=small

      [Partition]
      Type=root
      Label=root
      Format=rosefs
      SizeMaxBytes=2M
      File=big.bin:/big.bin

      """, files: ["big.bin": big], in: dir)
    let pipeline = try BuildPipeline(
      recipe: recipe, outputDirectory: dir.file("out"), progress: SilentProgress())
    XCTAssertThrowsError(try pipeline.run()) { error in
      guard let failure = error as? BuildFailure,
        case .doesNotFit(let label, _, let needed, let available, let inputs) = failure
      else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(label, "root")
      XCTAssertEqual(available, 2 << 20)
      XCTAssertGreaterThan(needed, available)
      XCTAssertEqual(inputs.first?.name, "big.bin")
      XCTAssertEqual(inputs.first?.bytes, 3 << 20)
    }
  }

  func testAnOccupiedOutputPathIsAValueNotAFlagMessage() throws {
    let dir = try TempDir(prefix: "rosebuild")
    let recipe = try load(
      "[Image]\nName=x\n\n[Partition]\nType=root\nLabel=root\nFormat=rosefs\n", in: dir)
    let file = dir.file("file")
    FileManager.default.createFile(atPath: file, contents: Data())
    XCTAssertThrowsError(
      try BuildPipeline(recipe: recipe, outputDirectory: file, progress: SilentProgress())
    ) { error in
      guard case .outputOccupied(let path, let kind, .directory)? = error as? BuildFailure else {
        return XCTFail("\(error)")
      }
      XCTAssertEqual(path, file)
      XCTAssertEqual(kind, "a regular file")
      XCTAssertFalse("\(error)".contains("-o"), "the library does not name CLI flags")
    }
  }

  // MARK: libarchive warnings

  func testArchiveWarningsAreKeptOnceEachWithArchiveAndEntry() throws {
    let dir = try TempDir(prefix: "rosebuild")
    // A Slot=both tarball after the split is read once per slot: its warning is reported once.
    let recipe = try load(
      """
      [Image]
      Name=warn
      SourceDateEpoch=1700000000

      [Partition]
      Type=root
      Label=root
      Format=rosefs
      Slots=a b
      Slot=b
      Inline=/etc/b:b\\n
      Slot=both
      Tarball=warn.tar:/

      """, files: ["warn.tar": WarningTarball.bytes(entry: "etc/motd")], in: dir)
    let pipeline = try BuildPipeline(
      recipe: recipe, outputDirectory: dir.file("out"), progress: SilentProgress())
    let summary = try pipeline.run()
    XCTAssertEqual(pipeline.inputWarnings.count, 1, "\(pipeline.inputWarnings)")
    let warning = try XCTUnwrap(pipeline.inputWarnings.first)
    XCTAssertTrue(warning.archive.hasSuffix("warn.tar"))
    XCTAssertEqual(warning.entry, Array("etc/motd".utf8))
    XCTAssertTrue(warning.message.contains("malformed pax"), warning.message)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let json = String(decoding: try encoder.encode(summary), as: UTF8.self)
    XCTAssertTrue(json.contains(#""inputWarnings":[{"archive":"#), json)
    XCTAssertTrue(json.contains(#""entry":"etc\/motd""#), json)
  }
}
