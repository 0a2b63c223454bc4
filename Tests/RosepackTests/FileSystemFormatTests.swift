import Foundation
import Testing

/// Every `Format=` RoseMkfs makes, built from a recipe with a small varied tree (directories,
/// files, a hard link, a symlink, a device node, a fifo, owners 0 and 1000, setuid, an xattr,
/// mtimes) and checked with the format's own tools: `blkid -p` names the type and label, the
/// format's fsck passes, the content read back matches the input by a manifest of path, type,
/// mode, owner, size, content hash, link target, device number, xattrs and mtime, and two builds
/// are byte-identical where the format allows. Content is read back twice: by the format's
/// userspace reader inside `fakeroot` (no root needed: `debugfs rdump`, `fsck.erofs --extract`,
/// `unsquashfs`, `btrfs restore`, `mcopy`), and by a read-only loop mount when run as root.
@Suite(.serialized) struct FileSystemFormatTests {
  /// One format's expectations.
  struct Case: Sendable, CustomStringConvertible {
    var format: String
    /// What `blkid -p` says as TYPE=.
    var blkidType: String
    /// The LABEL= blkid shows (nil: the format has none).
    var label: String?
    /// The fsck command (tool and arguments before the image path).
    var fsck: [String]
    /// Input features the format cannot hold (and refuses): left out of the tree.
    var inputFlags: [String]
    /// Features not compared on read-back.
    var scanFlags: [String]
    var reproducible: Bool
    /// The userspace reader: extracts the image into a directory without root.
    var reader: Reader?
    var description: String { format }
  }

  /// A userspace reader of one format (run in `fakeroot`, so the owners it sets are seen).
  struct Reader: Sendable {
    /// The tool that must be installed.
    var tool: String
    /// The shell command; `"$1"` is the image, `"$2"` the (existing, empty) output directory.
    var command: String
    /// Features the reader does not carry over (checked another way where the format holds
    /// them, see `readerExtras`).
    var flags: [String]
  }

  /// xfs and f2fs have no userspace reader of a tree in Debian 12 (xfs_db 6.1 extracts no files,
  /// dump.f2fs 1.15 dumps one inode at a time; no FUSE driver is packaged): their content is read
  /// back by a loop mount as root (xfs) or by the tree `fsck.f2fs -t` prints (f2fs) only.
  static let ext4Reader = Reader(
    tool: "debugfs", command: #"debugfs -R "rdump / $2" "$1" && rmdir "$2/lost+found""#,
    // rdump writes regular files, directories and symlinks only, one file per name, without
    // xattrs or the setuid bit.
    // The root's own times are not set on the output directory.
    flags: ["r-nospecial", "r-nolinks", "r-noxattrs", "r-nosetuid", "noroottime"])

