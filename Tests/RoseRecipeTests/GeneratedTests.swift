import Foundation
import Testing

@testable import RoseRecipe

@Suite struct GeneratedTests {
  @Test func helpKeysListsEveryKey() {
    let text = helpKeysText()
    for key in recipeKeys {
      #expect(text.contains("  \(key.name)=\(key.type.placeholder)"), "\(key.name)")
    }
    #expect(text.contains("[Partition]"))
    #expect(text.contains("Type=TYPE  (required; default") == false)
  }

  @Test func recipesDocIsUpToDate() throws {
    // The dev package reaches this folder through a symlink; resolve it to find the repo.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
    let docs = root.appendingPathComponent("docs/RECIPES.md")
    if ProcessInfo.processInfo.environment["ROSEPACK_WRITE_DOCS"] == "1" {
      try Data(recipesMarkdown().utf8).write(to: docs)
    }
    let committed = try String(
      contentsOf: root.appendingPathComponent("docs/RECIPES.md"), encoding: .utf8)
    let generated = recipesMarkdown()
    #expect(
      committed == generated,
      "docs/RECIPES.md is stale: regenerate it with ROSEPACK_WRITE_DOCS=1 swift test")
    for key in recipeKeys { #expect(generated.contains("`\(key.name)=`")) }
  }

  /// The top-level Templates/ of this source tree.
  static let templatesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Templates").path

  static var starters: [StarterTemplate] { StarterTemplates.list(in: templatesDirectory) }

  @Test func templatesAreRealDirectories() {
    #expect(Self.starters.map(\.name) == ["ab-root", "minimal", "phone"])
    #expect(Self.starters.allSatisfy { !$0.summary.isEmpty })
    // The lookup finds them from an executable inside the source tree's .build directory.
    let found = StarterTemplates.directory(
      executable: (Self.templatesDirectory as NSString).deletingLastPathComponent
        + "/.build/debug/rosepack", environment: [:])
    #expect(found == Self.templatesDirectory)
    #expect(
      StarterTemplates.directory(executable: "/x", environment: ["ROSEPACK_TEMPLATES": "/t"])
        == "/t")
  }

  @Test(arguments: starters)
  func starterProjectsValidateCleanly(_ starter: StarterTemplate) throws {
    let dir = TempDir()
    let path = try starter.write(to: dir.path)
    #expect(!FileManager.default.fileExists(atPath: dir.path + "/DESCRIPTION"))
    let recipe = try RecipeLoader.load(path: path, defines: [:], environment: [:])
    #expect(recipe.warnings.isEmpty)
    #expect(!recipe.partitions.isEmpty)
    #expect(throws: RecipeError.self) { try starter.write(to: dir.path) }
    // And the dump of it loads back to the same recipe.
    let dumped = dir.write("dumped.conf", dumpConfig(recipe))
    let again = try RecipeLoader.load(path: dumped, defines: [:], environment: [:])
    #expect(again == recipe)
    #expect(dumpConfig(again) == dumpConfig(recipe))
  }

  @Test func starterSpecifics() throws {
    let dir = TempDir()
    let starters = Self.starters
    let phoneStarter = try #require(starters.first { $0.name == "phone" })
    let pcStarter = try #require(starters.first { $0.name == "ab-root" })
    let phone = try RecipeLoader.load(
      path: try phoneStarter.write(to: dir.path), defines: [:], environment: [:])
    #expect(phone.image.sectorSize == 4096)
    #expect(phone.partitions.map(\.label) == ["boot_a", "boot_b", "system"])
    #expect(phone.partitions[2].isAB)
    #expect(phone.output.kinds.contains(.simg) && !phone.output.sparseCRC)
    // bmap needs the whole-disk image beside it.
    #expect(phone.output.kinds.contains(.raw) && phone.output.kinds.contains(.bmap))
    let pc = try RecipeLoader.load(
      path: try pcStarter.write(to: dir.path + "/pc"), defines: [:], environment: [:])
    #expect(pc.partitions.map(\.format) == [.vfat, .rosefs])
    #expect(pc.partitions[1].layers.last?.slot == .b)
  }

  @Test func dumpRoundTripsEverything() throws {
    let dir = TempDir()
    dir.write("boot.img", String(repeating: "x", count: 512))
    dir.write("motd", "x")
    dir.mkdir("tree")
    dir.write("Templates/t.mustache", "{{slot}}")
    dir.write("own", "a 0 0 0644\n")
    let path = dir.write(
      "full.conf",
      """
      [Image]
      Name=full
      Version=%{V}
      Define=V=2.5%
      SectorSize=4096
      Alignment=4M
      DiskSize=16G
      Seed=s33d
      SourceDateEpoch=99

      [Partition]
      Type=linux-generic
      Label=boot
      UUID=8A6C3E3C-5A5B-4A4E-9C62-1F0A5C2D7E11
      Format=raw
      CopyBlocks=boot.img
      Offset=8M
      SizeMinBytes=32M
      SizeMaxBytes=32M
      PaddingMinBytes=4M
      Flags=0x4
      NoAuto=yes

      [Partition]
      Type=B921B045-1DF0-41C3-AF44-4C6F280D3FAE
      Label=sys
      Format=rosefs
      SizeMinBytes=1G
      SizeMaxBytes=4G
      HeadroomPercent=5
      Minimize=best
      Weight=10
      SplitName=system.img
      Slots=a b
      DefaultSlot=b
      SlotB=empty
      Inline=/etc/x:50%% off\\ttab\\\\back\\n
      Slot=a
      CopyFiles=motd:/etc/motd
      Directory=tree:/opt
      Slot=b
      File=motd:/etc/m:0600
      Slot=both
      Template=t.mustache:/etc/slot
      Symlink=/lib:usr/lib
      MakeDirectories=/a /b/c/
      Remove=/tmp/**
      Ownership=own

      [Partition]
      Type=home
      Grow=yes
      SizeMinBytes=1G
      ReadOnly=yes

      [Output]
      Formats=zst simg split bmap
      CompressLevel=7
      SparseCrc=yes
      SparseBlockSize=8K
      BaseName=full-%{IMAGE_VERSION}
      """)
    let recipe = try RecipeLoader.load(path: path, defines: [:], environment: [:])
    #expect(recipe.image.version == "2.5%")
    #expect(recipe.output.baseName == "full-2.5%")
    let dumped = dumpConfig(recipe)
    let again = try RecipeLoader.load(
      path: dir.write("other/dump.conf", dumped), defines: [:], environment: [:])
    #expect(again == recipe)
    #expect(dumpConfig(again) == dumped)
    #expect(dumped.contains("Version=2.5%%\n"))
    #expect(dumped.contains("Inline=/etc/x:50%% off\\ttab\\\\back\\n\n"))
  }
}
