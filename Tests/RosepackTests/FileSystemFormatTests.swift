import Foundation
import Testing

/// Every `Format=` RoseMkfs makes, built from a recipe with a small varied tree (directories,
/// files, a hard link, a symlink, a device node, a fifo, owners 0 and 1000, setuid, an xattr,
/// mtimes) and checked with the format's own tools: `blkid -p` names the type and label, the
/// format's fsck passes, the content read back (a read-only loop mount when the test runs as root)
/// matches the input by a manifest of path, type, mode, owner, size, content hash, link target,
/// device number, xattrs and mtime, and two builds are byte-identical where the format allows.
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
    var description: String { format }
  }

  static let cases: [Case] = [
    Case(
      format: "ext4", blkidType: "ext4", label: "data", fsck: ["e2fsck", "-fn"], inputFlags: [],
      scanFlags: [], reproducible: true),
    Case(
      format: "ext2", blkidType: "ext2", label: "data", fsck: ["e2fsck", "-fn"], inputFlags: [],
      scanFlags: [], reproducible: true),
    Case(
      format: "ext3", blkidType: "ext3", label: "data", fsck: ["e2fsck", "-fn"], inputFlags: [],
      scanFlags: [], reproducible: true),
    Case(
      format: "erofs", blkidType: "erofs", label: nil, fsck: ["fsck.erofs"], inputFlags: [],
      scanFlags: [], reproducible: true),
    Case(
      format: "squashfs", blkidType: "squashfs", label: nil, fsck: ["unsquashfs", "-s"],
      inputFlags: [], scanFlags: [], reproducible: true),
    Case(
      format: "btrfs", blkidType: "btrfs", label: "data", fsck: ["btrfs", "check"],
      inputFlags: ["nodevice"], scanFlags: ["noroottime"], reproducible: false),
    Case(
      format: "f2fs", blkidType: "f2fs", label: "data", fsck: ["fsck.f2fs", "-f"],
      inputFlags: ["noxattr", "nodevice"], scanFlags: [], reproducible: false),
    Case(
      format: "xfs", blkidType: "xfs", label: "data", fsck: ["xfs_repair", "-n", "-f"],
      inputFlags: ["noxattr", "nohardlink"], scanFlags: ["notimes"], reproducible: false),
    Case(
      format: "swap", blkidType: "swap", label: "data", fsck: ["swaplabel"], inputFlags: [],
      scanFlags: [], reproducible: true),
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
      "swap": "mkswap",
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
    // The content, read back by the kernel's driver.
    if c.format != "swap" && c.format != "f2fs" {
      try roundTrip(image, c, script: script, expected: expected, dir: dir)
    }
    // Determinism: a second build gives the same bytes.
    if c.reproducible {
      let again = try build(recipe(format: c.format, tarball: tarball), dir, name: "two")
      #expect(try CLI.filesEqual(image, again), "\(c.format): two builds differ")
    }
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

  /// vfat: blkid, fsck.vfat, VolumeLabel= and MakeFileSystemOptions= (cluster size) reach
  /// mkfs.vfat, and mcopy reads every file back unchanged.
  @Test func vfatLabelOptionsAndContent() throws {
    guard available("mkfs.vfat"), available("mcopy"), available("blkid") else { return }
    let dir = try CLI.temporaryDirectory("fs-vfat")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var files: [String: Data] = [:]
    for d in ["EFI/BOOT", "loader/entries", "data/many"] {
      try FileManager.default.createDirectory(
        atPath: dir + "/esp/" + d, withIntermediateDirectories: true)
    }
    files["EFI/BOOT/BOOTX64.EFI"] = pseudoRandom(count: 70_000)
    files["loader/loader.conf"] = Data("timeout 3\n".utf8)
    for i in 0..<50 { files["data/many/f\(i).txt"] = Data("file \(i)\n".utf8) }
    for (path, data) in files { try data.write(to: URL(fileURLWithPath: dir + "/esp/" + path)) }
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
      Directory=esp:/
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
    let info = try CLI.run(
      "/usr/bin/minfo", ["-i", image, "::"], environment: ["MTOOLS_SKIP_CHECK": "1"])
    #expect(info.stdout.contains("cluster size: 8 sectors"), "\(info.stdout)")
    let out = dir + "/back"
    let copy = try CLI.run(
      "/usr/bin/mcopy", ["-s", "-n", "-i", image, "::/", out],
      environment: ["MTOOLS_SKIP_CHECK": "1"])
    #expect(copy.status == 0, "\(copy.stderr)")
    for (path, data) in files {
      #expect(FileManager.default.contents(atPath: out + "/" + path) == data, "\(path)")
    }
    let again = try build(text, dir, name: "two")
    #expect(try CLI.filesEqual(image, again), "vfat: two builds differ")
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
    ] {
      try recipe(format: format, tarball: "in.tar").write(
        toFile: dir + "/r.conf", atomically: true, encoding: .utf8)
      let result = try CLI.rosepack(["build", dir + "/r.conf", "-o", dir + "/out", "-q"])
      #expect(result.status != 0)
      #expect(result.stderr.contains("r.conf:4:"), "\(result.stderr)")
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
        times = "-" if "notimes" in flags or kind == "l" or (p == "" and "noroottime" in flags) else str(mtime)
        owners = "-" if "noowners" in flags else "%d:%d" % (uid, gid)
        perms = "-" if "nomodes" in flags else "%o" % mode
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
        print("\n".join(sorted(out)))
    """#
}
