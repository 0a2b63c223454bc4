import Foundation
import RoseFS
import Testing

/// Why FUSE mount tests cannot run here (nil: they can).
enum FuseSupport {
  static let unavailable: String? = {
    if getuid() != 0 {
      return "mount tests need root (FUSE mounts with allow_other-free root access)"
    }
    if access("/dev/fuse", R_OK | W_OK) != 0 { return "mount tests need a usable /dev/fuse" }
    if !FileManager.default.isExecutableFile(atPath: "/usr/bin/fusermount3") {
      return "mount tests need fusermount3 (Debian fuse3)"
    }
    return nil
  }()
  static var comment: Comment { Comment(rawValue: "skipped: \(unavailable ?? "")") }

  /// `bash -c script` (set -e -o pipefail); the result's status says whether every step passed.
  /// `same_tree A B` is `diff -r` without its complaint that special files cannot be compared (GNU
  /// tar --compare checks their types and device numbers).
  static func shell(_ script: String) throws -> CLI.Result {
    let prelude = """
      set -euo pipefail
      same_tree() {
        local out rest
        out=$(diff -r --no-dereference "$1" "$2" 2>&1 || true)
        rest=$(printf '%s\\n' "$out" | grep -v -E \\
          '^File .* is a (fifo|character special file) while file .* is a (fifo|character special file)$' \\
          | grep -v '^$' || true)
        if [ -n "$rest" ]; then printf '%s\\n' "$rest"; return 1; fi
      }

      """
    return try CLI.run("/bin/bash", ["-c", prelude + script], environment: [:])
  }

  /// Unmounts and waits until the server has written its clean checkpoint and released the image.
  static func unmount(_ mountpoint: String, image: String) throws {
    let r = try CLI.tool("fusermount3", ["-u", mountpoint])
    #expect(r.status == 0, "fusermount3 -u: \(r.stderr)")
    let fd = open(image, O_RDONLY)
    defer { close(fd) }
    for _ in 0..<600 {
      if flock(fd, LOCK_EX | LOCK_NB) == 0 { return }
      usleep(50_000)
    }
    throw TestFailure("\(image): the mount server did not exit within 30 s of the unmount")
  }
}

/// `rosepack mount` and `rosepack update`, checked with tools nobody here wrote: diff, GNU tar,
/// fio, stress-ng, cp, setfacl/getfacl, python's renameat2, and then `rosepack fsck` and `export`.
@Suite(.serialized) struct MountCLITests {
  /// A tree with every kind of entry: data, a sparse file, hard links, symlinks, xattrs, a fifo, a
  /// device node, a 255-byte name, an empty directory, nanosecond times.
  func makeTree(_ dir: String) throws {
    let script = """
      mkdir -p '\(dir)/usr/bin' '\(dir)/etc/empty' '\(dir)/var/lib'
      printf 'NAME=rose\\n' > '\(dir)/etc/os-release'
      head -c 3000000 /dev/urandom > '\(dir)/usr/bin/big'
      head -c 5000 /dev/urandom > '\(dir)/usr/bin/small'
      truncate -s 9000000 '\(dir)/var/lib/sparse'
      printf 'mid' | dd of='\(dir)/var/lib/sparse' bs=1 seek=4500000 conv=notrunc status=none
      ln '\(dir)/usr/bin/small' '\(dir)/usr/bin/small-link'
      ln -s ../usr/bin/big '\(dir)/etc/big-link'
      setfattr -n user.origin -v rose '\(dir)/etc/os-release'
      mkfifo '\(dir)/var/lib/fifo'
      mknod '\(dir)/var/lib/null' c 1 3
      touch '\(dir)/var/lib/'$(printf 'n%.0s' $(seq 255))
      chmod 4755 '\(dir)/usr/bin/big'
      touch -h -d '2001-02-03 04:05:06.123456789' '\(dir)/etc/os-release' '\(dir)/etc/big-link'
      """
    let r = try FuseSupport.shell(script)
    guard r.status == 0 else { throw TestFailure("making the test tree: \(r.stderr)") }
  }

