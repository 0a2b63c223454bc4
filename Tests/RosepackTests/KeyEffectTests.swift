import Foundation
import RoseDisk
import RoseRecipe
import Testing

/// Every recipe key not marked "recorded only" changes what `rosepack build` writes: the test
/// builds a small base recipe and, per key, a variant that sets it, and compares the names and
/// SHA-256 of every output. A key added to the table without a variant here fails the test.
@Suite struct KeyEffectTests {
  /// Where a variant's lines go, and what it is compared against (extra lines that make the
  /// key meaningful, e.g. `Slots=a b` for `DefaultSlot=`).
  struct Variant: Sendable {
    var section: String
    var lines: String
    var baseline: String = ""
    /// `[Output]` lines of both builds (e.g. the split output `SplitName=` names).
    var output: String = ""
    /// `[Image]` lines of both builds (e.g. `PartitionTable=mbr` for `MBRType=`).
    var image: String = ""
  }

  static let variants: [String: Variant] = [
    "Include": Variant(section: "image", lines: "Include=inc.conf"),
    "Name": Variant(section: "image", lines: "Name=other"),
    "Version": Variant(section: "image", lines: "Version=9"),
    "Architecture": Variant(section: "image", lines: "Architecture=arm64"),
    "SectorSize": Variant(section: "image", lines: "SectorSize=4096"),
    "Alignment": Variant(section: "image", lines: "Alignment=4M"),
    "DiskSize": Variant(section: "image", lines: "DiskSize=96M"),
    "Seed": Variant(section: "image", lines: "Seed=another"),
    "SourceDateEpoch": Variant(section: "image", lines: "SourceDateEpoch=1000000"),
    "Define": Variant(section: "image", lines: "Define=X=2"),
    "Type": Variant(section: "root", lines: "Type=usr"),
    "Label": Variant(section: "root", lines: "Label=sys"),
    "UUID": Variant(section: "root", lines: "UUID=8a6c3e3c5a5b4a4e9c621f0a5c2d7e11"),
    "Extend": Variant(section: "end", lines: "[Partition]\nExtend=home\nSizeMinBytes=4M"),
    "Format": Variant(section: "home", lines: "Format=rosefs"),
    "SizeMinBytes": Variant(section: "home", lines: "SizeMinBytes=4M"),
    "SizeMaxBytes": Variant(section: "home", lines: "SizeMaxBytes=8M"),
    "HeadroomBytes": Variant(section: "root", lines: "HeadroomBytes=4M"),
    "HeadroomPercent": Variant(section: "root", lines: "HeadroomPercent=50"),
    "Grow": Variant(section: "home", lines: "Grow=yes"),
    "Offset": Variant(section: "home", lines: "Offset=48M"),
    "PaddingMinBytes": Variant(section: "root", lines: "PaddingMinBytes=2M"),
    "PaddingMaxBytes": Variant(
      section: "root", lines: "PaddingWeight=100\nPaddingMaxBytes=1M", baseline: "PaddingWeight=100"
    ),
    "PaddingWeight": Variant(section: "root", lines: "PaddingWeight=100"),
    "Weight": Variant(section: "home", lines: "Weight=10"),
    "Minimize": Variant(section: "home", lines: "Grow=yes\nMinimize=yes", baseline: "Grow=yes"),
    "Flags": Variant(section: "root", lines: "Flags=0x4"),
    "ReadOnly": Variant(section: "root", lines: "ReadOnly=yes"),
    "NoAuto": Variant(section: "root", lines: "NoAuto=yes"),
    "GrowFileSystem": Variant(section: "root", lines: "GrowFileSystem=yes"),
    "SplitName": Variant(
      section: "root", lines: "SplitName=system", output: "Formats=split"),
    "CopyBlocks": Variant(section: "home", lines: "Format=raw\nCopyBlocks=blob"),
    "Slots": Variant(section: "root", lines: "Slots=a b"),
    "DefaultSlot": Variant(
      section: "root", lines: "Slots=a b\nDefaultSlot=b", baseline: "Slots=a b"),
    "SlotB": Variant(section: "root", lines: "Slots=a b\nSlotB=empty", baseline: "Slots=a b"),
    "Slot": Variant(
      section: "root", lines: "Slots=a b\nSlot=b\nInline=/etc/y:y",
      baseline: "Slots=a b\nInline=/etc/y:y"),
    "Tarball": Variant(section: "root", lines: "Tarball=t.tar"),
    "Directory": Variant(section: "root", lines: "Directory=tree:/opt"),
    "CopyFiles": Variant(section: "root", lines: "CopyFiles=tree:/srv"),
    "File": Variant(section: "root", lines: "File=blob:/blob"),
    "Inline": Variant(section: "root", lines: "Inline=/etc/z:z"),
    "Template": Variant(section: "root", lines: "Template=t.mustache:/etc/t"),
    "Symlink": Variant(section: "root", lines: "Symlink=/l:x"),
    "MakeDirectories": Variant(section: "root", lines: "MakeDirectories=/d"),
    "Remove": Variant(section: "root", lines: "Remove=/etc/x"),
    "Ownership": Variant(section: "root", lines: "Ownership=fs_config"),
    "VolumeLabel": Variant(
      section: "home", lines: "Format=ext4\nVolumeLabel=other", baseline: "Format=ext4"),
    "Compression": Variant(
      section: "home", lines: "Format=squashfs\nCompression=xz", baseline: "Format=squashfs"),
    "CompressionLevel": Variant(
      section: "home",
      lines: "Format=squashfs\nCompression=gzip\nCompressionLevel=1\nFile=t.tar:/t.tar",
      baseline: "Format=squashfs\nCompression=gzip\nFile=t.tar:/t.tar"),
    "MakeFileSystemOptions": Variant(
      section: "home", lines: "Format=ext4\nMakeFileSystemOptions=-I 128", baseline: "Format=ext4"),
    "Formats": Variant(section: "output", lines: "Formats=bmap"),
    "CompressLevel": Variant(
      section: "output", lines: "Formats=zst\nCompressLevel=19", baseline: "Formats=zst"),
    "SparseCrc": Variant(
      section: "output", lines: "Formats=simg\nSparseCrc=yes", baseline: "Formats=simg"),
    "SparseBlockSize": Variant(
      section: "output", lines: "Formats=simg\nSparseBlockSize=8K", baseline: "Formats=simg"),
    "BaseName": Variant(section: "output", lines: "BaseName=renamed"),
    // Tables, blobs, verity, per-partition sparse images (issue 9).
    "PartitionTable": Variant(section: "image", lines: "PartitionTable=mbr"),
    "MBRType": Variant(
      section: "home", lines: "MBRType=0x0c", image: "PartitionTable=mbr"),
    "Bootable": Variant(section: "home", lines: "Bootable=yes"),
    "InPartitionTable": Variant(
      section: "end",
      lines: "[Partition]\nLabel=spl\nInPartitionTable=no\nFormat=raw\nCopyBlocks=blob\n"
        + "Offset=512K"),
    "Verity": Variant(
      section: "end",
      lines: "[Partition]\nExtend=home\nFormat=raw\nCopyBlocks=blob\nVerity=data\n"
        + "VerityMatchKey=h\n[Partition]\nType=usr-verity\nLabel=hv\nVerity=hash\n"
        + "VerityMatchKey=h",
      baseline: "[Partition]\nExtend=home\nFormat=raw\nCopyBlocks=blob\n"
        + "[Partition]\nType=usr-verity\nLabel=hv\nSizeMinBytes=1M\nSizeMaxBytes=1M"),
    "VerityMatchKey": Variant(
      section: "end",
      lines: "[Partition]\nExtend=home\nFormat=raw\nCopyBlocks=blob\nVerity=data\n"
        + "VerityMatchKey=other\n[Partition]\nType=usr-verity\nLabel=hv\nVerity=hash\n"
        + "VerityMatchKey=other",
      baseline: "[Partition]\nExtend=home\nFormat=raw\nCopyBlocks=blob\nVerity=data\n"
        + "VerityMatchKey=h\n[Partition]\nType=usr-verity\nLabel=hv\nVerity=hash\n"
        + "VerityMatchKey=h"),
    "MaxDownloadSize": Variant(
      section: "output", lines: "Formats=simg\nMaxDownloadSize=1M", baseline: "Formats=simg"),
  ]

