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
