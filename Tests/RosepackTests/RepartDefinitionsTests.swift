import Foundation
import Testing

/// `rosepack build --definitions` where systemd-repart 252 cannot be the reference: features
/// newer than 252 and the refusals, checked against repart.d(5).
@Suite struct RepartDefinitionsTests {
  /// Writes `files` (name -> text) into a fresh definitions directory.
  func definitions(_ files: [String: String]) throws -> String {
    let dir = try CLI.temporaryDirectory("defs")
    for (name, text) in files {
      try text.write(toFile: dir + "/" + name, atomically: false, encoding: .utf8)
    }
    return dir
  }

  func table(_ image: String) throws -> [[String: Any]] {
    let result = try CLI.tool("sfdisk", ["--json", image])
    let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    let table = json?["partitiontable"] as? [String: Any]
    return table?["partitions"] as? [[String: Any]] ?? []
  }

  /// repart.d(5) (v253+): "Minimize=best: the partition will have the minimal size required to
  /// store the sources configured with CopyFiles=". CopyFiles= sources are under --root.
  @Test func minimizeAndCopyFilesUnderRoot() throws {
    let dir = try definitions([
      "10-root.conf": "[Partition]\nType=root\nFormat=rosefs\nCopyFiles=/usr:/usr\nMinimize=best\n",
      "20-home.conf": "[Partition]\nType=home\n",
    ])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let image = dir + "/disk.img"
    let root = CLI.repo + "/Recipes/demo/rootfs"
    let built = try CLI.rosepack([
      "build", "-q", "--definitions", dir, "--root", root, "--size", "256M", image,
    ])
    #expect(built.status == 0, "\(built.stderr)")
    let parts = try table(image)
    #expect(parts.count == 2)
    let rootSectors = parts.first?["size"] as? Int ?? 0
    // The measured volume, far below the weight share (half of 255 MiB) it gets without Minimize=.
    #expect(rootSectors > 0 && rootSectors * 512 < 64 << 20)
    let fsck = try CLI.rosepack(["fsck", "--partition", "1", image])
    #expect(fsck.status == 0, "\(fsck.stdout)\(fsck.stderr)")
    let ls = try CLI.rosepack(["ls", "--partition", "1", image, "/usr/bin"])
    #expect(ls.stdout.contains("rose-ping"))
    // Only /usr was copied, from --root, not the build host's /usr.
    let top = try CLI.rosepack(["ls", "--partition", "1", image, "/"])
    #expect(top.stdout.split(separator: "\n").map(String.init) == ["usr"])
  }

