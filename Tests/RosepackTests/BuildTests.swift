import Foundation
import RoseFS
import Testing

/// One build of Recipes/demo.conf, shared by the tests that only read it.
struct DemoBuild: Sendable {
  var directory: String
  var summary: BuildJSON
  var stdout: String

  var image: String { directory + "/demo_1.0.img" }

  static let shared: Result<DemoBuild, TestFailure> = {
    do { return .success(try make()) } catch { return .failure(TestFailure("\(error)")) }
  }()

  static func make() throws -> DemoBuild {
    let dir = try CLI.temporaryDirectory("demo")
    let result = try CLI.rosepack(["build", "Recipes/demo.conf", "-o", dir, "--json"])
    guard result.status == 0 else {
      throw TestFailure(
        "rosepack build Recipes/demo.conf failed (\(result.status)): \(result.stderr)")
    }
    let summary = try JSONDecoder().decode(BuildJSON.self, from: result.stdoutData)
    return DemoBuild(directory: dir, summary: summary, stdout: result.stdout)
  }

  func partition(_ label: String) throws -> BuildJSON.Partition {
    guard let p = summary.partitions.first(where: { $0.label == label }) else {
      throw TestFailure("no partition \(label) in the build summary")
    }
    return p
  }

  /// A reader on slot `subvolume` of the RoseFS root partition, straight from the disk image.
  func reader() throws -> ImageReader {
    try ImageReader(image: ImageFile(openPath: image, baseOffset: try partition("root").offset))
  }
}

@Suite("rosepack build: the demo recipe, checked with independent tools")
struct DemoBuildTests {
  func demo() throws -> DemoBuild { try DemoBuild.shared.get() }

