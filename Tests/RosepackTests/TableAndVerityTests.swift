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
      for i in stride(from: 0, to: size, by: 1 << 20) {
        data[i] = UInt8(truncatingIfNeeded: i >> 20) | 1
      }
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
  static func genimageConfig(
    table: String, blobOffset: String, signature: String, disk: [String: Any]
  )
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
    #expect(
      try CLI.slice(image, offset: 4 << 20, length: 32 << 20) == CLI.bytes(dir + "/input/boot.vfat")
    )
    guard let theirs = try genimage(dir: dir, table: "mbr", blobOffset: "8K", ours: ours) else {
      return
    }
    let reference = try Self.sfdiskJSON(theirs)
    #expect(Self.fields(ours) == Self.fields(reference))
    #expect(ours["id"] as? String == reference["id"] as? String)
    // Signature, entries with their CHS fields, 0x55AA: the same bytes.
    #expect(
      try CLI.slice(image, offset: 440, length: 72) == CLI.slice(theirs, offset: 440, length: 72))
    #expect(
      try CLI.slice(image, offset: 8192, length: 20000)
        == CLI.slice(theirs, offset: 8192, length: 20000))
  }

  @Test func hybridMatchesGenimage() throws {
    let (dir, image) = try build(table: "hybrid", blobOffset: "32K")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let ours = try Self.sfdiskJSON(image)
    #expect(ours["label"] as? String == "gpt")
    let dos = try Self.sfdiskJSON(image, nested: true)
    #expect(
      Self.fields(dos) == ["bootable=1 size=65536 start=8192 type=c", "size=33 start=1 type=ee"])
    #expect(
      try CLI.slice(image, offset: 32768, length: 20000) == CLI.bytes(dir + "/input/u-boot.bin"))
    #expect(try CLI.tool("sgdisk", ["-v", image]).stdout.contains("No problems found"))
    guard let theirs = try genimage(dir: dir, table: "hybrid", blobOffset: "32K", ours: ours)
    else { return }
    #expect(Self.fields(ours) == Self.fields(try Self.sfdiskJSON(theirs)))
    #expect(Self.fields(dos) == Self.fields(try Self.sfdiskJSON(theirs, nested: true)))
    #expect(
      try CLI.slice(image, offset: 440, length: 72) == CLI.slice(theirs, offset: 440, length: 72))
  }

  @Test func aBlobOverTheGPTIsRefusedWithBothRanges() throws {
    let dir = try Self.inputs("table-overlap")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Self.recipe(table: "gpt", blobOffset: "8K").replacingOccurrences(
      of: "MBRType=0x0c\n", with: ""
    )
    .write(toFile: dir + "/rpi.conf", atomically: false, encoding: .utf8)
    let r = try CLI.rosepack(["build", dir + "/rpi.conf", "-o", dir + "/out", "-q"])
    #expect(r.status != 0)
    #expect(
      r.stderr.contains(
        "blob 'u-boot' at bytes [8192, 28192) overlaps the primary GPT at bytes [512, 17408)"),
      "\(r.stderr)")
  }

  @Test func aFifthMBRPartitionIsRefusedByName() throws {
    let dir = try CLI.temporaryDirectory("table-five")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var text = "[Image]\nName=five\nPartitionTable=mbr\n"
    for i in 1...5 {
      text += "[Partition]\nType=L\nLabel=p\(i)\nSizeMinBytes=1M\nSizeMaxBytes=1M\n"
    }
    try text.write(toFile: dir + "/five.conf", atomically: false, encoding: .utf8)
    let r = try CLI.rosepack(["build", dir + "/five.conf", "-o", dir + "/out", "-q"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("partition 'p5' would be primary partition 5"), "\(r.stderr)")
  }

  @Test func tableAndBlobMistakesAreRecipeErrors() throws {
    let dir = try CLI.temporaryDirectory("table-errors")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Data(count: 4096).write(to: URL(fileURLWithPath: dir + "/spl.bin"))
    let cases: [(String, String)] = [
      (
        "[Partition]\nLabel=spl\nInPartitionTable=no\nFormat=raw\nCopyBlocks=spl.bin\n",
        "InPartitionTable=no section 'spl' has no Offset="
      ),
      (
        "[Partition]\nLabel=spl\nInPartitionTable=no\nCopyBlocks=spl.bin\nOffset=8K\n"
          + "Format=vfat\n",
        "InPartitionTable=no needs Format=raw"
      ),
      ("[Partition]\nType=L\nLabel=a\nMBRType=0x83\n", "MBRType= needs PartitionTable=mbr"),
      (
        "[Partition]\nType=L\nLabel=a\nVerity=data\n",
        "Verity=data needs VerityMatchKey="
      ),
      (
        "[Partition]\nType=L\nLabel=a\nVerity=data\nVerityMatchKey=k\n",
        "VerityMatchKey=k has no Verity=hash partition"
      ),
    ]
    for (n, (section, message)) in cases.enumerated() {
      let text = "[Image]\nName=e\n" + section
      try text.write(toFile: dir + "/e\(n).conf", atomically: false, encoding: .utf8)
      let r = try CLI.rosepack(["build", dir + "/e\(n).conf", "-o", dir + "/out", "-q"])
      #expect(r.status != 0)
      #expect(r.stderr.contains(message), "\(message): \(r.stderr)")
      #expect(r.stderr.contains("e\(n).conf:"), "the error names the file and line")
    }
  }

  // MARK: signature wiping

  /// Writes `text` as DIR/NAME.conf, builds it, returns the output directory.
  func buildRecipe(_ text: String, in dir: String, name: String, extra: [String] = []) throws
    -> String
  {
    try text.write(toFile: dir + "/\(name).conf", atomically: false, encoding: .utf8)
    let out = dir + "/out-" + name
    let r = try CLI.rosepack(["build", dir + "/\(name).conf", "-o", out, "-q"] + extra)
    guard r.status == 0 else { throw TestFailure("build \(name) failed: \(r.stderr)") }
    return out
  }

  func partitions(_ image: String) throws -> [(start: UInt64, size: UInt64, name: String)] {
    let table = try Self.sfdiskJSON(image)
    return ((table["partitions"] as? [[String: Any]]) ?? []).map {
      (
        UInt64($0["start"] as? Int ?? 0) * 512, UInt64($0["size"] as? Int ?? 0) * 512,
        $0["name"] as? String ?? ""
      )
    }
  }

  /// `blkid -p` finds a file system signature at `offset` of `file`.
  func hasSignature(_ file: String, at offset: UInt64) throws -> Bool {
    try CLI.tool("blkid", ["-p", "--offset", String(offset), file]).status == 0
  }

  @Test func flashingWipesStaleSignaturesInEmptyPartitions() throws {
    let dir = try CLI.temporaryDirectory("wipe")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let out = try buildRecipe(
      """
      [Image]
      Name=wipe
      [Partition]
      Type=root
      Label=root
      Format=rosefs
      Inline=/etc/hostname:wipe\\n
      [Partition]
      Type=home
      Label=home
      SizeMinBytes=8M
      SizeMaxBytes=8M
      [Partition]
      Type=swap
      Label=swap
      SizeMinBytes=4M
      SizeMaxBytes=4M
      [Output]
      Formats=raw bmap simg

      """, in: dir, name: "wipe")
    let image = out + "/wipe_0.img"
    let parts = try partitions(image)
    #expect(parts.count == 3)
    // A 2 MiB ext4 (one block group, no backup superblock) copied to every partition's offset.
    let ext4 = dir + "/old.ext4"
    #expect(try CLI.tool("truncate", ["-s", "2M", ext4]).status == 0)
    #expect(try CLI.tool("mkfs.ext4", ["-q", "-F", ext4]).status == 0)
    let old = try CLI.bytes(ext4)
    let size = try FileManager.default.attributesOfItem(atPath: image)[.size] as? UInt64 ?? 0
    for (n, flash) in ["bmaptool", "simg2img"].enumerated() {
      let target = dir + "/target-\(n)"
      #expect(FileManager.default.createFile(atPath: target, contents: nil))
      let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: target))
      try handle.truncate(atOffset: size)
      for p in parts {
        try handle.seek(toOffset: p.start)
        handle.write(old)
      }
      try handle.close()
      for p in parts { #expect(try hasSignature(target, at: p.start), "the stale ext4 is there") }
      let r: CLI.Result
      if flash == "bmaptool" {
        r = try CLI.tool("bmaptool", ["copy", "--bmap", out + "/wipe_0.bmap", image, target])
      } else {
        // simg2img truncates a file it writes to, so the device is a loop device on the target
        // (a block device is not truncated; DON'T CARE chunks are skipped, as on a phone).
        let loop = try CLI.tool("losetup", ["-f", "--show", target])
        let device = loop.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        guard loop.status == 0, device.hasPrefix("/dev/") else {
          print("skipped the simg2img flash: no loop device (needs root): \(loop.stderr)")
          continue
        }
        r = try CLI.tool("simg2img", [out + "/wipe_0.simg", device])
        _ = try CLI.tool("sync", [])
        _ = try CLI.tool("losetup", ["-d", device])
      }
      #expect(r.status == 0, "\(flash): \(r.stderr)")
      for p in parts where p.name != "root" {
        #expect(
          try !hasSignature(target, at: p.start),
          "\(flash) left the old ext4 in the empty partition '\(p.name)'")
      }
    }
  }

  @Test func aBmapIsWrittenOnlyBesideAnImage() throws {
    let dir = try CLI.temporaryDirectory("bmap-zst")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let base = "[Image]\nName=z\n[Partition]\nType=home\nSizeMinBytes=1M\nSizeMaxBytes=1M\n"
    let out = try buildRecipe(base + "[Output]\nFormats=zst bmap\n", in: dir, name: "z")
    let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
    #expect(files == ["z_0.img.zst", "z_0.img.zst.bmap"])
    let text = String(decoding: try CLI.bytes(out + "/z_0.img.zst.bmap"), as: UTF8.self)
    #expect(text.contains("<!-- Describes: z_0.img.zst -->"))
    try (base + "[Output]\nFormats=bmap simg\n").write(
      toFile: dir + "/bad.conf", atomically: false, encoding: .utf8)
    let r = try CLI.rosepack(["build", dir + "/bad.conf", "-o", dir + "/bad", "-q"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("Formats=bmap needs raw or zst"), "\(r.stderr)")
  }

  // MARK: sparse images

  @Test func perPartitionAndSplitSparseImagesExpandToTheRawImage() throws {
    let dir = try CLI.temporaryDirectory("simg")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    // 3 MiB that neither repeats a word per block nor is zero: RAW chunks only.
    try Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }).write(
      to: URL(fileURLWithPath: dir + "/system.bin"))
    let out = try buildRecipe(
      """
      [Image]
      Name=phone
      [Partition]
      Type=L
      Label=system_a
      Format=raw
      CopyBlocks=system.bin
      Formats=simg
      [Partition]
      Type=L
      Label=vendor_a
      Format=rosefs
      Inline=/build.prop:ro.vendor=1\\n
      SplitName=vendor_a
      Formats=simg
      [Output]
      Formats=raw simg
      MaxDownloadSize=1M

      """, in: dir, name: "phone")
    let image = out + "/phone_0.img"
    let files = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
    #expect(files.contains("system_a.img") && files.contains("vendor_a.img"), "\(files)")
    let parts = try partitions(image)
    for (name, p) in zip(["system_a", "vendor_a"], parts) {
      let expanded = dir + "/\(name).raw"
      #expect(try CLI.tool("simg2img", [out + "/\(name).img", expanded]).status == 0)
      #expect(try CLI.bytes(expanded) == CLI.slice(image, offset: p.start, length: Int(p.size)))
    }
    let pieces = files.filter { $0.hasPrefix("phone_0.") && $0.hasSuffix(".simg") }.sorted {
      $0.count == $1.count ? $0 < $1 : $0.count < $1.count
    }
    #expect(pieces.count >= 4, "3 MiB of data in pieces of 1 MiB: \(pieces)")
    for piece in pieces {
      let bytes =
        try FileManager.default.attributesOfItem(atPath: out + "/" + piece)[.size] as? Int ?? 0
      #expect(bytes <= 1 << 20, "\(piece) is \(bytes) bytes")
      // Each piece is a valid sparse image on its own.
      #expect(try CLI.tool("simg2img", [out + "/" + piece, dir + "/one.raw"]).status == 0)
    }
    #expect(
      try CLI.tool("simg2img", pieces.map { out + "/" + $0 } + [dir + "/all.raw"]).status == 0)
    #expect(try CLI.filesEqual(dir + "/all.raw", image))
  }

  // MARK: verity

  @Test func veritySetVerifiesAndIsSigned() throws {
    let dir = try CLI.temporaryDirectory("verity")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let key = try CLI.tool(
      "openssl",
      [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=rosepack test", "-days",
        "2", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
      ])
    #expect(key.status == 0, "\(key.stderr)")
    let out = try buildRecipe(
      """
      [Image]
      Name=usr
      Architecture=x86-64
      [Partition]
      Type=usr
      Label=usr_a
      Format=rosefs
      Inline=/lib/os-release:ID=rose\\n
      Verity=data
      VerityMatchKey=usr
      SizeMinBytes=16M
      SizeMaxBytes=16M
      [Partition]
      Type=usr-verity
      Label=usr_a_verity
      Verity=hash
      VerityMatchKey=usr
      [Partition]
      Type=usr-verity-sig
      Label=usr_a_verity_sig
      Verity=signature
      VerityMatchKey=usr
      [Output]
      Formats=raw split

      """, in: dir, name: "usr",
      extra: ["--private-key", dir + "/key.pem", "--certificate", dir + "/cert.pem"])
    let data = out + "/usr_0.usr_a.img"
    let hash = out + "/usr_0.usr_a_verity.img"
    let sig = try CLI.bytes(out + "/usr_0.usr_a_verity_sig.img")
    let json = try #require(
      try JSONSerialization.jsonObject(with: Data(sig.prefix { $0 != 0 })) as? [String: String])
    let rootHash = try #require(json["rootHash"])
    #expect(rootHash.count == 64)
    // repart's 16 KiB, rounded up to Alignment= (1 MiB); NULs after the JSON.
    #expect(sig.count == 1 << 20)
    #expect(sig.drop { $0 != 0 }.allSatisfy { $0 == 0 })
    let verify = try CLI.tool("veritysetup", ["verify", data, hash, rootHash])
    #expect(verify.status == 0, "\(verify.stderr)")
    // The UUIDs come from the root hash: data the first 128 bits, hash the last.
    let table = try Self.sfdiskJSON(out + "/usr_0.img")
    let uuids = ((table["partitions"] as? [[String: Any]]) ?? []).map {
      ($0["uuid"] as? String ?? "").lowercased().replacingOccurrences(of: "-", with: "")
    }
    #expect(uuids.count == 3)
    #expect(uuids.first == String(rootHash.prefix(32)))
    #expect(uuids.dropFirst().first == String(rootHash.suffix(32)))
    // The signature is a PKCS#7 over the hex root hash, by the certificate given.
    try Data((json["signature"].flatMap { Data(base64Encoded: $0) }) ?? Data()).write(
      to: URL(fileURLWithPath: dir + "/sig.p7s"))
    try Data(rootHash.utf8).write(to: URL(fileURLWithPath: dir + "/roothash.txt"))
    let cms = try CLI.tool(
      "openssl",
      [
        "cms", "-verify", "-binary", "-inform", "DER", "-in", dir + "/sig.p7s", "-content",
        dir + "/roothash.txt", "-CAfile", dir + "/cert.pem", "-purpose", "any", "-out",
        "/dev/null",
      ])
    #expect(cms.status == 0, "\(cms.stderr)")
    // One flipped byte in the data partition and verification fails.
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: data))
    try handle.seek(toOffset: 4096 * 3 + 17)
    let byte = try handle.read(upToCount: 1) ?? Data([0])
    try handle.seek(toOffset: 4096 * 3 + 17)
    handle.write(Data([byte[0] ^ 0x5A]))
    try handle.close()
    #expect(try CLI.tool("veritysetup", ["verify", data, hash, rootHash]).status != 0)
    // Without a key the signature partition is refused, naming the options.
    let r = try CLI.rosepack(["build", dir + "/usr.conf", "-o", dir + "/nokey", "-q"])
    #expect(r.status != 0)
    #expect(r.stderr.contains("--private-key"), "\(r.stderr)")
  }

  // MARK: the recipes in Recipes/

  @Test func boardRecipeBuilds() throws {
    let dir = try CLI.temporaryDirectory("board")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let r = try CLI.rosepack(["build", "Recipes/board-mbr.conf", "-o", dir, "-q"])
    #expect(r.status == 0, "\(r.stderr)")
    let image = dir + "/board_1.0.img"
    let table = try Self.sfdiskJSON(image)
    #expect(table["label"] as? String == "dos")
    let fields = Self.fields(table)
    #expect(fields.count == 4)
    #expect(fields.first == "bootable=1 size=131072 start=8192 type=c")
    #expect(fields.dropFirst().allSatisfy { $0.hasSuffix("type=83") }, "\(fields)")
    let inspect = try CLI.rosepack(["inspect", image])
    #expect(inspect.stdout.contains("MBR, 4 partitions"), "\(inspect.stdout)")
    #expect(
      try CLI.slice(image, offset: 8192, length: 24 * 1024)
        == CLI.bytes("Recipes/board/u-boot-placeholder.bin"))
    try CLI.slice(image, offset: 4 << 20, length: 64 << 20).write(
      to: URL(fileURLWithPath: dir + "/boot.vfat"))
    let fsck = try CLI.tool("fsck.vfat", ["-n", dir + "/boot.vfat"])
    #expect(fsck.status == 0, "\(fsck.stdout)")
    let mdir = try CLI.tool("mdir", ["-i", dir + "/boot.vfat", "::/"])
    #expect(mdir.stdout.contains("cmdline") && mdir.stdout.contains("config"), "\(mdir.stdout)")
    // The ext4 data partition, checked by e2fsprogs.
    let data = try #require((table["partitions"] as? [[String: Any]])?.last)
    try CLI.slice(
      image, offset: UInt64(data["start"] as? Int ?? 0) * 512,
      length: (data["size"] as? Int ?? 0) * 512
    ).write(to: URL(fileURLWithPath: dir + "/data.ext4"))
    let e2fsck = try CLI.tool("e2fsck", ["-fn", dir + "/data.ext4"])
    #expect(e2fsck.status == 0, "\(e2fsck.stdout)")
    let ls = try CLI.rosepack(["ls", image, "--partition", "2", "/etc"])
    #expect(ls.status == 0 && ls.stdout.contains("hostname"), "\(ls.stdout)\(ls.stderr)")
  }

  @Test func verityUsrRecipeBuilds() throws {
    let dir = try CLI.temporaryDirectory("usr-verity")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let key = try CLI.tool(
      "openssl",
      [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=rosepack test", "-days",
        "2", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
      ])
    #expect(key.status == 0, "\(key.stderr)")
    let r = try CLI.rosepack([
      "build", "Recipes/usr-verity-ab.conf", "-o", dir + "/out", "-q", "--private-key",
      dir + "/key.pem", "--certificate", dir + "/cert.pem",
    ])
    #expect(r.status == 0, "\(r.stderr)")
    let image = dir + "/out/usr-verity_1.0.img"
    let parts = (try Self.sfdiskJSON(image)["partitions"] as? [[String: Any]]) ?? []
    #expect(
      parts.map { $0["name"] as? String ?? "" } == [
        "esp", "usr_a", "usr_a_verity", "usr_a_verity_sig", "_empty", "_empty", "_empty", "root",
      ])
    guard parts.count == 8 else { return }
    func range(_ i: Int) -> (UInt64, Int) {
      (UInt64(parts[i]["start"] as? Int ?? 0) * 512, (parts[i]["size"] as? Int ?? 0) * 512)
    }
    let sig = try CLI.slice(image, offset: range(3).0, length: range(3).1)
    let json = try #require(
      try JSONSerialization.jsonObject(with: Data(sig.prefix { $0 != 0 })) as? [String: String])
    let rootHash = try #require(json["rootHash"])
    try CLI.slice(image, offset: range(1).0, length: range(1).1).write(
      to: URL(fileURLWithPath: dir + "/usr.img"))
    try CLI.slice(image, offset: range(2).0, length: range(2).1).write(
      to: URL(fileURLWithPath: dir + "/usr.verity"))
    let verify = try CLI.tool(
      "veritysetup", ["verify", dir + "/usr.img", dir + "/usr.verity", rootHash])
    #expect(verify.status == 0, "\(verify.stderr)")
    let uuid = ((parts[1]["uuid"] as? String) ?? "").lowercased().replacingOccurrences(
      of: "-", with: "")
    #expect(uuid == String(rootHash.prefix(32)))
    #expect(try CLI.tool("sgdisk", ["-v", image]).stdout.contains("No problems found"))
  }
}
