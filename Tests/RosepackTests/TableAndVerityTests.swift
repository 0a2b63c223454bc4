import Foundation
import Testing

/// MBR and hybrid tables, bootloader blobs, signature wiping, per-partition and split sparse
/// images and verity sets, each checked with tools rosepack does not contain (sfdisk, genimage,
/// bmaptool, simg2img, blkid, veritysetup, openssl).
@Suite struct TableAndVerityTests {
  /// A scratch directory with the inputs of the Raspberry Pi port: a u-boot blob, a 32 MiB
  /// boot image and a 64 MiB root image (patterned, so that misplaced bytes show).
  static func inputs(_ name: String) throws -> String {
    let dir = try CLI.temporaryDirectory(name)
    try FileManager.default.createDirectory(
      atPath: dir + "/input", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(
      atPath: dir + "/root", withIntermediateDirectories: true)
    try Data((0..<20000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }).write(
      to: URL(fileURLWithPath: dir + "/input/u-boot.bin"))
    for (file, size) in [("boot.vfat", 32 << 20), ("rootfs.ext4", 64 << 20)] {
      var data = Data(count: size)
      for i in stride(from: 0, to: size, by: 1 << 20) { data[i] = UInt8(truncatingIfNeeded: i >> 20) | 1 }
      try data.write(to: URL(fileURLWithPath: dir + "/input/" + file))
    }
    return dir
  }

  /// The recipe of the port: `table` is mbr or hybrid, the blob goes to `blobOffset`.
  static func recipe(table: String, blobOffset: String) -> String {
    """
    [Image]
    Name=rpi
    PartitionTable=\(table)

    [Partition]
    Label=u-boot
    InPartitionTable=no
    Format=raw
    CopyBlocks=input/u-boot.bin
    Offset=\(blobOffset)

    [Partition]
    Type=F
    Label=boot
    Format=raw
    CopyBlocks=input/boot.vfat
    MBRType=0x0c
    Bootable=yes
    Offset=4M
    SizeMinBytes=32M
    SizeMaxBytes=32M

    [Partition]
    Type=L
    Label=rootfs
    Format=raw
    CopyBlocks=input/rootfs.ext4
    \(table == "mbr" ? "MBRType=linux" : "")
    SizeMinBytes=64M
    SizeMaxBytes=64M

    """
  }

  /// genimage's config for the same layout (its buildroot Raspberry Pi config, with the blob,
  /// fixed UUIDs and disk signature so that the tables can be compared byte for byte).
  static func genimageConfig(table: String, blobOffset: String, signature: String, disk: [String: Any])
    -> String
  {
    let parts = (disk["partitions"] as? [[String: Any]]) ?? []
    func uuid(_ i: Int) -> String {
      guard i < parts.count, let u = parts[i]["uuid"] as? String else { return "" }
      return "    partition-uuid = \"\(u.lowercased())\"\n"
    }
    let hybrid = table == "hybrid"
    return """
      image sdcard.img {
        hdimage {
          partition-table-type = "\(table)"
          disk-signature = \(signature)
      \(hybrid ? "    disk-uuid = \"\((disk["id"] as? String ?? "").lowercased())\"" : "")
        }
        partition u-boot {
          in-partition-table = false
          image = "u-boot.bin"
          offset = \(blobOffset)
        }
        partition boot {
          partition-type = 0xC
      \(hybrid ? "    partition-type-uuid = \"F\"\n" + uuid(0) : "")
          bootable = "true"
          image = "boot.vfat"
          offset = 4M
        }
        partition rootfs {
      \(hybrid ? "    partition-type-uuid = \"L\"\n" + uuid(1) : "    partition-type = 0x83")
          image = "rootfs.ext4"
        }
      }

      """
  }

  static func sfdiskJSON(_ image: String, nested: Bool = false) throws -> [String: Any] {
    let r = try CLI.tool("sfdisk", (nested ? ["--label-nested", "dos"] : []) + ["--json", image])
    guard r.status == 0,
      let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
      let table = json["partitiontable"] as? [String: Any]
    else { throw TestFailure("sfdisk --json \(image): \(r.stderr)") }
    return table
  }

  /// The partition fields sfdisk reports, without the device node names.
  static func fields(_ table: [String: Any]) -> [String] {
    ((table["partitions"] as? [[String: Any]]) ?? []).map { p in
      p.filter { $0.key != "node" }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        .joined(separator: " ")
    }
  }

  func build(table: String, blobOffset: String) throws -> (dir: String, image: String) {
    let dir = try Self.inputs("table-\(table)")
    try Self.recipe(table: table, blobOffset: blobOffset).write(
      toFile: dir + "/rpi.conf", atomically: false, encoding: .utf8)
    let r = try CLI.rosepack(["build", dir + "/rpi.conf", "-o", dir + "/out", "-q"])
    guard r.status == 0 else { throw TestFailure("build failed: \(r.stderr)") }
    return (dir, dir + "/out/rpi_0.img")
  }

  /// Builds the port with genimage when it is installed; nil (with a printed reason) if not.
  func genimage(dir: String, table: String, blobOffset: String, ours: [String: Any]) throws
    -> String?
  {
    guard (try? CLI.tool("genimage", ["--version"])) != nil else {
      print("skipped the genimage comparison: genimage is not installed (scripts/install-deps.sh)")
      return nil
    }
    let dos = table == "hybrid" ? try Self.sfdiskJSON(dir + "/out/rpi_0.img", nested: true) : ours
    let signature = (dos["id"] as? String) ?? "0"
    try Self.genimageConfig(table: table, blobOffset: blobOffset, signature: signature, disk: ours)
      .write(toFile: dir + "/genimage.cfg", atomically: false, encoding: .utf8)
    let r = try CLI.tool(
      "genimage",
      [
        "--config", dir + "/genimage.cfg", "--inputpath", dir + "/input", "--outputpath",
        dir + "/gi", "--rootpath", dir + "/root", "--tmppath", dir + "/gitmp",
      ])
    guard r.status == 0 else { throw TestFailure("genimage failed: \(r.stderr)") }
    return dir + "/gi/sdcard.img"
  }

  @Test func mbrMatchesGenimage() throws {
    let (dir, image) = try build(table: "mbr", blobOffset: "8K")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let ours = try Self.sfdiskJSON(image)
    #expect(ours["label"] as? String == "dos")
    #expect(
      Self.fields(ours) == [
        "bootable=1 size=65536 start=8192 type=c", "size=131072 start=73728 type=83",
      ])
    // The blob sits at 8 KiB byte for byte.
    #expect(
      try CLI.slice(image, offset: 8192, length: 20000)
        == CLI.bytes(dir + "/input/u-boot.bin"))
    #expect(try CLI.slice(image, offset: 4 << 20, length: 32 << 20) == CLI.bytes(dir + "/input/boot.vfat"))
    guard let theirs = try genimage(dir: dir, table: "mbr", blobOffset: "8K", ours: ours) else {
      return
    }
    let reference = try Self.sfdiskJSON(theirs)
    #expect(Self.fields(ours) == Self.fields(reference))
    #expect(ours["id"] as? String == reference["id"] as? String)
    // Signature, entries with their CHS fields, 0x55AA: the same bytes.
    #expect(try CLI.slice(image, offset: 440, length: 72) == CLI.slice(theirs, offset: 440, length: 72))
    #expect(try CLI.slice(image, offset: 8192, length: 20000) == CLI.slice(theirs, offset: 8192, length: 20000))
  }

  @Test func hybridMatchesGenimage() throws {
    let (dir, image) = try build(table: "hybrid", blobOffset: "32K")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let ours = try Self.sfdiskJSON(image)
    #expect(ours["label"] as? String == "gpt")
    let dos = try Self.sfdiskJSON(image, nested: true)
    #expect(Self.fields(dos) == ["bootable=1 size=65536 start=8192 type=c", "size=33 start=1 type=ee"])
    #expect(try CLI.slice(image, offset: 32768, length: 20000) == CLI.bytes(dir + "/input/u-boot.bin"))
    #expect(try CLI.tool("sgdisk", ["-v", image]).stdout.contains("No problems found"))
    guard let theirs = try genimage(dir: dir, table: "hybrid", blobOffset: "32K", ours: ours)
    else { return }
    #expect(Self.fields(ours) == Self.fields(try Self.sfdiskJSON(theirs)))
    #expect(Self.fields(dos) == Self.fields(try Self.sfdiskJSON(theirs, nested: true)))
    #expect(try CLI.slice(image, offset: 440, length: 72) == CLI.slice(theirs, offset: 440, length: 72))
  }

  @Test func aBlobOverTheGPTIsRefusedWithBothRanges() throws {
    let dir = try Self.inputs("table-overlap")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Self.recipe(table: "gpt", blobOffset: "8K").replacingOccurrences(of: "MBRType=0x0c\n", with: "")
      .write(toFile: dir + "/rpi.conf", atomically: false, encoding: .utf8)
    let r = try CLI.rosepack(["build", dir + "/rpi.conf", "-o", dir + "/out", "-q"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("blob 'u-boot' at bytes [8192, 28192) overlaps the primary GPT at bytes [512, 17408)"), "\(r.stderr)")
  }

  @Test func aFifthMBRPartitionIsRefusedByName() throws {
    let dir = try CLI.temporaryDirectory("table-five")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var text = "[Image]\nName=five\nPartitionTable=mbr\n"
    for i in 1...5 { text += "[Partition]\nType=L\nLabel=p\(i)\nSizeMinBytes=1M\nSizeMaxBytes=1M\n" }
    try text.write(toFile: dir + "/five.conf", atomically: false, encoding: .utf8)
    let r = try CLI.rosepack(["build", dir + "/five.conf", "-o", dir + "/out", "-q"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("partition 'p5' would be primary partition 5"), "\(r.stderr)")
  }
}
