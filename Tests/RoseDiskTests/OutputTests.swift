import Foundation
import RoseTestSupport
import Testing

@testable import RoseDisk

@Suite struct OutputTests {
  @Test func rawImageIsSparse() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir)
    var st = stat()
    #expect(stat(image.path, &st) == 0)
    // Allocated blocks stay far below the 24 MiB apparent size.
    #expect(UInt64(st.st_blocks) * 512 < 4 << 20)
    #expect(UInt64(st.st_size) == image.layout.diskSize)
  }

  @Test func copyFileIntoPartition() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir)
    let source = dir.file("boot.img")
    let payload =
      pseudoRandomBytes(count: 300_000, seed: 9) + [UInt8](repeating: 0, count: 8192) + [1, 2, 3]
    _ = FileManager.default.createFile(atPath: source, contents: Data(payload))
    let fd = open(image.path, O_RDWR)
    defer { close(fd) }
    let esp = image.layout.partitions[0]
    let copied = try RawImageOutput.copyFile(
      source, into: fd, imagePath: image.path, offset: esp.offset + mib, capacity: mib, label: "esp"
    )
    #expect(copied == UInt64(payload.count))
    let data = try Data(contentsOf: URL(fileURLWithPath: image.path))
    let start = Int(esp.offset + mib)
    #expect([UInt8](data[start..<(start + payload.count)]) == payload)
    #expect(
      throws: DiskError.partitionDoesNotFit(
        label: "esp", needed: UInt64(payload.count), available: 4096)
    ) {
      try RawImageOutput.copyFile(
        source, into: fd, imagePath: image.path, offset: esp.offset, capacity: 4096, label: "esp")
    }
  }

  @Test func bmapCopyReproducesImage() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir)
    let bmap = dir.file("disk.bmap")
    let mapped = try BmapOutput().write(rawImage: image.path, map: image.map, to: bmap)
    #expect(mapped > 0 && mapped < image.layout.diskSize / 4096)
    let text = try String(contentsOfFile: bmap, encoding: .utf8)
    #expect(text.contains("<bmap version=\"2.0\">"))
    #expect(text.contains("<BlockSize> 4096 </BlockSize>"))
    #expect(text.contains("<ImageSize> \(image.layout.diskSize) </ImageSize>"))
    #expect(text.contains("<MappedBlocksCount> \(mapped) </MappedBlocksCount>"))
    let out = dir.file("copy.raw")
    try runTool("bmaptool", package: "bmap-tools", ["copy", "--bmap", bmap, image.path, out])
    #expect(try filesEqual(out, image.path))

    // A changed byte inside a mapped range must fail bmaptool's range checksum.
    let tampered = dir.file("tampered.img")
    try FileManager.default.copyItem(atPath: image.path, toPath: tampered)
    let fd = open(tampered, O_RDWR)
    var byte: UInt8 = 0x5A
    _ = pwrite(fd, &byte, 1, off_t(image.layout.partitions[1].offset + 100))
    close(fd)
    let bad = try runTool(
      "bmaptool", package: "bmap-tools", ["copy", "--bmap", bmap, tampered, dir.file("bad.raw")],
      expectSuccess: false)
    #expect(bad.status != 0)
    #expect(bad.output.contains("checksum mismatch"))

    // A changed bmap file must fail the BmapFileChecksum.
    let editedBmap = dir.file("edited.bmap")
    try text.replacingOccurrences(of: "<BlockMap>", with: "<BlockMap> ").write(
      toFile: editedBmap, atomically: true, encoding: .utf8)
    let badBmap = try runTool(
      "bmaptool", package: "bmap-tools",
      ["copy", "--bmap", editedBmap, image.path, dir.file("bad2.raw")], expectSuccess: false)
    #expect(badBmap.status != 0)
    #expect(badBmap.output.contains("checksum mismatch for bmap file"))
  }

  @Test func androidSparseExpandsToImage() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir)
    let simg = dir.file("disk.simg")
    let summary = try AndroidSparseOutput().write(rawImage: image.path, map: image.map, to: simg)
    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: simg)))
    #expect(data.loadLE(UInt32.self, at: 0) == 0xED26_FF3A)
    #expect(data.loadLE(UInt16.self, at: 4) == 1)
    #expect(data.loadLE(UInt16.self, at: 6) == 0)
    #expect(data.loadLE(UInt16.self, at: 8) == 28)
    #expect(data.loadLE(UInt16.self, at: 10) == 12)
    #expect(data.loadLE(UInt32.self, at: 12) == 4096)
    #expect(data.loadLE(UInt32.self, at: 16) == UInt32(image.layout.diskSize / 4096))
    #expect(data.loadLE(UInt32.self, at: 20) == summary.chunks)
    #expect(data.loadLE(UInt32.self, at: 24) == 0)
    #expect(summary.fillBlocks >= 3)  // 0xA5 blocks and the used zero block
    #expect(
      summary.rawBlocks + summary.fillBlocks + summary.dontCareBlocks == UInt64(summary.totalBlocks)
    )
    // Walk the chunks: the sum of chunk_sz equals total_blks and no CRC chunk is present.
    var offset = 28
    var blocks: UInt64 = 0
    var types = Set<UInt16>()
    for _ in 0..<summary.chunks {
      let type = data.loadLE(UInt16.self, at: offset)
      types.insert(type)
      blocks += UInt64(data.loadLE(UInt32.self, at: offset + 4))
      offset += Int(data.loadLE(UInt32.self, at: offset + 8))
    }
    #expect(offset == data.count)
    #expect(blocks == UInt64(summary.totalBlocks))
    #expect(types == [0xCAC1, 0xCAC2, 0xCAC3])
    let out = dir.file("expanded.raw")
    try runTool("simg2img", package: "android-sdk-libsparse-utils", [simg, out])
    #expect(try filesEqual(out, image.path))

    let withCRC = dir.file("crc.simg")
    let crcSummary = try AndroidSparseOutput(includeCRC: true, useFill: false).write(
      rawImage: image.path, map: image.map, to: withCRC)
    #expect(crcSummary.fillBlocks == 0)
    let crcOut = dir.file("crc.raw")
    try runTool("simg2img", package: "android-sdk-libsparse-utils", [withCRC, crcOut])
    #expect(try filesEqual(crcOut, image.path))
    let crcData = [UInt8](try Data(contentsOf: URL(fileURLWithPath: withCRC)))
    #expect(crcData.loadLE(UInt32.self, at: 24) == crcSummary.checksum)
    #expect(crcData.loadLE(UInt16.self, at: crcData.count - 16) == 0xCAC4)
    // Cross-check the checksum with zlib's CRC-32 over the expanded image (via python3).
    let python = try runTool(
      "python3", package: "python3",
      ["-c", "import zlib,sys; print(zlib.crc32(open(sys.argv[1],'rb').read()))", image.path])
    #expect(
      python.output.trimmingCharacters(in: .whitespacesAndNewlines) == String(crcSummary.checksum))
  }

  @Test func sparsePadsPartialLastBlock() throws {
    let dir = try TempDir()
    let layout = try DiskLayout.plan(diskSize: 8 * mib + 512, diskGUID: .zero, partitions: [])
    let path = dir.file("odd.img")
    let file = try RawImageOutput.create(path: path, size: layout.diskSize)
    try GPTWriter.write(layout, to: file.fd, path: path)
    try file.commit()
    let summary = try AndroidSparseOutput().write(
      rawImage: path, map: layout.tableMap, to: dir.file("odd.simg"))
    #expect(summary.totalBlocks == 2049)
    #expect(summary.paddingBytes == 3584)
    let out = dir.file("odd.raw")
    try runTool("simg2img", package: "android-sdk-libsparse-utils", [dir.file("odd.simg"), out])
    let expanded = try Data(contentsOf: URL(fileURLWithPath: out))
    let original = try Data(contentsOf: URL(fileURLWithPath: path))
    #expect(expanded.count == original.count + 3584)
    #expect(expanded.prefix(original.count) == original)
  }

  @Test func zstdDecompressesToImage() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir)
    let zst = dir.file("disk.img.zst")
    try ZstdOutput(level: 3).write(rawImage: image.path, map: image.map, to: zst)
    try runTool("zstd", package: "zstd", ["-q", "-t", zst])
    let out = dir.file("decompressed.raw")
    try runTool("zstd", package: "zstd", ["-q", "-d", "-f", zst, "-o", out])
    #expect(try filesEqual(out, image.path))
    let info = try runTool("zstd", package: "zstd", ["-lv", zst])
    #expect(info.output.contains("XXH64"))
    // Worker count does not change the bytes.
    let single = dir.file("single.img.zst")
    try ZstdOutput(level: 3, workers: 1).write(rawImage: image.path, map: nil, to: single)
    #expect(try filesEqual(single, zst))
  }

  /// A data frame longer than several 1 MiB jobs, at level 19 and level 3: the same bytes with 1
  /// and 2 workers, `zstd -t` passes, it decompresses to the image, and a decoder limited to a
  /// 2 MiB window reads it (the window cap, `ZstdOutput.maxWindowLog`).
  @Test(arguments: [Int32(19), 3])
  func zstdMultiJobFrameIsDeterministicAndCapped(level: Int32) throws {
    let dir = try TempDir()
    let path = dir.file("text.img")
    // Compressible, not trivially: words from a small vocabulary in a pseudo-random order.
    let words = ["rose", "pack", "flash", "block", "inode", "segment", "zstd", "window", "log"]
    var text = [UInt8]()
    text.reserveCapacity(3 << 20)
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    while text.count < 3 << 20 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      text += Array(words[Int(state >> 59) % words.count].utf8) + [0x20]
    }
    try Data(text).write(to: URL(fileURLWithPath: path))
    let two = dir.file("two.zst")
    let one = dir.file("one.zst")
    try ZstdOutput(level: level, workers: 2).write(rawImage: path, map: nil, to: two)
    try ZstdOutput(level: level, workers: 1).write(rawImage: path, map: nil, to: one)
    #expect(try filesEqual(one, two), "1 and 2 workers give different bytes")
    try runTool("zstd", package: "zstd", ["-q", "-t", two])
    let back = dir.file("back.raw")
    try runTool("zstd", package: "zstd", ["-q", "-d", "-f", "--memory=2MB", two, "-o", back])
    #expect(try filesEqual(back, path))
    let tooSmall = try runTool(
      "zstd", package: "zstd", ["-q", "-t", "--memory=1MB", two], expectSuccess: false)
    #expect(tooSmall.status != 0, "the window is 2 MiB, not smaller: the limit must bite")
  }

  @Test func splitFilesMatchPartitions() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir)
    let paths = try SplitOutput().write(
      rawImage: image.path, partitions: image.layout.partitions, map: image.map,
      directory: dir.path, baseName: "disk")
    #expect(
      paths.map { URL(fileURLWithPath: $0).lastPathComponent } == [
        "disk.esp.img", "disk.root-a.img", "disk.data.img",
      ])
    let whole = try Data(contentsOf: URL(fileURLWithPath: image.path))
    for (p, path) in zip(image.layout.partitions, paths) {
      let part = try Data(contentsOf: URL(fileURLWithPath: path))
      #expect(part == whole[Int(p.offset)..<Int(p.end)])
    }
    #expect(SplitOutput.fileName(baseName: "x", label: "a/b", index: 1) == "x.a_b.img")
    #expect(SplitOutput.fileName(baseName: "x", label: "", index: 4) == "x.part4.img")
  }

  @Test func manifestIsSortedAndComplete() throws {
    let dir = try TempDir()
    let image = try makeSampleImage(in: dir)
    let output = try Manifest.describeOutput(path: image.path, format: "raw")
    #expect(output.sha256 == (try SHA256Stream.file(path: image.path)))
    let sha = try runTool("sha256sum", package: "coreutils", [image.path])
    #expect(sha.output.hasPrefix(output.sha256))
    let manifest = Manifest(layout: image.layout, map: image.map, outputs: [output])
    let path = dir.file("manifest.json")
    try manifest.write(to: path)
    let text = try String(contentsOfFile: path, encoding: .utf8)
    #expect(text.contains("\"diskUUID\" : \"\(image.layout.diskGUID)\""))
    #expect(text.contains("\"typeName\" : \"root-x86-64\""))
    let decoded = try JSONDecoder().decode(
      Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    #expect(decoded == manifest)
    #expect(decoded.partitions[1].usedBytes == mib + 512 + 8192 + 4096)
    #expect(decoded.partitions[0].fill == 1.56)
    // Keys are sorted: "alignment" precedes "diskSize" precedes "partitions".
    let a = text.range(of: "\"alignment\"")
    let d = text.range(of: "\"diskSize\"")
    #expect(a != nil && d != nil && a!.lowerBound < d!.lowerBound)
  }

  @Test func outputsAreDeterministic() throws {
    var digests: [[String]] = []
    for _ in 0..<2 {
      let dir = try TempDir()
      let image = try makeSampleImage(in: dir)
      try BmapOutput().write(rawImage: image.path, map: image.map, to: dir.file("d.bmap"))
      try AndroidSparseOutput().write(rawImage: image.path, map: image.map, to: dir.file("d.simg"))
      try ZstdOutput().write(rawImage: image.path, map: image.map, to: dir.file("d.img.zst"))
      let outputs = try ["disk.img", "d.bmap", "d.simg", "d.img.zst"].map {
        try Manifest.describeOutput(path: dir.file($0), format: $0)
      }
      try Manifest(layout: image.layout, map: image.map, outputs: outputs).write(
        to: dir.file("manifest.json"))
      digests.append(
        try (["manifest.json"] + outputs.map(\.file)).map {
          try SHA256Stream.file(path: dir.file($0))
        })
      // No temporary files are left behind.
      let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
        $0.hasPrefix(".")
      }
      #expect(leftovers.isEmpty)
    }
    #expect(digests[0] == digests[1])
  }
}