  @Test func everyOutputFormatIsWritten() throws {
    let d = try demo()
    let files = try FileManager.default.contentsOfDirectory(atPath: d.directory).sorted()
    #expect(
      files == [
        "demo_1.0.bmap", "demo_1.0.esp.img", "demo_1.0.home.img", "demo_1.0.img",
        "demo_1.0.img.zst",
        "demo_1.0.root.img", "demo_1.0.simg", "manifest.json",
      ])
    #expect(d.stdout.hasPrefix("{"), "--json prints one JSON document and nothing else")
    // manifest.json lists every output with its sha256.
    let manifest =
      try JSONSerialization.jsonObject(with: CLI.bytes(d.directory + "/manifest.json"))
      as? [String: Any]
    let outputs = manifest?["outputs"] as? [[String: Any]] ?? []
    #expect(outputs.count == 7)
    for output in outputs where output["sha256Scope"] == nil {
      let file = output["file"] as? String ?? ""
      let sum = try CLI.tool("sha256sum", [d.directory + "/" + file]).stdout.prefix(64)
      #expect(String(sum) == output["sha256"] as? String, "sha256 of \(file)")
    }
    // The sparse outputs (raw disk, split images) are digested over the mapped ranges.
    #expect(outputs.filter { $0["sha256Scope"] as? String == "mapped" }.count == 4)
    try expectMappedDigests(d.directory)
  }

  @Test func gptIsCleanAndMatchesTheRecipe() throws {
    let d = try demo()
    let verify = try CLI.tool("sgdisk", ["-v", d.image])
    #expect(verify.status == 0)
    #expect(verify.stdout.contains("No problems found"), "\(verify.stdout)")
    let json = try CLI.tool("sfdisk", ["--json", d.image])
    let table = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
    let pt = table?["partitiontable"] as? [String: Any]
    let parts = pt?["partitions"] as? [[String: Any]] ?? []
    #expect(pt?["sectorsize"] as? Int == 512)
    #expect(parts.map { $0["name"] as? String } == ["esp", "root", "home"])
    #expect(
      parts.map { $0["type"] as? String } == [
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
        "933AC7E1-2EB4-4F13-B844-0E14E2AEF915",
      ])
    let sizes = parts.map { UInt64($0["size"] as? Int ?? 0) * 512 }
    #expect(sizes[0] == 32 << 20)
    #expect(sizes[2] == 16 << 20)
    // Root: content + 8 MiB + 25 %, at least the 16 MiB RoseFS minimum plus headroom.
    #expect(sizes[1] >= 28 << 20)
    for (p, part) in zip(d.summary.partitions, parts) {
      #expect(UInt64(part["start"] as? Int ?? 0) * 512 == p.offset)
      #expect(UInt64(part["size"] as? Int ?? 0) * 512 == p.size)
    }
  }

  @Test func flashingFormatsReproduceTheRawImage() throws {
    let d = try demo()
    let scratch = try CLI.temporaryDirectory("formats")
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let copied = scratch + "/bmap.img"
    let bmap = try CLI.tool(
      "bmaptool", ["copy", "--bmap", d.directory + "/demo_1.0.bmap", d.image, copied])
    #expect(bmap.status == 0, "\(bmap.stderr)")
    #expect(try CLI.filesEqual(copied, d.image), "bmaptool copy reproduces the raw image")
    let unsparse = scratch + "/simg.img"
    #expect(try CLI.tool("simg2img", [d.directory + "/demo_1.0.simg", unsparse]).status == 0)
    #expect(try CLI.filesEqual(unsparse, d.image), "simg2img reproduces the raw image")
    let unzst = scratch + "/zst.img"
    #expect(
      try CLI.tool("zstd", ["-q", "-d", d.directory + "/demo_1.0.img.zst", "-o", unzst]).status == 0
    )
    #expect(try CLI.filesEqual(unzst, d.image), "zstd -d reproduces the raw image")
    for p in d.summary.partitions {
      let split = try CLI.bytes(d.directory + "/demo_1.0.\(p.label).img")
      #expect(
        split == (try CLI.slice(d.image, offset: p.offset, length: Int(p.size))), "split \(p.label)"
      )
    }
  }

  @Test func espIsAValidFATWithTheRecipeFiles() throws {
    let d = try demo()
    let esp = d.directory + "/demo_1.0.esp.img"
    #expect(try CLI.tool("fsck.fat", ["-n", esp]).status == 0)
    let loader = try CLI.tool("mtype", ["-i", esp, "::/loader/loader.conf"])
    #expect(loader.stdout == "default demo-a.conf\ntimeout 3\n")
    let readme = try CLI.tool("mtype", ["-i", esp, "::/EFI/BOOT/README.txt"])
    #expect(readme.stdout.contains("BOOTX64.EFI"))
  }

  @Test func rootIsAValidRoseFSVolumeWithTwoSlots() throws {
    let d = try demo()
    let root = try d.partition("root")
    #expect(try CLI.slice(d.image, offset: root.offset + 1024, length: 4) == Data("ROSE".utf8))
    let problems = Fsck.check(image: try ImageFile(openPath: d.image, baseOffset: root.offset))
    #expect(problems.isEmpty, "\(problems.prefix(10))")
    #expect(root.subvolumes == ["a", "b"])
    let r = try d.reader()
    let a = try r.headIndex(named: "a")
    let b = try r.headIndex(named: "b")
    func text(_ path: String, _ head: Int) throws -> String {
      String(
        decoding: try r.readAll(ino: try r.lookup(path, head: head), head: head), as: UTF8.self)
    }
    // Per-slot template output differs...
    #expect(try text("/etc/rose/slot", a) == "a\n")
    #expect(try text("/etc/rose/slot", b) == "b\n")
    #expect(try text("/etc/fstab", a).contains("subvol=a"))
    #expect(try text("/etc/fstab", b).contains("subvol=b"))
    // ...Slot=b layers reach B only, Remove= and Inline= apply to both...
    #expect(throws: (any Error).self) { try r.lookup("/etc/rose/first-boot", head: a) }
    #expect(try text("/etc/rose/first-boot", b) == "pending\n")
    #expect(throws: (any Error).self) { try r.lookup("/usr/share/doc/rose-demo", head: a) }
    #expect(throws: (any Error).self) { try r.lookup("/usr/share/doc/rose-demo", head: b) }
    #expect(try text("/etc/hostname", b) == "rose-demo\n")
    // ...and everything else is one shared inode with the same blocks.
    for path in ["/usr/lib/rose/words.txt", "/etc/os-release", "/usr/bin/rose-slot"] {
      let ia = try r.lookup(path, head: a)
      #expect(ia == (try r.lookup(path, head: b)), "\(path) is the same inode in both slots")
      let ra = try r.readInodeRecord(ia, head: a)
      let rb = try r.readInodeRecord(ia, head: b)
      #expect(
        try r.content(of: ra, head: a) == (try r.content(of: rb, head: b)),
        "\(path) shares its blocks")
    }
    let words = try r.readAll(ino: try r.lookup("/usr/lib/rose/words.txt", head: a), head: a)
    #expect(
      words == (try CLI.bytes(CLI.repo + "/Recipes/demo/rootfs/usr/lib/rose/words.txt")).map { $0 })
    // Only a few metadata blocks are private to each slot.
    for bytes in root.privateBytes ?? [] { #expect(bytes < 64 << 10) }
  }

  @Test func fsckAndExportOfTheRootPartition() throws {
    let d = try demo()
    let fsck = try CLI.rosepack(["fsck", d.image, "--partition", "root"])
    #expect(fsck.status == 0, "\(fsck.stdout)\(fsck.stderr)")
    #expect(fsck.stdout.contains("clean"))
    let scratch = try CLI.temporaryDirectory("export")
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    var listings: [String: [String]] = [:]
    for slot in ["a", "b"] {
      let tar = scratch + "/\(slot).tar"
      let export = try CLI.rosepack([
        "export", d.image, "--partition", "root", "--subvolume", slot, "-o", tar,
      ])
      #expect(export.status == 0, "\(export.stderr)")
      let list = try CLI.tool("tar", ["-tf", tar])
      listings[slot] = list.stdout.split(separator: "\n").map {
        String($0.drop { $0 == "." || $0 == "/" })
      }.filter { !$0.isEmpty }.sorted()
      let dir = scratch + "/" + slot
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      #expect(try CLI.tool("tar", ["-xf", tar, "-C", dir]).status == 0)
      #expect(try String(contentsOfFile: dir + "/etc/rose/slot", encoding: .utf8) == slot + "\n")
    }
    let a = Set(listings["a"] ?? [])
    let b = Set(listings["b"] ?? [])
    #expect(
      b.subtracting(a).map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } == [
        "etc/rose/first-boot"
      ])
    #expect(a.subtracting(b).isEmpty)
    #expect(a.contains("usr/lib/rose/words.txt"))
    #expect(
      try CLI.filesEqual(
        scratch + "/a/usr/lib/rose/words.txt", scratch + "/b/usr/lib/rose/words.txt"))
  }

  @Test func ownershipTimestampsAndCapabilities() throws {
    let d = try demo()
    let r = try d.reader()
    for head in [0, 1] {
      let ping = try r.readInodeRecord(try r.lookup("/usr/bin/rose-ping", head: head), head: head)
      #expect(ping.uid == 0 && ping.gid == 3003 && ping.mode & 0o7777 == 0o750)
      let caps = try r.xattrs(of: ping, head: head)
      #expect(caps.contains { $0.name == Array("security.capability".utf8) })
      let words = try r.readInodeRecord(
        try r.lookup("/usr/lib/rose/words.txt", head: head), head: head)
      #expect(words.uid == 1000 && words.mode & 0o7777 == 0o640)
      let release = try r.readInodeRecord(try r.lookup("/etc/os-release", head: head), head: head)
      #expect(release.uid == 0 && release.gid == 0, "the invoking user maps to root")
      #expect(release.mtime.seconds <= 1_700_000_000, "timestamps are clamped to SourceDateEpoch=")
    }
  }
}

