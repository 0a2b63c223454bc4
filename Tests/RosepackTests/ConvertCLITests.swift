import Foundation
import Testing

/// `rosepack convert` and the read commands, run as a user would: exit codes, one-line errors, no
/// output left behind on failure, byte-identical rebuilds, and what fsck, ls, cat and export say.
@Suite struct ConvertCLITests {
  /// A small tree with a tarball of it (made by GNU tar, an independent writer).
  func makeInput(_ dir: String) throws -> String {
    let script = """
      set -e
      mkdir -p '\(dir)/src/etc' '\(dir)/src/usr/bin' '\(dir)/src/lib'
      printf 'NAME=rose\\n' > '\(dir)/src/etc/os-release'
      head -c 10000 /dev/zero | tr '\\0' 'x' > '\(dir)/src/usr/bin/tool'
      chmod 4755 '\(dir)/src/usr/bin/tool'
      ln -s ../usr/bin/tool '\(dir)/src/lib/tool-link'
      ln -s /etc/os-release '\(dir)/src/os-release'
      tar --format=pax --numeric-owner --mtime=@1600000000 -C '\(dir)/src' -cf '\(dir)/in.tar' .
      """
    _ = try CLI.run("/bin/bash", ["-c", script], environment: [:])
    return dir + "/in.tar"
  }

  @Test func convertFsckLsCatExport() throws {
    let dir = try CLI.temporaryDirectory("convert")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let tar = try makeInput(dir)
    let img = dir + "/x.img"
    let r = try CLI.rosepack(["convert", tar, "-o", img, "--subvolumes", "a,b", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let json = try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any]
    #expect((json?["report"] as? [String: Any])?["inodeCount"] as? Int == 9)
    #expect(try CLI.rosepack(["fsck", img]).status == 0)
    let ls = try CLI.rosepack(["ls", img, "/usr/bin", "-l"])
    #expect(ls.stdout.contains("-rwsr-xr-x 1 0 0 10000 2020-09-13T12:26:40Z tool"), "\(ls.stdout)")
    // cat follows symlinks, relative and absolute, as the kernel would.
    #expect(try CLI.rosepack(["cat", img, "/os-release"]).stdout == "NAME=rose\n")
    #expect(
      try CLI.rosepack(["cat", img, "/lib/tool-link", "--subvolume", "b"]).stdout.count == 10000)
    let inspect = try CLI.rosepack(["inspect", img, "--json"])
    let report = try JSONSerialization.jsonObject(with: inspect.stdoutData) as? [String: Any]
    let used = try #require(report?["usedBytes"] as? Int)
    #expect(used > 65536 && used < 65536 + 16 * 4096)
    let out = dir + "/out.tar"
    #expect(try CLI.rosepack(["export", img, "-o", out, "--subvolume", "b"]).status == 0)
    let listing = try CLI.run("/usr/bin/bsdtar", ["-tvf", out], environment: [:]).stdout
    #expect(listing.contains("-rwsr-xr-x  0 0      0       10000"), "\(listing)")
    #expect(listing.contains("./lib/tool-link -> ../usr/bin/tool"))
  }

  @Test func twoConvertsAreByteIdentical() throws {
    let dir = try CLI.temporaryDirectory("repro")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let tar = try makeInput(dir)
    for name in ["1.img", "2.img"] {
      let r = try CLI.rosepack(
        ["convert", tar, "-o", dir + "/" + name], environment: ["SOURCE_DATE_EPOCH": "1700000000"])
      #expect(r.status == 0)
    }
    #expect(try CLI.bytes(dir + "/1.img") == CLI.bytes(dir + "/2.img"))
  }

  @Test func refusedInputsExitOneWithOneLineAndNoOutput() throws {
    let dir = try CLI.temporaryDirectory("refused")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Data("this is not an archive\n".utf8).write(to: URL(fileURLWithPath: dir + "/notes.txt"))
    let tar = try makeInput(dir)
    let cases: [([String], String)] = [
      (["convert", dir + "/notes.txt", "-o", dir + "/a.img"], "notes.txt"),
      (["convert", dir + "/missing.tar", "-o", dir + "/b.img"], "missing.tar"),
      (["convert", tar, "-o", dir + "/c.img", "--size", "12M"], "16 MiB"),
      (["convert", tar, "-o", dir + "/d.img", "--size", "lots"], "--size 'lots'"),
      // One size grammar for options and recipe keys, with the recipe's hint.
      (["convert", tar, "-o", dir + "/f.img", "--size", "64m"], "suffixes are upper case: 64M"),
      (["convert", tar, "-o", dir + "/e.img", "--subvolumes", "a,a"], "--subvolumes"),
      (["fsck", dir + "/notes.txt"], "notes.txt"),
    ]
    for (args, mention) in cases {
      let r = try CLI.rosepack(args)
      #expect(r.status == 1, "\(args): status \(r.status)")
      let lines = r.stderr.split(separator: "\n")
      #expect(lines.count == 1, "\(args): \(r.stderr)")
      #expect(r.stderr.contains(mention), "\(args): \(r.stderr)")
    }
    let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter {
      $0.hasSuffix(".img") || $0.contains(".tmp-")
    }
    #expect(left.isEmpty, "left behind: \(left)")
  }

  @Test func tooSmallSizeNamesTheSizeNeeded() throws {
    let dir = try CLI.temporaryDirectory("small")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try CLI.run(
      "/bin/bash",
      ["-c", "mkdir '\(dir)/big' && head -c 20000000 /dev/urandom > '\(dir)/big/blob'"],
      environment: [:])
    let r = try CLI.rosepack(["convert", dir + "/big", "-o", dir + "/x.img", "--size", "16M"])
    #expect(r.status == 1)
    #expect(
      r.stderr.contains("the content needs 20.") && r.stderr.contains("use --size 2"), "\(r.stderr)"
    )
    #expect(!FileManager.default.fileExists(atPath: dir + "/x.img"))
  }
}