  func recipe(_ variant: Variant?, baselineOnly: Bool) -> String {
    let extra = variant.map { baselineOnly ? $0.baseline : $0.lines } ?? ""
    func put(_ section: String) -> String { variant?.section == section ? extra + "\n" : "" }
    return "[Image]\nName=k\nVersion=1\nDiskSize=64M\nDefine=X=1\n" + (variant?.image ?? "")
      + "\n" + put("image")
      + "[Partition]\nType=root\nFormat=rosefs\nInline=/etc/x:%{X}\n" + put("root")
      + "[Partition]\nType=home\n" + put("home")
      + "[Output]\nFormats=raw manifest\n" + (variant?.output ?? "") + "\n" + put("output")
      + put("end")
  }

  /// Output file names with their SHA-256.
  func build(_ text: String, in dir: String, name: String) throws -> [String: String] {
    let path = dir + "/" + name + ".conf"
    try text.write(toFile: path, atomically: false, encoding: .utf8)
    let out = dir + "/out-" + name
    let result = try CLI.rosepack(["build", path, "-o", out, "-q"])
    guard result.status == 0 else { throw TestFailure("\(name): \(result.stderr)\n\(text)") }
    var digests: [String: String] = [:]
    for file in try FileManager.default.contentsOfDirectory(atPath: out) {
      digests[file] = try SHA256Stream.file(path: out + "/" + file)
    }
    try? FileManager.default.removeItem(atPath: out)
    return digests
  }