  @Test(.enabled(if: FuseSupport.unavailable == nil, FuseSupport.comment))
  func readOnlyMountShowsTheExportedTree() throws {
    let dir = try CLI.temporaryDirectory("mount-ro")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try makeTree(dir + "/src")
    let img = dir + "/x.img"
    #expect(try CLI.rosepack(["convert", dir + "/src", "-o", img]).status == 0)
    try FileManager.default.createDirectory(atPath: dir + "/mnt", withIntermediateDirectories: true)
    let m = try CLI.rosepack(["mount", "--read-only", img, dir + "/mnt"])
    #expect(m.status == 0, "\(m.stderr)")
    guard m.status == 0 else { return }
    let check = try FuseSupport.shell(
      """
      cd '\(dir)'
      same_tree src mnt
      # GNU tar compares modes, owners, times, sizes, contents and link targets.
      tar --numeric-owner -C src -cf src.tar .
      tar --numeric-owner -C mnt -df src.tar
      getfattr -n user.origin --only-values mnt/etc/os-release | grep -qx rose
      stat -c '%h %y' mnt/usr/bin/small | grep -q '^2 '
      stat -c '%y' mnt/etc/os-release | grep -q '04:05:06.123456789'
      stat -c '%t,%T' mnt/var/lib/null | grep -qx '1,3'
      if touch mnt/new 2>err; then echo 'a write succeeded on a read-only mount'; exit 1; fi
      grep -q 'Read-only file system' err
      """)
    try FuseSupport.unmount(dir + "/mnt", image: img)
    #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
  }