  @Test func tooSmallSizeSaysWhatIsNeeded() throws {
    let dir = try definitions(["10-root.conf": "[Partition]\nType=root\nSizeMinBytes=64M\n"])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try CLI.rosepack(["build", "--definitions", dir, "--size", "8M", dir + "/x.img"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("these partitions need at least 65.0 MiB (68177920 bytes)"))
    #expect(!FileManager.default.fileExists(atPath: dir + "/x.img"))
  }

  @Test func copyFilesNeedsRoot() throws {
    let dir = try definitions([
      "10-root.conf": "[Partition]\nType=root\nFormat=rosefs\nCopyFiles=/etc\n"
    ])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try CLI.rosepack(["build", "--definitions", dir, dir + "/x.img"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("10-root.conf:4:"))
    #expect(result.stderr.contains("needs --root"))
    #expect(!FileManager.default.fileExists(atPath: dir + "/x.img"))
  }

  @Test func runningSystemFeaturesAreRefused() throws {
    let dir = try definitions([
      "10-a.conf": "[Partition]\nType=root\nCopyBlocks=auto\n",
      "20-b.conf": "[Partition]\nType=var\nFactoryReset=yes\n",
      "30-c.conf": "[Partition]\nType=home\nFormat=minix\n",
      "40-d.conf": "[Partition]\nType=srv\nFormat=rosefs\nSubvolumes=a b\n",
      "50-e.conf": "[Partition]\nType=rooot\n",
      "60-f.conf": "[Partition]\nType=esp\nLabel=%m\n",
      "70-g.conf": "[Partition]\nType=swap\nLabel=%H\n",
    ])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try CLI.rosepack(["build", "--definitions", dir, dir + "/x.img"])
    #expect(result.status == 1)
    let err = result.stderr
    #expect(err.contains("10-a.conf:3:12: error: CopyBlocks=auto needs a running system"))
    #expect(err.contains("20-b.conf:3:14: error: FactoryReset=yes is not supported"))
    #expect(err.contains("30-c.conf:3:8: error: Format=minix is not supported"))
    #expect(err.contains("40-d.conf:4:12: error: Subvolumes= is not supported"))
    #expect(err.contains("btrfs"))
    #expect(err.contains("50-e.conf:2:6: error: unknown partition type 'rooot'"))
    #expect(err.contains("nearest names: root,"))
    #expect(err.contains("60-f.conf:3:7: error: specifier %m needs --root"))
    #expect(err.contains("70-g.conf:3:7: error: specifier %H needs a running system"))
  }

  /// systemd-repart 252: "File to copy bytes from '...' has size that is not multiple of 512,
  /// refusing." (and "has zero size"). rosepack refuses the same sources before building, naming
  /// the definition file, the key and the size; systemd-repart itself is run as the reference.
  @Test func copyBlocksSourceSizeAsRepart() throws {
    let dir = try definitions([
      "10-raw.conf": "[Partition]\nType=linux-generic\nCopyBlocks=/blob.bin\n"
    ])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let root = dir + "/root"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    for (size, accepted) in [(1000, false), (0, false), (1536, true)] {
      try Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }).write(
        to: URL(fileURLWithPath: root + "/blob.bin"))
      let image = dir + "/x-\(size).img"
      let result = try CLI.rosepack([
        "build", "-q", "--definitions", dir, "--root", root, "--size", "16M", image,
      ])
      if accepted {
        #expect(result.status == 0, "\(result.stderr)")
        let start = try #require(try table(image).first?["start"] as? Int)
        let copied = try CLI.slice(image, offset: UInt64(start) * 512, length: size)
        #expect(copied == (try Data(contentsOf: URL(fileURLWithPath: root + "/blob.bin"))))
      } else {
        #expect(result.status == 1)
        let said = size == 0 ? "is empty (0 bytes)" : "is \(size) bytes, not a multiple of 512"
        #expect(
          result.stderr.contains("10-raw.conf:3:12: error: "), "\(result.stderr)")
        #expect(
          result.stderr.contains("CopyBlocks= source \(root)/blob.bin \(said)"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: image))
      }
      guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-repart") else {
        print("copyBlocksSourceSizeAsRepart: systemd-repart not installed, reference not run")
        continue
      }
      let reference = try CLI.tool(
        "systemd-repart",
        [
          "--definitions", dir, "--root", root, "--empty=create", "--size=16M", "--dry-run=no",
          "--seed", "0d1a7a3b-7f3e-4a39-9a0e-6d1f0b8e2c11", dir + "/ref-\(size).img",
        ])
      #expect((reference.status == 0) == accepted, "\(reference.stderr)")
    }
  }

  /// repart expands the OS-release and machine-ID specifiers from `--root` (systemd.unit(5)
  /// specifier table), and `%a` to the architecture.
  @Test func specifiersExpandFromTheRoot() throws {
    let dir = try definitions([
      "10-usr.conf": "[Partition]\nType=usr\nLabel=%o_%w_%A\nSizeMinBytes=1M\n",
      "20-root.conf": "[Partition]\nType=root\nLabel=%M-%a\nSizeMinBytes=1M\n",
      "30-var.conf": "[Partition]\nType=var\nLabel=m%m\nSizeMinBytes=1M\n",
    ])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let root = dir + "/root"
    try FileManager.default.createDirectory(
      atPath: root + "/usr/lib", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(
      atPath: root + "/etc", withIntermediateDirectories: true)
    try "ID=particle\nVERSION_ID=\"12\"\nIMAGE_ID='pos'\nIMAGE_VERSION=7.1\n".write(
      toFile: root + "/usr/lib/os-release", atomically: false, encoding: .utf8)
    try "0123456789abcdef0123456789abcdef\n".write(
      toFile: root + "/etc/machine-id", atomically: false, encoding: .utf8)
    let image = dir + "/disk.img"
    let built = try CLI.rosepack([
      "build", "-q", "--definitions", dir, "--root", root, "--size", "16M", image,
    ])
    #expect(built.status == 0, "\(built.stderr)")
    let names = try table(image).map { $0["name"] as? String ?? "" }
    #expect(names == ["particle_12_7.1", "pos-x86-64", "m0123456789abcdef0123456789abcdef"])
  }

  /// repart.d(5): "GrowFileSystem= ... Defaults to on for all partition types that support it";
  /// an explicit no turns it off (repart 252 sets bit 59 anyway: a bug later fixed). Flags= bits
  /// below 48 are written as given (252 loses them).
  @Test func attributesAsDocumented() throws {
    let dir = try definitions([
      "10-root.conf": "[Partition]\nType=root\nGrowFileSystem=no\nSizeMinBytes=16M\n",
      "20-esp.conf": "[Partition]\nType=esp\nFlags=0x4\nSizeMinBytes=16M\n",
      "30-usr.conf": "[Partition]\nType=usr\nReadOnly=yes\nSizeMinBytes=16M\n",
    ])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let image = dir + "/x.img"
    let result = try CLI.rosepack(["build", "-q", "--definitions", dir, "--size", "64M", image])
    #expect(result.status == 0, "\(result.stderr)")
    let attrs = try table(image).map { $0["attrs"] as? String ?? "" }
    #expect(attrs == ["", "LegacyBIOSBootable", "GUID:60"])
  }

  @Test func repeatedKeysLastWinsWithAWarning() throws {
    let dir = try definitions([
      "10-root.conf": "[Partition]\r\nType=home\r\nType=root\r\nLabel=one\r\nLabel=two\r\n"
    ])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let image = dir + "/x.img"
    let result = try CLI.rosepack(["build", "--definitions", dir, "--size", "64M", image])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(
      result.stderr.contains("10-root.conf:3:1: warning: Type= repeats line 2; the last value wins")
    )
    let parts = try table(image)
    #expect(parts.first?["name"] as? String == "two")
    #expect(parts.first?["type"] as? String == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")
  }

  // MARK: Verity=

  /// The definitions of a usr verity set (data from a squashfs image under --root, hash,
  /// signature) beside an ESP, and the key pair that signs it. nil (with the reason printed) when
  /// mksquashfs or openssl is missing.
  func veritySet() throws -> (dir: String, root: String, key: String, certificate: String)? {
    for tool in ["mksquashfs", "openssl", "veritysetup"] {
      let found = ["/usr/bin", "/usr/sbin", "/sbin", "/bin"].contains {
        FileManager.default.isExecutableFile(atPath: $0 + "/" + tool)
      }
      if !found {
        print("skipping the verity definitions test: \(tool) is not installed (install-deps.sh)")
        return nil
      }
    }
    let dir = try definitions([
      "00-esp.conf": "[Partition]\nType=esp\nSizeMinBytes=16M\nSizeMaxBytes=16M\n",
      "10-usr.conf":
        "[Partition]\nType=usr\nCopyBlocks=/usr.squashfs\nVerity=data\nVerityMatchKey=usr\n",
      "11-usr-verity.conf": "[Partition]\nType=usr-verity\nVerity=hash\nVerityMatchKey=usr\n",
      "12-usr-verity-sig.conf":
        "[Partition]\nType=usr-verity-sig\nVerity=signature\nVerityMatchKey=usr\n",
    ])
    let root = dir + "/root"
    try FileManager.default.createDirectory(
      atPath: root + "/tree/bin", withIntermediateDirectories: true)
    try Data(repeating: 0x5A, count: 300_000).write(
      to: URL(fileURLWithPath: root + "/tree/bin/tool"))
    let squash = try CLI.tool(
      "mksquashfs", [root + "/tree", root + "/usr.squashfs", "-noappend", "-quiet", "-no-progress"])
    #expect(squash.status == 0, "\(squash.stderr)")
    let keys = try CLI.tool(
      "openssl",
      [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem", "-out",
        dir + "/cert.pem", "-days", "3650", "-subj", "/CN=rosepack test",
      ])
    #expect(keys.status == 0, "\(keys.stderr)")
    return (dir, root, dir + "/key.pem", dir + "/cert.pem")
  }

  /// The root hash in a signature partition's JSON (the bytes up to the first NUL).
  func rootHash(signaturePartition data: Data) throws -> String {
    let json = data.prefix { $0 != 0 }
    let object = try JSONSerialization.jsonObject(with: json) as? [String: Any]
    return try #require(object?["rootHash"] as? String)
  }

  /// The UUIDs repart gives a verity data and hash partition: the first and the last 128 bits of
  /// the root hash.
  func derivedUUIDs(_ rootHash: String) -> (String, String) {
    func uuid(_ hex: Substring) -> String {
      let h = Array(hex.uppercased())
      return [h[0..<8], h[8..<12], h[12..<16], h[16..<20], h[20..<32]].map { String($0) }.joined(
        separator: "-")
    }
    return (uuid(rootHash.prefix(32)), uuid(rootHash.suffix(32)))
  }

  /// repart.d(5) (252): "Verity=data|hash|signature ... the hash partition's contents are
  /// computed from the data partition, ... the UUIDs of the data and hash partitions are derived
  /// from the root hash, the signature partition holds a JSON object with the root hash and a
  /// PKCS#7 signature of it". rosepack's build: veritysetup verify passes on the split partitions,
  /// the signature JSON names the root hash and its PKCS#7 signature verifies with the certificate,
  /// the UUIDs are the root hash's halves, and a flipped data byte makes verify fail. Where
  /// systemd-repart 252 runs (as root), its disk from the same definitions has the same partition
  /// starts, sizes, types, names and attributes, the same ESP and signature UUIDs, and its own
  /// data and hash UUIDs derive from its own root hash (252 draws a random salt, so the hashes
  /// themselves differ).
  @Test func veritySetFromDefinitions() throws {
    guard let set = try veritySet() else { return }
    defer { try? FileManager.default.removeItem(atPath: set.dir) }
    let image = set.dir + "/ours.img"
    let seed = "e2a40bf9-73f1-4278-9160-49c031e7aef8"
    let built = try CLI.rosepack([
      "build", "-q", "--definitions", set.dir, "--root", set.root, "--seed", seed, "--size",
      "auto", "--private-key", set.key, "--certificate", set.certificate, image,
    ])
    #expect(built.status == 0, "\(built.stderr)")
    let ours = try table(image)
    #expect(ours.count == 4)
    guard ours.count == 4 else { return }
    func part(_ p: [String: Any]) -> (offset: UInt64, length: Int) {
      (UInt64(p["start"] as? Int ?? 0) * 512, (p["size"] as? Int ?? 0) * 512)
    }
    let signature = try CLI.slice(image, offset: part(ours[3]).offset, length: part(ours[3]).length)
    let hash = try rootHash(signaturePartition: signature)
    let (dataUUID, hashUUID) = derivedUUIDs(hash)
    #expect(ours[1]["uuid"] as? String == dataUUID)
    #expect(ours[2]["uuid"] as? String == hashUUID)
    #expect(part(ours[3]).length == 16384, "a signature partition is 16 KiB, as repart makes it")
    let dataFile = set.dir + "/data.img"
    let hashFile = set.dir + "/hash.img"
    try CLI.slice(image, offset: part(ours[1]).offset, length: part(ours[1]).length).write(
      to: URL(fileURLWithPath: dataFile))
    try CLI.slice(image, offset: part(ours[2]).offset, length: part(ours[2]).length).write(
      to: URL(fileURLWithPath: hashFile))
    let verify = try CLI.tool("veritysetup", ["verify", dataFile, hashFile, hash])
    #expect(verify.status == 0, "veritysetup verify: \(verify.stderr)")
    // The signature is a PKCS#7 of the root hash (hex, as repart signs it) by the certificate.
    let object =
      try JSONSerialization.jsonObject(with: signature.prefix { $0 != 0 }) as? [String: Any]
    let pkcs7 = try #require(Data(base64Encoded: object?["signature"] as? String ?? ""))
    try pkcs7.write(to: URL(fileURLWithPath: set.dir + "/sig.der"))
    try hash.write(toFile: set.dir + "/roothash.txt", atomically: false, encoding: .utf8)
    let cms = try CLI.tool(
      "openssl",
      [
        "cms", "-verify", "-binary", "-inform", "DER", "-in", set.dir + "/sig.der", "-content",
        set.dir + "/roothash.txt", "-certfile", set.certificate, "-CAfile", set.certificate,
        "-out", "/dev/null",
      ])
    #expect(cms.status == 0, "openssl cms -verify: \(cms.stderr)")
    // One flipped byte in the data: verify fails.
    var damaged = try CLI.bytes(dataFile)
    damaged[4096 * 3] ^= 0xFF
    try damaged.write(to: URL(fileURLWithPath: dataFile))
    #expect(try CLI.tool("veritysetup", ["verify", dataFile, hashFile, hash]).status != 0)

    guard
      let repart = ["/usr/bin/systemd-repart", "/bin/systemd-repart"].first(where: {
        FileManager.default.isExecutableFile(atPath: $0)
      }), getuid() == 0, FileManager.default.fileExists(atPath: "/dev/loop-control")
    else {
      print(
        "skipping the comparison with systemd-repart: not installed, or no loop device (repart "
          + "252 builds the hash tree on one: root and /dev/loop-control)")
      return
    }
    let theirs = set.dir + "/repart.img"
    let made = try CLI.run(
      repart,
      [
        "--definitions=" + set.dir, "--root=" + set.root, "--seed=" + seed, "--dry-run=no",
        "--no-pager", "--empty=create", "--size=auto", "--private-key=" + set.key,
        "--certificate=" + set.certificate, theirs,
      ], environment: [:])
    #expect(made.status == 0, "systemd-repart: \(made.stderr)")
    let reference = try table(theirs)
    #expect(reference.count == ours.count)
    for (n, (a, b)) in zip(reference, ours).enumerated() {
      for key in ["start", "size", "type", "name", "attrs"] {
        #expect("\(a[key] ?? "nil")" == "\(b[key] ?? "nil")", "partition \(n + 1) \(key)")
      }
    }
    #expect(reference[0]["uuid"] as? String == ours[0]["uuid"] as? String)
    #expect(reference[3]["uuid"] as? String == ours[3]["uuid"] as? String)
    guard reference.count == 4 else { return }
    let theirSignature = try CLI.slice(
      theirs, offset: part(reference[3]).offset, length: part(reference[3]).length)
    let theirHash = try rootHash(signaturePartition: theirSignature)
    let (theirData, theirHashUUID) = derivedUUIDs(theirHash)
    #expect(reference[1]["uuid"] as? String == theirData)
    #expect(reference[2]["uuid"] as? String == theirHashUUID)
  }

  /// repart 252's rules for one verity set, each refused at its line.
  @Test func verityRulesAsRepart() throws {
    let dir = try definitions([
      "10-a.conf": "[Partition]\nType=usr\nFormat=squashfs\nVerity=data\n",
      "20-b.conf": "[Partition]\nType=usr-verity\nVerity=hash\nVerityMatchKey=k\nFormat=ext4\n",
      "30-c.conf":
        "[Partition]\nType=usr-verity-sig\nVerity=signature\nVerityMatchKey=k\nSizeMinBytes=64K\n",
      "40-d.conf": "[Partition]\nType=home\nVerityMatchKey=k\n",
      "50-e.conf": "[Partition]\nType=srv\nVerity=yes\n",
    ])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try CLI.rosepack(["build", "--definitions", dir, dir + "/x.img"])
    #expect(result.status == 1)
    let err = result.stderr
    #expect(err.contains("10-a.conf:4:8: error: Verity=data needs VerityMatchKey="), "\(err)")
    #expect(
      err.contains("20-b.conf:5:8: error: Verity=hash partitions take no Format=, CopyBlocks="),
      "\(err)")
    #expect(
      err.contains(
        "30-c.conf:5:14: error: SizeMinBytes=/SizeMaxBytes= cannot be used with Verity=signature"),
      "\(err)")
    #expect(
      err.contains(
        "40-d.conf:3:16: error: VerityMatchKey= needs Verity= (data, hash or signature)"),
      "\(err)")
    #expect(err.contains("50-e.conf:3:8: error: invalid Verity= 'yes'"), "\(err)")

    // A set without its data partition.
    let lone = try definitions([
      "20-b.conf": "[Partition]\nType=usr-verity\nVerity=hash\nVerityMatchKey=k\n"
    ])
    defer { try? FileManager.default.removeItem(atPath: lone) }
    let missing = try CLI.rosepack(["build", "--definitions", lone, lone + "/x.img"])
    #expect(missing.status == 1)
    #expect(
      missing.stderr.contains(
        "20-b.conf:1:1: error: VerityMatchKey=k has no Verity=data definition"),
      "\(missing.stderr)")
  }
}

