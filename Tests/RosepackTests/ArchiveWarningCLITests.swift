import Foundation
import RoseTestSupport
import Testing

/// libarchive's warnings reach the user: on stderr once each, naming archive and entry, and in
/// `--json` (issue 12). The fixture's warning is confirmed with bsdtar, which we did not write.
@Suite struct ArchiveWarningCLITests {
  func fixture(_ dir: String) throws -> String {
    let tar = dir + "/warn.tar"
    try Data(WarningTarball.bytes(entry: "etc/motd")).write(to: URL(fileURLWithPath: tar))
    let bsdtar = try CLI.tool("bsdtar", ["-tf", tar])
    #expect(
      bsdtar.stderr.contains("Ignoring malformed pax extended attributes"), "\(bsdtar.stderr)")
    return tar
  }

  @Test func convertShowsTheWarningOnceAndInJSON() throws {
    let dir = try CLI.temporaryDirectory("warn")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let tar = try fixture(dir)
    // The same archive twice: one warning, not two.
    let r = try CLI.rosepack(["convert", tar, tar, "-o", dir + "/x.img", "--json"])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stderr.split(separator: "\n").filter { $0.contains("warning:") }
    #expect(
      lines == ["rosepack: warning: \(tar): etc/motd: Ignoring malformed pax extended attributes"],
      "\(r.stderr)")
    let json = try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any]
    let warnings = json?["inputWarnings"] as? [[String: String]]
    #expect(warnings?.count == 1)
    #expect(warnings?.first?["entry"] == "etc/motd")
    #expect(warnings?.first?["archive"] == tar)
    let quiet = try CLI.rosepack(["convert", tar, "-o", dir + "/y.img", "--quiet"])
    #expect(quiet.status == 0 && !quiet.stderr.contains("warning"), "\(quiet.stderr)")
  }

  @Test func buildShowsTheWarningOnceAndInJSON() throws {
    let dir = try CLI.temporaryDirectory("warn")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let tar = try fixture(dir)
    let recipe = dir + "/w.conf"
    try Data(
      "[Image]\nName=w\n\n[Partition]\nType=root\nLabel=root\nFormat=rosefs\nTarball=warn.tar:/\n"
        .utf8
    ).write(to: URL(fileURLWithPath: recipe))
    let r = try CLI.rosepack(["build", recipe, "-o", dir + "/out"])
    #expect(r.status == 0, "\(r.stderr)")
    let lines = r.stderr.split(separator: "\n").filter { $0.contains("warning:") }
    #expect(
      lines.count == 1 && lines[0].contains("warn.tar: etc/motd: Ignoring malformed pax"),
      "\(r.stderr)")
    let j = try CLI.rosepack(["build", recipe, "-o", dir + "/out", "--json"])
    let json = try JSONSerialization.jsonObject(with: j.stdoutData) as? [String: Any]
    let warnings = json?["inputWarnings"] as? [[String: String]]
    #expect(warnings?.count == 1 && warnings?.first?["entry"] == "etc/motd", "\(j.stdout)")
  }
}
