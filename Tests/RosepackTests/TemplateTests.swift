import Foundation
import Testing

/// Every starter in the top-level Templates/ builds unchanged through `rosepack init` and
/// `rosepack build`; the phone starter's bmap applies to its own whole-disk image.
@Suite struct TemplateTests {
  static let names: [String] =
    ((try? FileManager.default.contentsOfDirectory(atPath: CLI.repo + "/Templates")) ?? [])
    .filter { FileManager.default.fileExists(atPath: CLI.repo + "/Templates/\($0)/\($0).conf") }
    .sorted()

  @Test func listShowsEveryTemplate() throws {
    let result = try CLI.rosepack(["init", "--list"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(
      result.stdout.split(separator: "\n").map { String($0.split(separator: "\t")[0]) }
        == Self.names)
    #expect(Self.names.contains("phone"))
  }

  @Test(arguments: names)
  func templateBuildsUnchanged(_ name: String) throws {
    let dir = try CLI.temporaryDirectory("template-\(name)")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let created = try CLI.rosepack(["init", "--template", name, dir + "/project"])
    #expect(created.status == 0, "\(created.stderr)")
    // The copy is the template directory, file for file.
    let diff = try CLI.tool(
      "diff", ["-r", "-x", "DESCRIPTION", CLI.repo + "/Templates/" + name, dir + "/project"])
    #expect(diff.status == 0, "\(diff.stdout)")
    let built = try CLI.rosepack([
      "build", dir + "/project/\(name).conf", "-o", dir + "/out", "-q",
    ])
    #expect(built.status == 0, "\(built.stderr)")
    let outputs = try FileManager.default.contentsOfDirectory(atPath: dir + "/out")
    #expect(outputs.contains { $0.hasSuffix(".img") })
    guard name == "phone" else { return }
    // bmaptool writes the mapped blocks of the raw image and checks their SHA-256 from the bmap.
    let image = try #require(outputs.first { $0.hasSuffix(".img") })
    let bmap = try #require(outputs.first { $0.hasSuffix(".bmap") })
    let target = dir + "/flashed.img"
    let copy: CLI.Result
    do {
      copy = try CLI.tool(
        "bmaptool", ["copy", "--bmap", dir + "/out/" + bmap, dir + "/out/" + image, target])
    } catch {
      print("skipped the bmaptool check: \(error)")
      return
    }
    #expect(copy.status == 0, "\(copy.stderr)")
    #expect(try CLI.filesEqual(dir + "/out/" + image, target), "the flashed disk is the image")
  }
}
