import Foundation
import Testing

@testable import RoseRecipe

/// The promises of issue 8 (repart's key meanings) and the recipe items of issue 11 (hostile
/// values refused at their line), each reproduced with the input that broke them.
@Suite struct RepartPromiseTests {
  let dir = TempDir()

  func recipe(_ body: String) -> String { dir.write("r.conf", imageHeader + body) }

  @Test func uuidInEveryFormRepartTakes() throws {
    let path = recipe(
      "[Partition]\nType=root\nUUID=a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\n"
        + "[Partition]\nType=home\nUUID=null\n")
    let parts = try RecipeLoader.load(path: path).partitions
    #expect(parts[0].uuid?.uuidString.lowercased() == "a0a1a2a3-a4a5-a6a7-a8a9-aaabacadaeaf")
    #expect(parts[1].uuid?.uuidString == "00000000-0000-0000-0000-000000000000")
  }

  @Test func labelsDefaultAsRepartNamesThem() throws {
    let path = recipe(
      "[Partition]\nType=root\n[Partition]\nType=root\n[Partition]\nType=root\n"
        + "[Partition]\nType=usr\nLabel=_empty\n[Partition]\nType=usr\nLabel=_empty\n")
    let labels = try RecipeLoader.load(path: path).partitions.map(\.label)
    #expect(labels == ["root-x86-64", "root-x86-64-2", "root-x86-64-3", "_empty", "_empty"])
  }

  @Test func minimizeReadsBooleansAsRepart() throws {
    let path = recipe(
      "[Partition]\nType=root\nMinimize=yes\n[Partition]\nType=home\nMinimize=no\n"
        + "[Partition]\nType=var\nMinimize=guess\n")
    let modes = try RecipeLoader.load(path: path).partitions.map(\.minimize)
    #expect(modes == [.best, .off, .guess])
  }

  @Test func copyBlocksAutoNeedsARunningSystem() {
    let path = recipe("[Partition]\nType=root\nFormat=raw\nCopyBlocks=auto\n")
    let found = errors(path)
    #expect(found.map(\.message) == ["CopyBlocks=auto needs a running system"])
    #expect(found.first?.line == 7)
  }

  @Test func copyFilesAbsoluteIsUnderRoot() throws {
    dir.write("root/etc/motd", "hi\n")
    let path = recipe("[Partition]\nType=root\nFormat=rosefs\nCopyFiles=/etc\n")
    let found = errors(path)
    #expect(found.map(\.message) == ["CopyFiles=/etc needs --root"])
    #expect(found.first?.line == 7)
    let loaded = try RecipeLoader.load(path: path, root: dir.file("root"))
    guard case .directory(let source, let destination, _) = loaded.partitions[0].layers[0].layer
    else {
      Issue.record("expected a copy layer")
      return
    }
    #expect(source == dir.file("root/etc"))
    #expect(destination == "/etc")
  }

  @Test func subvolumesIsRepartsBtrfsKey() {
    let path = recipe("[Partition]\nType=root\nFormat=rosefs\nSubvolumes=a b\n")
    let found = errors(path)
    #expect(found.map(\.message) == ["unknown key Subvolumes= in [Partition]"])
    #expect(found.first?.hint?.contains("btrfs") == true)
    #expect(found.first?.hint?.contains("Slots=") == true)
  }