  @Test(.enabled(if: FuseSupport.unavailable == nil, FuseSupport.comment))
  func readWriteMountWithRealTools() throws {
    let dir = try CLI.temporaryDirectory("mount-rw")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try makeTree(dir + "/src")
    let img = dir + "/x.img"
    #expect(try CLI.rosepack(["convert", dir + "/src", "-o", img, "--size", "128M"]).status == 0)
    try FileManager.default.createDirectory(atPath: dir + "/mnt", withIntermediateDirectories: true)
    let m = try CLI.rosepack(["mount", img, dir + "/mnt"])
    #expect(m.status == 0, "\(m.stderr)")
    guard m.status == 0 else { return }
    let renames = """
      import ctypes, errno, os, sys
      libc = ctypes.CDLL(None, use_errno=True)
      def renameat2(a, b, flags):
          if libc.renameat2(-100, a.encode(), -100, b.encode(), flags) != 0:
              return ctypes.get_errno()
          return 0
      os.chdir(sys.argv[1])
      open('r1', 'w').write('one'); open('r2', 'w').write('two')
      assert renameat2('r1', 'r2', 1) == errno.EEXIST          # RENAME_NOREPLACE
      assert renameat2('r1', 'r2', 2) == 0                     # RENAME_EXCHANGE
      assert open('r1').read() == 'two' and open('r2').read() == 'one'
      os.rename('r1', 'r2')                                    # over an existing entry
      assert open('r2').read() == 'two' and not os.path.exists('r1')
      os.mkdir('d1'); open('d1/f', 'w').write('x'); os.mkdir('d2')
      os.rename('d1', 'd2')                                    # a directory over an empty one
      assert open('d2/f').read() == 'x'
      """
    let steps = try FuseSupport.shell(
      """
      cd '\(dir)'
      cp -a src mnt/copy
      same_tree src mnt/copy
      tar --numeric-owner -C src -cf src.tar .
      tar --numeric-owner -C mnt/copy -df src.tar
      fio --name=verify --directory=mnt --size=4M --bsrange=512-64k --rw=randwrite \
        --verify=crc32c --verify_fatal=1 --ioengine=psync --output=fio.log
      grep -q 'err= 0' fio.log
      # fallocate(1) punching a hole and zeroing a range (past the end: the file grows); the
      # expected bytes are made with dd, and the blocks covered whole are freed (1 MiB = 2048
      # sectors; 72 whole blocks lie in 5000..<305000).
      head -c 1048576 /dev/urandom > mnt/punch && cp mnt/punch punch.want
      test "$(stat -c %b mnt/punch)" = 2048
      fallocate -p -o 5000 -l 300000 mnt/punch
      dd if=/dev/zero of=punch.want bs=1 seek=5000 count=300000 conv=notrunc status=none
      cmp mnt/punch punch.want
      test "$(stat -c '%b %s' mnt/punch)" = '1472 1048576'
      fallocate -z -o 1040000 -l 20000 mnt/punch
      dd if=/dev/zero of=punch.want bs=1 seek=1040000 count=20000 conv=notrunc status=none
      cmp mnt/punch punch.want
      mkdir mnt/stress
      # Bounded: a stuck server fails the step instead of hanging the suite. The link and symlink
      # stressors grow one directory to thousands of names (8,192 per round) and remove them; each
      # stops its round at the 5 s timeout and then removes what it made. The test runner's threads
      # block SIGALRM, which children inherit, and stress-ng's --timeout is a SIGALRM: python
      # unblocks it before starting stress-ng.
      timeout 120 python3 -c 'import os, signal, sys
      signal.pthread_sigmask(signal.SIG_SETMASK, [])
      os.execvp(sys.argv[1], sys.argv[1:])' stress-ng --temp-path mnt/stress --dir 1 --dir-ops 20 --rename 1 --rename-ops 100 \
        --xattr 1 --xattr-ops 50 --link 1 --link-ops 1 --symlink 1 --symlink-ops 1 --timeout 5s \
        --quiet
      rm -rf mnt/stress
      python3 - mnt <<'PY'
      \(renames)
      PY
      echo hi > mnt/h1 && ln mnt/h1 mnt/h2 && test "$(stat -c %h mnt/h1)" = 2
      rm mnt/h1 && test "$(cat mnt/h2)" = hi && test "$(stat -c %h mnt/h2)" = 1
      # A file unlinked while open stays readable and writable through its descriptor; its hidden
      # name goes with the last close (the release reaches the server after close returns).
      python3 - mnt <<'PY'
      import os, sys, time
      d = sys.argv[1]
      p = os.path.join(d, "open-unlinked")
      fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
      os.write(fd, b"still here")
      os.unlink(p)
      assert not os.path.exists(p)
      os.lseek(fd, 0, 0)
      assert os.read(fd, 100) == b"still here"
      os.write(fd, b"!")
      os.close(fd)
      for _ in range(50):
          if not any(n.startswith(".rosepack_hidden_") for n in os.listdir(d)):
              break
          time.sleep(0.1)
      else:
          sys.exit("hidden file left after the last close: %s" % os.listdir(d))
      PY
      setfattr -n user.k -v v1 mnt/h2 && getfattr -n user.k --only-values mnt/h2 | grep -qx v1
      setfattr -x user.k mnt/h2 && ! getfattr -n user.k mnt/h2 2>/dev/null
      touch mnt/acl && chmod 644 mnt/acl && setfacl -m u:1234:rw mnt/acl
      getfacl -cp mnt/acl | grep -qx 'user:1234:rw-'
      test "$(stat -c %a mnt/acl)" = 664
      mkdir mnt/inherit && setfacl -d -m u:1234:rwx mnt/inherit && touch mnt/inherit/child
      getfacl -cp mnt/inherit/child | grep -q '^user:1234:rwx'
      truncate -s 10000 mnt/h2 && test "$(stat -c %s mnt/h2)" = 10000
      truncate -s 1 mnt/h2 && test "$(cat mnt/h2)" = h
      touch -d '1999-12-31 23:59:59.987654321' mnt/h2
      stat -c %y mnt/h2 | grep -q '23:59:59.987654321'
      mknod mnt/dev c 4 64 && stat -c '%t,%T' mnt/dev | grep -qx '4,40'
      df mnt | grep -q mnt
      rm -rf copy-of-mount && cp -a mnt copy-of-mount
      """)
    try FuseSupport.unmount(dir + "/mnt", image: img)
    #expect(steps.status == 0, "\(steps.stdout)\(steps.stderr)")
    let fsck = try CLI.rosepack(["fsck", img])
    #expect(fsck.status == 0, "\(fsck.stderr)")
    #expect(try CLI.rosepack(["export", img, "-o", dir + "/out.tar"]).status == 0)
    let same = try FuseSupport.shell(
      """
      cd '\(dir)' && mkdir out && tar --numeric-owner --xattrs -C out -xf out.tar
      same_tree copy-of-mount out
      # Known gap (issue 6, FORMAT.md item 7): how `export` maps an access ACL's mask back to the
      # tar mode is not settled yet, so the two ACL'd files are compared by content only.
      tar --numeric-owner --xattrs -C copy-of-mount -df out.tar --exclude=./acl --exclude=./inherit/child
      """)
    #expect(same.status == 0, "\(same.stdout)\(same.stderr)")
  }