@Suite("rosepack build: reproducibility, other recipes, errors")
struct BuildRecipeTests {
  @Test func twoBuildsAreByteIdentical() throws {
    let first = try DemoBuild.shared.get()
    let dir = try CLI.temporaryDirectory("again")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try CLI.rosepack(["build", "Recipes/demo.conf", "-o", dir, "-q"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.isEmpty, "-q prints nothing but errors")
    for file in try FileManager.default.contentsOfDirectory(atPath: first.directory) {
      #expect(
        try CLI.filesEqual(first.directory + "/" + file, dir + "/" + file), "\(file) is identical")
    }
  }

  @Test func phoneRecipeHas4096ByteSectors() throws {
    let dir = try CLI.temporaryDirectory("phone")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try CLI.rosepack(["build", "Recipes/phone.conf", "-o", dir, "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let summary = try JSONDecoder().decode(BuildJSON.self, from: result.stdoutData)
    #expect(summary.sectorSize == 4096)
    let raw = dir + "/disk.img"
    #expect(try CLI.tool("simg2img", [dir + "/rose-phone_1.0.simg", raw]).status == 0)
    let fdisk = try CLI.tool("fdisk", ["-b", "4096", "-l", raw])
    #expect(fdisk.stdout.contains("Sector size (logical/physical): 4096 bytes"))
    #expect(fdisk.stdout.contains("Disklabel type: gpt"))
    let rows = fdisk.stdout.split(separator: "\n").filter { $0.hasPrefix(raw) }
    #expect(rows.count == 3)
    #expect(rows.first?.contains(" 8M ") == true, "\(rows)")
    let boot = try CLI.bytes(CLI.repo + "/Recipes/phone/boot.img")
    let bootA = try CLI.bytes(dir + "/rose-phone_1.0.boot_a.img")
    #expect(bootA.prefix(boot.count) == boot)
    #expect(bootA.count == 8 << 20)
    let system = summary.partitions[2]
    #expect(system.offset % 4096 == 0)
    #expect(Fsck.check(image: try ImageFile(openPath: raw, baseOffset: system.offset)).isEmpty)
    let r = try ImageReader(image: ImageFile(openPath: raw, baseOffset: system.offset))
    let b = try r.headIndex(named: "b")
    #expect(
      try r.readAll(ino: try r.lookup("/etc/slot_suffix", head: b), head: b) == Array("_b\n".utf8))
  }

  @Test func pcRecipeGrowsRootToTheDiskFromATarball() throws {
    let dir = try CLI.temporaryDirectory("pc")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let tarball = dir + "/rootfs.tar.zst"
    let tar = try CLI.tool(
      "tar", ["--zstd", "-C", CLI.repo + "/Recipes/demo/rootfs", "-cf", tarball, "."])
    #expect(tar.status == 0, "\(tar.stderr)")
    let result = try CLI.rosepack([
      "build", "Recipes/pc-ab.conf", "--define", "ROOTFS=" + tarball, "--define", "DISK_SIZE=768M",
      "-o",
      dir + "/out", "--json",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let summary = try JSONDecoder().decode(BuildJSON.self, from: result.stdoutData)
    #expect(summary.diskSize == 768 << 20)
    let root = summary.partitions[1]
    #expect(
      root.offset + root.size > (768 << 20) - (2 << 20), "Grow=yes takes the rest of the disk")
    let image = dir + "/out/rose-pc_1.0.img"
    #expect(try CLI.tool("sgdisk", ["-v", image]).stdout.contains("No problems found"))
    #expect(Fsck.check(image: try ImageFile(openPath: image, baseOffset: root.offset)).isEmpty)
    let r = try ImageReader(image: ImageFile(openPath: image, baseOffset: root.offset))
    #expect(try r.readAll(ino: try r.lookup("/etc/motd", head: 0), head: 0).count > 0)
  }

  /// Writes a recipe into a fresh directory.
  func recipe(_ text: String, files: [String: Data] = [:]) throws -> (dir: String, path: String) {
    let dir = try CLI.temporaryDirectory("bad")
    for (name, data) in files { try data.write(to: URL(fileURLWithPath: dir + "/" + name)) }
    let path = dir + "/bad.conf"
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return (dir, path)
  }

  @Test func unknownKeyIsAFileLineColumnErrorAndWritesNothing() throws {
    let (dir, path) = try recipe(
      "[Image]\nName=bad\n\n[Partition]\nType=root\nFormat=rosefs\nSizee=1M\n")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try CLI.rosepack(["build", path, "-o", dir + "/out"])
    #expect(result.status == 1)
    #expect(result.stderr.contains("\(path):7:1: error:"), "\(result.stderr)")
    #expect(result.stdout.isEmpty)
    #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
  }

  @Test(arguments: ["SizeMinBytes=16M\nSizeMaxBytes=16M", "SizeMaxBytes=20M"])
  func contentThatDoesNotFitNamesThePartitionLine(_ size: String) throws {
    var big = Data(count: 24 << 20)
    for i in stride(from: 0, to: big.count, by: 4096) {
      big[i] = UInt8(truncatingIfNeeded: i >> 12 | 1)
    }
    let text =
      "[Image]\nName=bad\n\n[Partition]\nType=root\nLabel=root\nFormat=rosefs\n\(size)\nFile=big.bin:/big.bin\n"
    let fileLine = text.filter { $0 == "\n" }.count
    let (dir, path) = try recipe(text, files: ["big.bin": big])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
    let result = try CLI.rosepack(["build", path, "-o", dir + "/out"])
    #expect(result.status == 1)
    #expect(
      result.stderr.contains("\(path):4:1: error: partition 'root' needs "), "\(result.stderr)")
    #expect(
      result.stderr.contains("the largest inputs are big.bin (24 MiB, line \(fileLine))"),
      "\(result.stderr)")
    #expect(
      try FileManager.default.contentsOfDirectory(atPath: dir + "/out").isEmpty, "no output is left"
    )
  }

  @Test func slotSpecificOwnershipCopiesASharedFile() throws {
    let rootfs = CLI.repo + "/Recipes/demo/rootfs"
    let (dir, path) = try recipe(
      "[Image]\nName=own\n\n[Partition]\nType=root\nLabel=root\nFormat=rosefs\nSlots=a b\n"
        + "Directory=\(rootfs):/\nSlot=b\nOwnership=fs_b\nSlot=a\nRemove=/etc/motd\n",
      files: ["fs_b": Data("etc/motd 7 7 0600\n".utf8)])
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let result = try CLI.rosepack(["build", path, "-o", dir + "/out", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let summary = try JSONDecoder().decode(BuildJSON.self, from: result.stdoutData)
    let image = dir + "/out/own_0.img"
    let offset = summary.partitions[0].offset
    let problems = Fsck.check(image: try ImageFile(openPath: image, baseOffset: offset))
    #expect(problems.isEmpty, "\(problems.prefix(10))")
    let r = try ImageReader(image: ImageFile(openPath: image, baseOffset: offset))
    let a = try r.headIndex(named: "a")
    let b = try r.headIndex(named: "b")
    #expect(throws: (any Error).self) { try r.lookup("/etc/motd", head: a) }
    let motd = try r.readInodeRecord(try r.lookup("/etc/motd", head: b), head: b)
    #expect(motd.uid == 7 && motd.mode & 0o7777 == 0o600)
    #expect(try r.readAll(ino: motd.ino, head: b) == Array(try CLI.bytes(rootfs + "/etc/motd")))
    let release = try r.readInodeRecord(try r.lookup("/etc/os-release", head: a), head: a)
    #expect(release.uid == 0 && release.mode & 0o7777 == 0o644)
  }

  @Test func initStartersBuildAndRecipeHelp() throws {
    let dir = try CLI.temporaryDirectory("init")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let made = try CLI.rosepack(["init", "--template", "minimal", dir + "/p"])
    #expect(made.status == 0, "\(made.stderr)")
    let built = try CLI.rosepack(["build", dir + "/p/minimal.conf", "-o", dir + "/p/out", "-q"])
    #expect(built.status == 0, "\(built.stderr)")
    #expect(FileManager.default.fileExists(atPath: dir + "/p/out/minimal_1.0.img"))
    let again = try CLI.rosepack(["init", "--template", "minimal", dir + "/p"])
    #expect(again.status == 1, "init never overwrites")
    let dump = try CLI.rosepack(["build", "Recipes/demo.conf", "--dump-config"])
    #expect(dump.stdout.contains("[Partition]") && dump.stdout.contains("Label=root"))
    let keys = try CLI.rosepack(["recipe", "--help-keys"])
    #expect(keys.stdout.contains("Tarball="))
    let docs = try CLI.rosepack(["recipe", "--docs"])
    #expect(docs.stdout.hasPrefix("# rosepack recipes"))
  }
}