  @Test func rosefsPartitionsDefaultToRoseFSTypes() throws {
    let path = recipe(
      "[Partition]\nFormat=rosefs\nSlots=a b\n[Partition]\nFormat=rosefs\nLabel=data\n")
    let parts = try RecipeLoader.load(path: path).partitions
    #expect(
      parts.map { $0.type.guid.uuidString } == [
        "6BB2C3CA-50CB-4CA0-8E03-C35A3034266E", "2108659E-1A6C-4B2A-BAB1-99C73A2C0B6E",
      ])
    #expect(parts.map(\.label) == ["rosefs-root", "data"])
  }

  /// Issue 11 item 3: sizes at or above 2^63 are refused at their line, never trap or vanish.
  @Test func hugeSizesAreRefusedAtTheirLine() {
    for (key, value) in [
      ("SizeMinBytes", "9223372036854775296"), ("Offset", "9223372036854775808"),
      ("PaddingMinBytes", "18446744073709551104"), ("HeadroomBytes", "18446744073709551104"),
    ] {
      let path = recipe("[Partition]\nType=root\n\(key)=\(value)\n")
      let found = errors(path)
      #expect(found.map(\.message) == ["\(key)=\(value) is too large"], "\(key)")
      #expect(found.first?.line == 6)
    }
    let disk = dir.write(
      "d.conf", "[Image]\nDiskSize=18446744073709551104\n[Partition]\nType=root\nGrow=yes\n")
    #expect(errors(disk).map(\.message) == ["DiskSize=18446744073709551104 is too large"])
  }

  /// Issue 11 item 11: NUL and control characters are refused at the line and column.
  @Test func controlCharactersAreRefused() {
    let path = recipe("[Partition]\nType=root\nLabel=ro\u{0}ot\n")
    let found = errors(path)
    #expect(found.map(\.message) == ["Label= contains the control character U+0000"])
    #expect(found.first.map { "\($0.line):\($0.column)" } == "6:9")
    let bell = recipe("[Partition]\nType=root\nFormat=rosefs\nInline=/etc/a\u{7}b:hi\n")
    #expect(errors(bell).map(\.message) == ["Inline= contains the control character U+0007"])
  }

  /// Issue 11 item 12: CRLF files read as systemd reads them; Version= refuses '/' as Name= does.
  @Test func crlfAndVersionSlash() throws {
    let path = dir.write("c.conf", "[Image]\r\nName=t\r\nVersion=2\r\n[Partition]\r\nType=root\r\n")
    let loaded = try RecipeLoader.load(path: path)
    #expect(loaded.image.name == "t" && loaded.image.version == "2")
    let slash = dir.write("s.conf", "[Image]\nVersion=1/2\n[Partition]\nType=root\n")
    let found = errors(slash)
    #expect(found.map(\.message) == ["invalid image version '1/2'"])
    #expect(found.first?.line == 2)
  }

  /// Issue 11 item 18: an unreadable recipe says why.
  @Test func unreadableRecipeSaysWhy() {
    #expect(
      errors(dir.file("missing.conf")).map(\.message) == [
        "cannot read recipe file: No such file or directory"
      ])
    dir.mkdir("adir.conf")
    #expect(
      errors(dir.file("adir.conf")).map(\.message) == ["cannot read recipe file: is a directory"])
  }

  @Test func timesAreKeptUnlessAnEpochIsGiven() throws {
    let plain = recipe("[Partition]\nType=root\n")
    #expect(try RecipeLoader.load(path: plain).image.clampsTimes == false)
    #expect(
      try RecipeLoader.load(path: plain, environment: ["SOURCE_DATE_EPOCH": "5"]).image.clampsTimes)
    let keyed = dir.write("e.conf", "[Image]\nSourceDateEpoch=7\n[Partition]\nType=root\n")
    #expect(try RecipeLoader.load(path: keyed).image.clampsTimes)
  }

  @Test func undefinedTemplateVariableIsAnErrorAtItsPlace() throws {
    let template = dir.write("Templates/t.mustache", "a={{slot}}\n  b={{nosuch}}\n")
    do {
      _ = try TemplateRenderer().render(templatePath: template, variables: ["slot": "a"])
      Issue.record("rendered an undefined variable")
    } catch let error as RecipeError {
      #expect(error.message == "undefined template variable {{nosuch}}")
      #expect("\(error.line):\(error.column)" == "2:5")
      #expect(error.hint == "defined: slot")
    } catch {
      Issue.record("\(error)")
    }
    // A section on an undefined name is a conditional: nothing inside it is rendered or checked.
    let conditional = dir.write("Templates/c.mustache", "{{#home}}h={{home}}{{/home}}x\n")
    #expect(try TemplateRenderer().render(templatePath: conditional, variables: [:]) == "x\n")
  }

  @Test func everyHintHasText() {
    let path = recipe(
      "[Partition]\nType=rooot\nFormat=rosefs\nTarball=/nonexistent/x.tar\nUUID=zz\n")
    for error in errors(path) {
      if let hint = error.hint {
        #expect(!hint.trimmingCharacters(in: .whitespaces).isEmpty)
        #expect(!hint.hasSuffix(" "), "hint ends in nothing: \(hint)")
      }
    }
  }
}