  /// GNU tar extracts a real Debian root filesystem into the mount and compares it back. By default
  /// /etc and /usr/bin only (a debug build serves about 2 MB/s of small files); all of it with
  /// ROSEPACK_LONG_TESTS=1.
  @Test(.enabled(if: FuseSupport.unavailable == nil, FuseSupport.comment))
  func minbaseTarExtractAndCompare() throws {
    let minbase = CLI.repo + "/../shared/datasets/minbase.tar.zst"
    guard FileManager.default.fileExists(atPath: minbase) else {
      print("skipped: \(minbase) is absent")
      return
    }
    let members =
      ProcessInfo.processInfo.environment["ROSEPACK_LONG_TESTS"] == "1" ? "" : "./etc ./usr/bin"
    let dir = try CLI.temporaryDirectory("mount-minbase")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try FileManager.default.createDirectory(
      atPath: dir + "/empty", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: dir + "/mnt", withIntermediateDirectories: true)
    let img = dir + "/x.img"
    #expect(try CLI.rosepack(["convert", dir + "/empty", "-o", img, "--size", "512M"]).status == 0)
    let m = try CLI.rosepack(["mount", img, dir + "/mnt"])
    #expect(m.status == 0, "\(m.stderr)")
    guard m.status == 0 else { return }
    let r = try FuseSupport.shell(
      """
      tar --zstd --numeric-owner -xpf '\(minbase)' -C '\(dir)/mnt' \(members)
      tar --zstd --numeric-owner -df '\(minbase)' -C '\(dir)/mnt' \(members)
      """)
    try FuseSupport.unmount(dir + "/mnt", image: img)
    #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    let fsck = try CLI.rosepack(["fsck", img])
    #expect(fsck.status == 0, "\(fsck.stderr)")
  }

  @Test(.enabled(if: FuseSupport.unavailable == nil, FuseSupport.comment))
  func mountErrorsAreOneLine() throws {
    let dir = try CLI.temporaryDirectory("mount-errors")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = FileManager.default.createFile(atPath: dir + "/junk", contents: Data(count: 8192))
    try FileManager.default.createDirectory(atPath: dir + "/mnt", withIntermediateDirectories: true)
    let notRose = try CLI.rosepack(["mount", dir + "/junk", dir + "/mnt"])
    #expect(notRose.status == 1)
    #expect(notRose.stderr.contains("neither a RoseFS image"), "\(notRose.stderr)")
    #expect(notRose.stderr.split(separator: "\n").count == 1)
    let noDir = try CLI.rosepack(["mount", dir + "/junk", dir + "/missing"])
    #expect(noDir.status == 1)
    #expect(noDir.stderr.contains("not an existing directory"), "\(noDir.stderr)")
  }

  /// Hashes of the blocks subvolume `name` reaches for file data, tails and inode pages.
  func blockHashes(_ img: String, subvolume name: String) throws -> [UInt32: [UInt8]] {
    let file = try ImageFile(openPath: img)
    let reader = try ImageReader(image: file)
    let head = try reader.headIndex(named: name)
    var blocks = Set<UInt32>()
    var stack = [try reader.loadTree(head: head)]
    var seen = Set<ObjectIdentifier>()
    while let node = stack.popLast() {
      guard seen.insert(ObjectIdentifier(node)).inserted else { continue }
      blocks.insert(try reader.nat(node.ino / UInt32(RoseLayout.inodesPerPage), head: head))
      for e in node.content.extents {
        for i in 0..<e.count { blocks.insert(e.physical + i) }
      }
      if let t = node.content.tail { blocks.insert(t.block) }
      stack += node.children.values
    }
    var out: [UInt32: [UInt8]] = [:]
    for b in blocks { out[b] = try file.readBlock(b) }
    return out
  }