  @Test func everyKeyHasAVariant() {
    let missing = recipeKeys.filter { !$0.recordedOnly && Self.variants[$0.name] == nil }.map(
      \.name)
    #expect(missing.isEmpty, "keys without an effect test: \(missing)")
  }

  @Test(arguments: recipeKeys.filter { !$0.recordedOnly }.map(\.name))
  func keyChangesTheOutput(_ key: String) throws {
    let variant = try #require(Self.variants[key])
    let dir = try CLI.temporaryDirectory("key-\(key)")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try "Version=7\n".write(toFile: dir + "/inc.conf", atomically: false, encoding: .utf8)
    try Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }).write(
      to: URL(fileURLWithPath: dir + "/blob"))
    try FileManager.default.createDirectory(
      atPath: dir + "/tree/sub", withIntermediateDirectories: true)
    try "tree\n".write(toFile: dir + "/tree/sub/f", atomically: false, encoding: .utf8)
    try FileManager.default.createDirectory(
      atPath: dir + "/Templates", withIntermediateDirectories: true)
    try "slot {{slot}}\n".write(
      toFile: dir + "/Templates/t.mustache", atomically: false, encoding: .utf8)
    try "etc/x 0 0 0600\n".write(toFile: dir + "/fs_config", atomically: false, encoding: .utf8)
    let tar = try CLI.tool("tar", ["-cf", dir + "/t.tar", "-C", dir, "--mtime=@0", "blob"])
    #expect(tar.status == 0)
    let base = try build(recipe(variant, baselineOnly: true), in: dir, name: "base")
    let changed = try build(recipe(variant, baselineOnly: false), in: dir, name: "variant")
    #expect(base != changed, "\(key)= did not change any output")
  }
}