  static let cases: [Case] = [
    Case(
      format: "ext4", blkidType: "ext4", label: "data", fsck: ["e2fsck", "-fn"], inputFlags: [],
      scanFlags: [], reproducible: true, reader: ext4Reader),
    Case(
      format: "ext2", blkidType: "ext2", label: "data", fsck: ["e2fsck", "-fn"], inputFlags: [],
      scanFlags: [], reproducible: true, reader: ext4Reader),
    Case(
      format: "ext3", blkidType: "ext3", label: "data", fsck: ["e2fsck", "-fn"], inputFlags: [],
      scanFlags: [], reproducible: true, reader: ext4Reader),
    Case(
      format: "erofs", blkidType: "erofs", label: nil, fsck: ["fsck.erofs"], inputFlags: [],
      scanFlags: [], reproducible: true,
      // erofs-utils 1.5 extracts owners, modes, devices, fifos and times, not xattrs, and each
      // name as its own file.
      reader: Reader(
        tool: "fsck.erofs", command: #"fsck.erofs --extract="$2" --preserve --overwrite "$1""#,
        flags: ["r-nolinks", "r-noxattrs"])),
    Case(
      format: "squashfs", blkidType: "squashfs", label: nil, fsck: ["unsquashfs", "-s"],
      inputFlags: [], scanFlags: [], reproducible: true,
      // unsquashfs restores everything the format holds (xattrs, hard links, devices).
      reader: Reader(
        tool: "unsquashfs", command: #"unsquashfs -q -f -d "$2" "$1" >/dev/null"#, flags: [])),
    Case(
      format: "btrfs", blkidType: "btrfs", label: "data", fsck: ["btrfs", "check"],
      inputFlags: ["nodevice"], scanFlags: ["noroottime"], reproducible: false,
      // btrfs restore (6.2) with -m sets modes and times but not owners, -x sets no user.
      // xattr here, and each name becomes its own file; fifos are skipped.
      reader: Reader(
        tool: "btrfs", command: #"btrfs restore -m -S -x "$1" "$2" >/dev/null"#,
        flags: ["r-noowners", "r-nolinks", "r-noxattrs", "r-nospecial"])),
    Case(
      format: "f2fs", blkidType: "f2fs", label: "data", fsck: ["fsck.f2fs", "-f"],
      inputFlags: ["noxattr", "nodevice"], scanFlags: [], reproducible: false),
    Case(
      format: "xfs", blkidType: "xfs", label: "data", fsck: ["xfs_repair", "-n", "-f"],
      inputFlags: ["noxattr", "nohardlink"], scanFlags: ["notimes"], reproducible: false),
    Case(
      format: "swap", blkidType: "swap", label: "data", fsck: ["swaplabel"], inputFlags: [],
      scanFlags: [], reproducible: true),
    // FAT holds names and bytes; every entry's time is SOURCE_DATE_EPOCH (owners and modes are
    // not stored; symlinks, devices, fifos, hard links and xattrs are refused).
    Case(
      format: "vfat", blkidType: "vfat", label: "DATA", fsck: ["fsck.vfat", "-n"],
      inputFlags: ["nodevice", "noxattr", "nohardlink", "nosymlink"],
      scanFlags: ["noowners", "nomodes", "mtime=\(epoch)"], reproducible: true,
      // mcopy -m sets each file's time from FAT (TZ=UTC); directories get the extraction time.
      reader: Reader(
        tool: "mcopy",
        command: #"MTOOLS_SKIP_CHECK=1 TZ=UTC LC_ALL=C.UTF-8 mcopy -s -n -m -i "$1" "::/*" "$2/""#,
        flags: ["r-nodirtimes"])),
  ]

  static let epoch = "2000000000"

  /// Builds `recipe` into `dir` and returns the split partition image.
  func build(_ recipe: String, _ dir: String, name: String) throws -> String {
    try recipe.write(toFile: dir + "/\(name).conf", atomically: true, encoding: .utf8)
    let result = try CLI.rosepack(["build", dir + "/\(name).conf", "-o", dir + "/\(name)", "-q"])
    #expect(result.status == 0, "\(result.stderr)")
    if result.status != 0 { throw TestFailure("build failed: \(result.stderr)") }
    return dir + "/\(name)/rt_0.data.img"
  }

  func recipe(format: String, tarball: String?) -> String {
    """
    [Image]
    Name=rt
    SourceDateEpoch=\(Self.epoch)
    [Partition]
    Type=linux-generic
    Label=data
    Format=\(format)
    \(tarball.map { "Tarball=" + $0 } ?? "")
    [Output]
    Formats=raw split

    """
  }

  /// The tool's path, or nil after printing why the check is skipped.
  func available(_ name: String) -> Bool {
    for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
    where FileManager.default.isExecutableFile(atPath: dir + "/" + name) {
      return true
    }
    print("skipping the \(name) check: \(name) is not installed (scripts/install-deps.sh)")
    return false
  }

  @Test(arguments: cases) func buildsChecksAndRoundTrips(_ c: Case) throws {
    let makers = [
      "ext4": "mke2fs", "ext2": "mke2fs", "ext3": "mke2fs", "erofs": "mkfs.erofs",
      "squashfs": "mksquashfs", "btrfs": "mkfs.btrfs", "f2fs": "sload.f2fs", "xfs": "mkfs.xfs",
      "swap": "mkswap", "vfat": "mkfs.vfat",
    ]
    guard available("fakeroot"), available("python3"), available(makers[c.format] ?? "")
    else { return }
    let dir = try CLI.temporaryDirectory("fs-\(c.format)")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let script = dir + "/tree.py"
    try Self.treeScript.write(toFile: script, atomically: true, encoding: .utf8)
    var tarball: String?
    var expected = ""
    if c.format != "swap" {
      tarball = dir + "/in.tar"
      let made = try CLI.tool("python3", [script, "make", dir + "/in.tar"] + c.inputFlags)
      #expect(made.status == 0, "\(made.stderr)")
      let wanted = try CLI.tool(
        "python3", [script, "make", dir + "/again.tar"] + c.inputFlags + c.scanFlags)
      expected = wanted.stdout
    }
    let image = try build(recipe(format: c.format, tarball: tarball), dir, name: "one")

    // blkid names the type and the label.
    if available("blkid") {
      let probe = try CLI.tool("blkid", ["-p", "-o", "export", image])
      #expect(probe.stdout.contains("TYPE=\(c.blkidType)\n"), "\(probe.stdout)")
      if let label = c.label {
        #expect(probe.stdout.contains("LABEL=\(label)\n"), "\(probe.stdout)")
      }
    }
    // The format's own fsck.
    if let tool = c.fsck.first, available(tool) {
      let fsck = try CLI.tool(tool, Array(c.fsck.dropFirst()) + [image])
      #expect(fsck.status == 0, "\(c.fsck.joined(separator: " ")): \(fsck.stdout) \(fsck.stderr)")
      if c.format == "swap" { #expect(fsck.stdout.contains("LABEL: data"), "\(fsck.stdout)") }
    }
    if c.format == "f2fs", available("fsck.f2fs") {
      // No f2fs reader without the kernel module: fsck.f2fs -t lists the tree it checked.
      let tree = try CLI.tool("fsck.f2fs", ["-f", "-t", image])
      for name in ["hostname", "notes.txt", "su", "su-link", "sh", "big.bin"] {
        #expect(tree.stdout.contains("-- \(name) "), "f2fs tree lacks \(name)")
      }
    }
    // The content, read back by the format's userspace reader, then by the kernel's driver.
    if let reader = c.reader {
      try readBack(image, c, reader: reader, script: script, dir: dir)
    } else if c.format != "swap" {
      print(
        "skipping the \(c.format) read-back without root: no userspace reader of a tree "
          + "(xfs_db 6.1 extracts no files, dump.f2fs 1.15 one inode at a time; Debian 12 packages "
          + "no FUSE driver for either)")
    }
    if c.format != "swap" && c.format != "f2fs" && c.format != "vfat" {
      try roundTrip(image, c, script: script, expected: expected, dir: dir)
    }
    // Determinism: a second build gives the same bytes.
    if c.reproducible {
      let again = try build(recipe(format: c.format, tarball: tarball), dir, name: "two")
      #expect(try CLI.filesEqual(image, again), "\(c.format): two builds differ")
    }
  }

  /// Extracts `image` with the reader inside one `fakeroot` session and compares the manifest of
  /// the extracted tree with the input's, leaving out what the reader cannot carry; then checks
  /// those features another way where the format holds them.
  func readBack(_ image: String, _ c: Case, reader: Reader, script: String, dir: String) throws {
    guard available(reader.tool) else { return }
    let flags = c.inputFlags + c.scanFlags + reader.flags
    let wanted = try CLI.tool("python3", [script, "make", dir + "/wanted.tar"] + flags)
    let out = dir + "/extracted"
    try? FileManager.default.removeItem(atPath: out)
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(atPath: out) }
    let session = try CLI.tool(
      "fakeroot",
      [
        "--", "/bin/sh", "-c", reader.command + #" && shift 2 && exec python3 "$@""#, "sh", image,
        out, script, "scan", out,
      ] + flags)
    #expect(session.status == 0, "\(reader.tool): \(session.stderr)")
    #expect(
      session.stdout == wanted.stdout,
      "\(c.format) read back by \(reader.tool) differs:\n\(session.stdout)\nwanted:\n\(wanted.stdout)"
    )
    if reader.tool == "debugfs" { try readerExtras(image, c) }
  }

  /// What `debugfs rdump` does not extract, asked of debugfs directly: the setuid bit and the
  /// hard link (`stat`), the xattr (`ea_get`), the device number, the fifo and the root's mtime.
  func readerExtras(_ image: String, _ c: Case) throws {
    let root = try CLI.tool("debugfs", ["-R", "stat /", image]).stdout
    #expect(root.contains(" mtime: 0x5f5e1000"), "root mtime is not 1600000000: \(root)")
    let su = try CLI.tool("debugfs", ["-R", "stat /usr/bin/su", image]).stdout
    #expect(su.contains("Mode:  04755") && su.contains("Links: 2 "), "\(su)")
    let link = try CLI.tool("debugfs", ["-R", "stat /usr/bin/su-link", image]).stdout
    #expect(
      su.split(separator: "\n").first == link.split(separator: "\n").first,
      "su and su-link are not one inode:\n\(su)\n\(link)")
    let xattr = try CLI.tool(
      "debugfs", ["-R", "ea_get /home/user/notes.txt user.comment", image]
    ).stdout
    #expect(xattr.contains("kept"), "\(xattr)")
    let null = try CLI.tool("debugfs", ["-R", "stat /dev/null", image]).stdout
    #expect(
      null.contains("Type: character special") && null.contains("major/minor number: 01:03"),
      "\(null)")
    let fifo = try CLI.tool("debugfs", ["-R", "stat /dev/initctl", image]).stdout
    #expect(fifo.contains("Type: FIFO"), "\(fifo)")
  }

  func roundTrip(_ image: String, _ c: Case, script: String, expected: String, dir: String) throws {
    guard getuid() == 0 else {
      print("skipping the \(c.format) read-back: a loop mount needs root")
      return
    }
    let filesystems = (try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8)) ?? ""
    guard filesystems.contains("\t\(c.format)\n") else {
      print("skipping the \(c.format) read-back: the kernel has no \(c.format) driver")
      return
    }
    let mountPoint = dir + "/mnt"
    try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
    let mount = try CLI.tool("mount", ["-t", c.format, "-o", "loop,ro", image, mountPoint])
    guard mount.status == 0 else {
      print("skipping the \(c.format) read-back: mount failed: \(mount.stderr)")
      return
    }
    defer { _ = try? CLI.tool("umount", [mountPoint]) }
    let scan = try CLI.tool("python3", [script, "scan", mountPoint] + c.inputFlags + c.scanFlags)
    #expect(scan.status == 0, "\(scan.stderr)")
    #expect(
      scan.stdout == expected,
      "\(c.format) read back differs:\n\(scan.stdout)\nwanted:\n\(expected)")
  }

  /// vfat from every kind of content layer (a tarball, a host directory, an inline file, a
  /// template, MakeDirectories=): blkid, fsck.vfat, VolumeLabel= and MakeFileSystemOptions=
  /// (cluster size) reach mkfs.vfat, mcopy reads every file back unchanged (a long name too),
  /// a file without write bits is read-only, every entry carries SOURCE_DATE_EPOCH, and two builds
  /// are byte-identical.
  @Test func vfatFromEveryLayerKind() throws {
    guard available("mkfs.vfat"), available("mcopy"), available("blkid"), available("python3")
    else { return }
    let dir = try CLI.temporaryDirectory("fs-vfat")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var files: [String: Data] = [:]
    for d in ["EFI/BOOT", "data/many"] {
      try FileManager.default.createDirectory(
        atPath: dir + "/esp/" + d, withIntermediateDirectories: true)
    }
    files["EFI/BOOT/BOOTX64.EFI"] = pseudoRandom(count: 70_000)
    files["data/Mixed Case.txt"] = Data("long name\n".utf8)
    for i in 0..<50 { files["data/many/f\(i).txt"] = Data("file \(i)\n".utf8) }
    for (path, data) in files where path.hasPrefix("EFI") || path.hasPrefix("data") {
      try data.write(to: URL(fileURLWithPath: dir + "/esp/" + path))
    }
    // A tarball with a read-only file and an owner FAT does not keep.
    let tarScript = """
      import io, tarfile, sys
      with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
          for name, mode, data in [("loader", 0o755, None), ("loader/entries", 0o755, None),
                                   ("loader/entries/a.conf", 0o444, b"title A\\n")]:
              i = tarfile.TarInfo(name); i.mode = mode; i.uid = 1000; i.mtime = 1600000000
              if data is None: i.type = tarfile.DIRTYPE; t.addfile(i)
              else: i.size = len(data); t.addfile(i, io.BytesIO(data))
      """
    try tarScript.write(toFile: dir + "/tar.py", atomically: true, encoding: .utf8)
    #expect(try CLI.tool("python3", [dir + "/tar.py", dir + "/loader.tar"]).status == 0)
    files["loader/entries/a.conf"] = Data("title A\n".utf8)
    try FileManager.default.createDirectory(
      atPath: dir + "/Templates", withIntermediateDirectories: true)
    try "default {{image_name}}-a.conf\ntimeout 3\n".write(
      toFile: dir + "/Templates/loader.conf.mustache", atomically: true, encoding: .utf8)
    files["loader/loader.conf"] = Data("default rt-a.conf\ntimeout 3\n".utf8)
    files["etc/hostname"] = Data("rose\n".utf8)
    let text = """
      [Image]
      Name=rt
      SourceDateEpoch=\(Self.epoch)
      [Partition]
      Type=esp
      Label=data
      Format=vfat
      VolumeLabel=BOOT
      MakeFileSystemOptions=-s 8
      SizeMinBytes=64M
      SizeMaxBytes=64M
      Tarball=loader.tar
      Directory=esp:/
      Template=loader.conf.mustache:/loader/loader.conf
      Inline=/etc/hostname:rose\\n
      MakeDirectories=/EFI/Linux
      [Output]
      Formats=raw split

      """
    let image = try build(text, dir, name: "one")
    let probe = try CLI.tool("blkid", ["-p", "-o", "export", image])
    #expect(probe.stdout.contains("TYPE=vfat\n"), "\(probe.stdout)")
    #expect(probe.stdout.contains("LABEL=BOOT\n"), "\(probe.stdout)")
    if available("fsck.vfat") {
      let fsck = try CLI.tool("fsck.vfat", ["-n", image])
      #expect(fsck.status == 0, "\(fsck.stdout)")
    }
    let mtools = ["MTOOLS_SKIP_CHECK": "1", "TZ": "UTC", "LC_ALL": "C.UTF-8"]
    let info = try CLI.run("/usr/bin/minfo", ["-i", image, "::"], environment: mtools)
    #expect(info.stdout.contains("cluster size: 8 sectors"), "\(info.stdout)")
    let out = dir + "/back"
    let copy = try CLI.run(
      "/usr/bin/mcopy", ["-s", "-n", "-m", "-i", image, "::/", out], environment: mtools)
    #expect(copy.status == 0, "\(copy.stderr)")
    for (path, data) in files {
      #expect(FileManager.default.contents(atPath: out + "/" + path) == data, "\(path)")
      let attributes = try? FileManager.default.attributesOfItem(atPath: out + "/" + path)
      let mtime = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970
      #expect(mtime == TimeInterval(Self.epoch), "\(path): mtime \(mtime ?? -1)")
    }
    var isDirectory: ObjCBool = false
    #expect(
      FileManager.default.fileExists(atPath: out + "/EFI/Linux", isDirectory: &isDirectory)
        && isDirectory.boolValue)
    let attributes = try CLI.run(
      "/usr/bin/mattrib", ["-i", image, "::/loader/entries/a.conf", "::/loader/loader.conf"],
      environment: mtools)
    let lines = attributes.stdout.split(separator: "\n")
    #expect(lines.count == 2 && lines[0].contains("R") && !lines[1].contains("R"), "\(lines)")
    let again = try build(text, dir, name: "two")
    #expect(try CLI.filesEqual(image, again), "vfat: two builds differ")
  }

  /// What FAT cannot hold is refused by entry: a symlink, two names that differ only in case, a
  /// character FAT names cannot have, and a non-ASCII name (which mtools would upper-case).
  @Test func vfatRefusesSymlinksAndCaseClashes() throws {
    guard available("mkfs.vfat"), available("mcopy") else { return }
    let dir = try CLI.temporaryDirectory("fs-vfat-refuse")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    for (content, line, message) in [
      ("Symlink=/EFI/link:target", 8, "/EFI/link: Format=vfat cannot hold a symlink"),
      (
        // The clash is between two directories: named at the partition's header.
        "Inline=/EFI/a.conf:a\nInline=/efi/b.conf:b", 4,
        "/efi: Format=vfat cannot hold a name that differs from /EFI only in case"
      ),
      (
        "Inline=/EFI/a?.conf:a", 8,
        "/EFI/a?.conf: Format=vfat cannot hold this name (the character ?)"
      ),
      ("Inline=/EFI/café.conf:a", 8, "Format=vfat cannot hold this name (a non-ASCII character"),
    ] {
      let text = """
        [Image]
        Name=rt
        SourceDateEpoch=\(Self.epoch)
        [Partition]
        Type=esp
        Label=esp
        Format=vfat
        \(content)

        """
      try text.write(toFile: dir + "/r.conf", atomically: true, encoding: .utf8)
      let result = try CLI.rosepack(["build", dir + "/r.conf", "-o", dir + "/out", "-q"])
      #expect(result.status != 0)
      #expect(result.stderr.contains("r.conf:\(line):"), "\(result.stderr)")
      #expect(result.stderr.contains(message), "\(result.stderr)")
    }
  }

  /// What a format cannot hold is refused with the partition's recipe line and the entry.
  @Test func refusesWhatAFormatCannotHold() throws {
    guard available("fakeroot"), available("python3") else { return }
    let dir = try CLI.temporaryDirectory("fs-refuse")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let script = dir + "/tree.py"
    try Self.treeScript.write(toFile: script, atomically: true, encoding: .utf8)
    _ = try CLI.tool("python3", [script, "make", dir + "/in.tar"])
    for (format, entry, what) in [
      ("xfs", "/home/user/notes.txt", "the xattr user.comment"),
      ("f2fs", "/dev/initctl", "a fifo"),
      ("btrfs", "/dev/null", "a device node"),
      ("vfat", "/dev/initctl", "a fifo"),
    ] {
      try recipe(format: format, tarball: "in.tar").write(
        toFile: dir + "/r.conf", atomically: true, encoding: .utf8)
      let result = try CLI.rosepack(["build", dir + "/r.conf", "-o", dir + "/out", "-q"])
      #expect(result.status != 0)
      // The line of the Tarball= that brought the entry in.
      #expect(result.stderr.contains("r.conf:8:1: error: partition 'data': "), "\(result.stderr)")
      #expect(
        result.stderr.contains("\(entry): Format=\(format) cannot hold \(what)"), "\(result.stderr)"
      )
    }
    // Swap holds no files: refused when the recipe is read, at the content line.
    try recipe(format: "swap", tarball: "in.tar").write(
      toFile: dir + "/s.conf", atomically: true, encoding: .utf8)
    let swap = try CLI.rosepack(["build", dir + "/s.conf", "-o", dir + "/out", "-q"])
    #expect(swap.status != 0)
    #expect(swap.stderr.contains("s.conf:8:"), "\(swap.stderr)")
    #expect(swap.stderr.contains("not allowed with Format=swap"), "\(swap.stderr)")
  }

  /// Compression= and a fixed size reach the tools; a partition too small is named.
  @Test func compressionAndSizes() throws {
    guard available("fakeroot"), available("python3"), available("mksquashfs"),
      available("mkfs.erofs")
    else { return }
    let dir = try CLI.temporaryDirectory("fs-compress")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let script = dir + "/tree.py"
    try Self.treeScript.write(toFile: script, atomically: true, encoding: .utf8)
    _ = try CLI.tool("python3", [script, "make", dir + "/in.tar"])
    let squashfs = try build(
      recipe(format: "squashfs", tarball: "in.tar").replacingOccurrences(
        of: "Tarball=", with: "Compression=xz\nTarball="), dir, name: "sq")
    let info = try CLI.tool("unsquashfs", ["-s", squashfs])
    #expect(info.stdout.contains("Compression xz"), "\(info.stdout)")
    let erofs = try build(
      recipe(format: "erofs", tarball: "in.tar").replacingOccurrences(
        of: "Tarball=", with: "Compression=lz4hc\nCompressionLevel=9\nTarball="), dir, name: "er")
    #expect(try CLI.tool("fsck.erofs", [erofs]).status == 0)
    // An ext4 of a fixed size too small for the content (3 MiB of data in 2 MiB).
    let big = pseudoRandom(count: 3 << 20)
    try big.write(to: URL(fileURLWithPath: dir + "/big"))
    let small = recipe(format: "ext4", tarball: "in.tar").replacingOccurrences(
      of: "Tarball=", with: "SizeMinBytes=2M\nSizeMaxBytes=2M\nFile=big:/big\nTarball=")
    try small.write(toFile: dir + "/small.conf", atomically: true, encoding: .utf8)
    let result = try CLI.rosepack(["build", dir + "/small.conf", "-o", dir + "/small", "-q"])
    #expect(result.status != 0)
    #expect(result.stderr.contains("partition 'data' needs"), "\(result.stderr)")
  }

  func pseudoRandom(count: Int) -> Data {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    var bytes = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
    }
    return Data(bytes)
  }

  /// The reference tree (python3's tarfile writes it; `scan` reads a mounted copy back).
  static let treeScript = #"""
    import hashlib, os, stat, sys, tarfile, io

    def spec(flags):
        E = []  # (path, type, mode, uid, gid, data/target, rdev, xattrs, mtime)
        E.append(("", "d", 0o755, 0, 0, None, None, {}, 1600000000))
        E.append(("etc", "d", 0o755, 0, 0, None, None, {}, 1600000001))
        E.append(("etc/hostname", "f", 0o644, 0, 0, b"rose\n", None, {}, 1600000002))
        E.append(("home", "d", 0o755, 0, 0, None, None, {}, 1600000003))
        E.append(("home/user", "d", 0o750, 1000, 1000, None, None, {}, 1600000004))
        E.append(("home/user/notes.txt", "f", 0o600, 1000, 1000, bytes(range(256)) * 40 + b"tail", None,
                  {} if "noxattr" in flags else {"user.comment": b"kept"}, 1600000005))
        E.append(("usr", "d", 0o755, 0, 0, None, None, {}, 1600000006))
        E.append(("usr/bin", "d", 0o755, 0, 0, None, None, {}, 1600000007))
        E.append(("usr/bin/su", "f", 0o4755, 0, 0, b"\x7fELF" + b"x" * 5000, None, {}, 1600000008))
        if "nohardlink" not in flags:
            E.append(("usr/bin/su-link", "h", 0o4755, 0, 0, "usr/bin/su", None, {}, 1600000008))
        if "nosymlink" not in flags:
            E.append(("usr/bin/sh", "l", 0o777, 0, 0, "../../bin/dash", None, {}, 1600000009))
        if "nodevice" not in flags:
            E.append(("dev", "d", 0o755, 0, 0, None, None, {}, 1600000010))
            E.append(("dev/null", "c", 0o666, 0, 0, None, (1, 3), {}, 1600000011))
            E.append(("dev/initctl", "p", 0o600, 0, 0, None, None, {}, 1600000012))
        E.append(("empty", "f", 0o644, 0, 0, b"", None, {}, 1600000013))
        E.append(("big.bin", "f", 0o644, 0, 0, hashlib.sha256(b"seed").digest() * 4000, None, {}, 1600000014))
        return E

    def make(path, flags):
        E = spec(flags)
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
            for (p, kind, mode, uid, gid, data, rdev, xattrs, mtime) in E:
                i = tarfile.TarInfo("./" + p if p else ".")
                i.mode, i.uid, i.gid, i.mtime = mode, uid, gid, mtime
                i.uname = i.gname = ""
                if xattrs:
                    i.pax_headers = {"SCHILY.xattr." + k: v.decode() for k, v in xattrs.items()}
                if kind == "d": i.type = tarfile.DIRTYPE; t.addfile(i)
                elif kind == "f": i.size = len(data); t.addfile(i, io.BytesIO(data))
                elif kind == "h": i.type = tarfile.LNKTYPE; i.linkname = "./" + data; t.addfile(i)
                elif kind == "l": i.type = tarfile.SYMTYPE; i.linkname = data; t.addfile(i)
                elif kind == "c": i.type = tarfile.CHRTYPE; i.devmajor, i.devminor = rdev; t.addfile(i)
                elif kind == "p": i.type = tarfile.FIFOTYPE; t.addfile(i)
        lines = []
        first = {}
        for (p, kind, mode, uid, gid, data, rdev, xattrs, mtime) in E:
            if kind == "h":
                src = [e for e in E if e[0] == data][0]
                kind, data = "f", src[5]
                link = data_path = src[0]
            else:
                link = "-"
            lines.append(line(p, kind, mode, uid, gid, data, rdev, xattrs, mtime, link, flags))
        return lines

    def line(p, kind, mode, uid, gid, data, rdev, xattrs, mtime, link, flags):
        size = len(data) if kind == "f" else 0
        digest = hashlib.sha256(data).hexdigest()[:16] if kind == "f" else "-"
        target = data if kind == "l" else "-"
        dev = "%d,%d" % rdev if rdev else "-"
        xs = ",".join("%s=%s" % (k, v.hex()) for k, v in sorted(xattrs.items())) or "-"
        # r-* flags: what a userspace reader does not carry over (the format may hold it).
        if "r-noxattrs" in flags: xs = "-"
        if "r-nolinks" in flags: link = "-"
        fixed = [f[6:] for f in flags if f.startswith("mtime=")]
        if fixed: mtime = int(fixed[0])
        times = "-" if ("notimes" in flags or kind == "l" or (p == "" and "noroottime" in flags)
                        or (kind == "d" and "r-nodirtimes" in flags)) else str(mtime)
        owners = "-" if "noowners" in flags or "r-noowners" in flags else "%d:%d" % (uid, gid)
        perms = "-" if "nomodes" in flags else "%o" % (mode & 0o777 if "r-nosetuid" in flags else mode)
        return " ".join(["/" + p, kind, perms, owners, str(size), digest, target, dev, xs, times, link])

    def scan(root, flags):
        lines = []
        inodes = {}
        for dirpath, dirs, files in os.walk(root):
            dirs.sort(); files.sort()
            for name in ([""] if dirpath == root else []) + dirs + files:
                full = os.path.join(dirpath, name) if name else dirpath
                rel = os.path.relpath(full, root)
                rel = "" if rel == "." else rel
                if rel == "lost+found": continue
                st = os.lstat(full)
                m = st.st_mode
                kind = {stat.S_IFDIR: "d", stat.S_IFREG: "f", stat.S_IFLNK: "l", stat.S_IFCHR: "c",
                        stat.S_IFBLK: "b", stat.S_IFIFO: "p", stat.S_IFSOCK: "s"}[stat.S_IFMT(m)]
                data = open(full, "rb").read() if kind == "f" else (os.readlink(full) if kind == "l" else None)
                rdev = (os.major(st.st_rdev), os.minor(st.st_rdev)) if kind in "cb" else None
                xattrs = {}
                if kind in "fd":
                    for k in os.listxattr(full, follow_symlinks=False):
                        if k.startswith("user."): xattrs[k] = os.getxattr(full, k, follow_symlinks=False)
                link = "-"
                if kind == "f" and st.st_nlink > 1 and "nohardlink" not in flags:
                    link = inodes.setdefault(st.st_ino, rel)
                    if link == rel: link = "-"
                lines.append(line(rel, kind, stat.S_IMODE(m), st.st_uid, st.st_gid, data, rdev, xattrs,
                                  int(st.st_mtime), link, flags))
        return lines

    if __name__ == "__main__":
        mode, path, flags = sys.argv[1], sys.argv[2], set(sys.argv[3:])
        out = make(path, flags) if mode == "make" else scan(path, flags)
        if "r-nospecial" in flags:
            out = [l for l in out if l.split(" ")[1] not in ("c", "b", "p", "s")]
        print("\n".join(sorted(out)))
    """#
}