  @Test func updateSlotBLeavesSlotAAndPingPongs() throws {
    let dir = try CLI.temporaryDirectory("update")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try makeTree(dir + "/v1")
    let prepare = try FuseSupport.shell(
      """
      cd '\(dir)'
      cp -a v1 v2
      printf 'changed' | dd of=v2/usr/bin/big bs=1 seek=1000000 conv=notrunc status=none
      echo more >> v2/etc/os-release
      rm v2/usr/bin/small-link && mkdir v2/opt && echo new > v2/opt/new
      chmod 700 v2/etc/empty && setfattr -n user.v -v 2 v2/opt/new
      cp -a v2 v3 && rm -r v3/var && echo three > v3/opt/new
      tar --numeric-owner --xattrs -C v2 -cf v2.tar .
      """)
    #expect(prepare.status == 0, "\(prepare.stderr)")
    let img = dir + "/ab.img"
    #expect(
      try CLI.rosepack(["convert", dir + "/v1", "-o", img, "--subvolumes", "a,b", "--size", "64M"])
        .status == 0)
    #expect(
      try CLI.rosepack(["export", img, "--subvolume", "a", "-o", dir + "/a0.tar"]).status == 0)
    let aBlocks = try blockHashes(img, subvolume: "a")

    // B := the tarball v2.tar (GNU tar wrote it).
    let u = try CLI.rosepack(["update", img, "--slot", "b", dir + "/v2.tar", "--json"])
    #expect(u.status == 0, "\(u.stderr)")
    let json = try JSONSerialization.jsonObject(with: u.stdoutData) as? [String: Any]
    let written = try #require(json?["dataBytesWritten"] as? Int)
    let content = try #require(json?["contentBytes"] as? Int)
    // Two blocks of big, the tail of os-release and opt/new: far less than the content.
    #expect(written > 0 && written <= 4 * 4096, "\(u.stdout)")
    #expect(content > 3_000_000)
    #expect(json?["changedFiles"] as? Int == 2, "\(u.stdout)")
    #expect(try CLI.rosepack(["fsck", img]).status == 0)
    #expect(
      try CLI.rosepack(["export", img, "--subvolume", "a", "-o", dir + "/a1.tar"]).status == 0)
    #expect(try CLI.filesEqual(dir + "/a0.tar", dir + "/a1.tar"), "slot a's export changed")
    #expect(try blockHashes(img, subvolume: "a") == aBlocks, "a block slot a reaches was rewritten")
    #expect(
      try CLI.rosepack(["export", img, "--subvolume", "b", "-o", dir + "/b.tar"]).status == 0)
    let b = try FuseSupport.shell(
      """
      cd '\(dir)' && mkdir b && tar --numeric-owner --xattrs -C b -xf b.tar
      same_tree v2 b
      tar --numeric-owner --xattrs -C b -df v2.tar
      getfattr -n user.v --only-values b/opt/new | grep -qx 2
      """)
    #expect(b.status == 0, "\(b.stdout)\(b.stderr)")

    // Ping-pong: A := v3 from B, made the default; B stays what it was.
    #expect(
      try CLI.rosepack(["export", img, "--subvolume", "b", "-o", dir + "/b0.tar"]).status == 0)
    let bBlocks = try blockHashes(img, subvolume: "b")
    let back = try CLI.rosepack([
      "update", img, "--slot", "a", "--from", "b", dir + "/v3", "--set-default",
    ])
    #expect(back.status == 0, "\(back.stderr)")
    #expect(back.stdout.contains("a is now the default"), "\(back.stdout)")
    #expect(try CLI.rosepack(["fsck", img]).status == 0)
    #expect(
      try CLI.rosepack(["export", img, "--subvolume", "b", "-o", dir + "/b1.tar"]).status == 0)
    #expect(try CLI.filesEqual(dir + "/b0.tar", dir + "/b1.tar"), "slot b's export changed")
    #expect(try blockHashes(img, subvolume: "b") == bBlocks)
    #expect(try CLI.rosepack(["export", img, "-o", dir + "/a.tar"]).status == 0)
    let a = try FuseSupport.shell(
      "cd '\(dir)' && mkdir a && tar --numeric-owner -C a -xf a.tar && same_tree v3 a")
    #expect(a.status == 0, "\(a.stdout)\(a.stderr)")
  }
}