/// The recipe language shares free space as repart does (issue 8: root Weight=20000 and home
/// Weight=40000 gave root 1 GiB and home the rest; swap with only SizeMaxBytes= came out 1 MiB).
@Suite struct RecipeWeightTests {
  @Test func weightsPaddingAndMaximaShareTheDisk() throws {
    let dir = try CLI.temporaryDirectory("weights")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let recipe = dir + "/w.conf"
    try """
    [Image]
    Name=w
    DiskSize=8G
    Alignment=4K
    [Partition]
    Type=esp
    SizeMinBytes=512M
    SizeMaxBytes=512M
    PaddingMinBytes=16M
    [Partition]
    Type=root
    Weight=20000
    [Partition]
    Type=home
    Weight=40000
    [Partition]
    Type=swap
    SizeMaxBytes=64M
    [Output]
    Formats=raw
    """.write(toFile: recipe, atomically: false, encoding: .utf8)
    let built = try CLI.rosepack(["build", recipe, "-o", dir + "/out", "-q"])
    #expect(built.status == 0, "\(built.stderr)")
    let result = try CLI.tool("sfdisk", ["--json", dir + "/out/w_0.img"])
    let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    let parts = (json?["partitiontable"] as? [String: Any])?["partitions"] as? [[String: Any]] ?? []
    let sizes = parts.map { ($0["size"] as? Int ?? 0) * 512 }
    let starts = parts.map { ($0["start"] as? Int ?? 0) * 512 }
    #expect(parts.map { $0["name"] as? String ?? "" } == ["esp", "root-x86-64", "home", "swap"])
    #expect(sizes.count == 4)
    guard sizes.count == 4 else { return }
    #expect(sizes[0] == 512 << 20)
    // PaddingMinBytes= leaves 16 MiB unused after the ESP.
    #expect(starts[1] - (starts[0] + sizes[0]) == 16 << 20)
    // The swap takes its share up to its maximum; home gets twice root's share (within a grain).
    #expect(sizes[3] == 64 << 20)
    #expect(abs(sizes[2] - 2 * sizes[1]) <= 2 * 4096)
    // Nothing is left over: the last partition ends at the last usable 4 KiB boundary.
    let total = 8 << 30
    #expect(total - (starts[3] + sizes[3]) < 33 * 512 + 4096)
  }

}
