import Foundation
import RoseSizes
import Testing

@testable import RoseRecipe

@Suite struct ErrorTests {
  let dir = TempDir()

  func recipe(_ body: String) -> String {
    dir.write("r.conf", imageHeader + body)
  }

  @Test func unknownSection() {
    let path = recipe("[Partiton]\nType=root\n")
    let found = errors(path)
    #expect(found.count == 2)  // plus "no [Partition] section"
    let error = found.first { $0.message.hasPrefix("unknown section") }
    #expect(error?.line == 4)
    #expect(error?.column == 2)
    #expect(error?.message == "unknown section [Partiton]")
    #expect(error?.hint == "did you mean [Partition]?")
    #expect(
      error?.description
        == "\(path):4:2: unknown section [Partiton]\n  hint: did you mean [Partition]?")
  }

  @Test func unknownKeyWithDidYouMean() {
    let path = recipe("[Partition]\nType=root\n  SizeMinByte=64M\n")
    expectSingle(
      errors(path), file: path, line: 6, column: 3,
      message: "unknown key SizeMinByte= in [Partition]", hint: "did you mean SizeMinBytes=?")
  }

  @Test func keyInWrongSection() {
    let path = recipe("[Partition]\nType=root\nCompressLevel=3\n")
    expectSingle(
      errors(path), file: path, line: 6, column: 1,
      message: "unknown key CompressLevel= in [Partition]",
      hint: "CompressLevel= belongs in [Output]")
  }

  @Test func wrongTypes() {
    let path = recipe(
      "[Partition]\nType=root\nSizeMinBytes=64Q\nReadOnly=maybe\nHeadroomPercent=5000\n"
        + "UUID=xyz\nSizeMaxBytes=64m\n")
    let found = errors(path)
    #expect(
      found.map(\.message) == [
        "invalid size '64Q' for SizeMinBytes=",
        "invalid boolean 'maybe' for ReadOnly=",
        "HeadroomPercent=5000 is out of range",
        "invalid UUID 'xyz' for UUID=",
        "invalid size '64m' for SizeMaxBytes=",
      ])
    #expect(found.map(\.line) == [6, 7, 8, 9, 10])
    #expect(found.map(\.column) == [14, 10, 17, 6, 14])
    #expect(found[0].hint == sizeSyntaxHint)
    #expect(found[2].hint == "between 0 and 1000")
    #expect(found[4].hint == "suffixes are upper case: 64M")
  }

  @Test func badEnumValue() {
    let path = recipe("[Partition]\nType=root\nFormat=rosfs\n")
    expectSingle(
      errors(path), file: path, line: 6, column: 8, message: "invalid value 'rosfs' for Format=",
      hint:
        "did you mean rosefs? allowed values: rosefs, vfat, raw, empty, ext4, ext2, ext3, xfs, btrfs, erofs, squashfs, f2fs, swap"
    )
  }

  @Test func badFormatDoesNotCascade() {
    dir.write("root.tar", "")
    let path = recipe("[Partition]\nType=root\nFormat=minix\nTarball=root.tar\nSlots=a b\n")
    expectSingle(
      errors(path), file: path, line: 6, column: 8, message: "invalid value 'minix' for Format=",
      hint:
        "allowed values: rosefs, vfat, raw, empty, ext4, ext2, ext3, xfs, btrfs, erofs, squashfs, f2fs, swap"
    )
  }

  @Test func badPartitionType() {
    let path = recipe("[Partition]\nType=rot\n")
    let found = errors(path)
    expectSingle(found, file: path, line: 5, column: 6, message: "unknown partition type 'rot'")
    // The 3 to 5 nearest names, not the whole table.
    #expect(found.first?.hint?.hasPrefix("nearest names: root, ") == true)
    #expect((found.first?.hint?.split(separator: ",").count ?? 0) <= 6)
  }

  @Test func missingInputFile() {
    let path = recipe("[Partition]\nType=root\nFormat=rosefs\nTarball=missing.tar\n")
    expectSingle(
      errors(path), file: path, line: 7, column: 9,
      message: "file not found: \(dir.file("missing.tar"))",
      hint: "relative paths are resolved against \(dir.file(""))")
  }

  @Test func missingFileInsideCompoundValue() {
    dir.write("motd", "hi\n")
    let path = recipe(
      "[Partition]\nType=root\nFormat=rosefs\nFile=motd:/etc/motd:0999\nFile=motd:etc/x\n")
    let found = errors(path)
    #expect(found.map(\.message) == ["invalid mode '0999'", "image path 'etc/x' must be absolute"])
    #expect(found.map(\.column) == [21, 11])
    #expect(found[1].hint == "write /etc/x")
  }

  /// As systemd reads unit files: the last assignment wins, with a warning at the repeat.
  @Test func duplicateKey() throws {
    let path = recipe("[Partition]\nType=root\nLabel=a\nLabel=b\n")
    let loaded = try RecipeLoader.load(path: path)
    #expect(loaded.partitions.map(\.label) == ["b"])
    #expect(
      loaded.warnings.map { "\($0.line):\($0.column) \($0.message)" } == [
        "7:1 Label= repeats line 6; the last value wins"
      ])
  }

  @Test func duplicateSingletonSection() {
    let path = recipe("[Image]\nSeed=s\n[Partition]\nType=root\n")
    expectSingle(
      errors(path), file: path, line: 4, column: 1, message: "duplicate section [Image]",
      hint: "[Image] was already opened at line 1 of this file")
  }

  @Test func requiredKeyMissing() {
    let path = recipe("[Partition]\nLabel=x\n")
    expectSingle(
      errors(path), file: path, line: 4, column: 1,
      message: "[Partition] is missing required key Type=")
  }

  @Test func noPartitions() {
    let path = recipe("")
    expectSingle(
      errors(path), file: path, line: 1, column: 1, message: "recipe has no [Partition] section")
  }

  @Test func syntaxErrors() {
    let path = recipe("[Partition\nType=root\njunk line\n=x\n")
    let found = errors(path)
    #expect(
      found.map(\.message) == [
        "recipe has no [Partition] section",
        "malformed section header '[Partition'",
        "unknown key Type= in [Image]",
        "expected Key=Value or [Section], got 'junk line'",
        "missing key name before '='",
      ])
    #expect(found.map(\.line) == [1, 4, 5, 6, 7])
    #expect(found[2].hint == "Type= belongs in [Partition]")
  }

  @Test func undefinedVariable() {
    let path = recipe("Define=FOO=1\n[Partition]\nType=root\nLabel=x%{NOPE}\n")
    expectSingle(
      errors(path), file: path, line: 7, column: 8, message: "undefined variable %{NOPE}",
      hint: "defined: ARCHITECTURE, FOO, IMAGE_NAME, IMAGE_VERSION, SOURCE_DATE_EPOCH")
  }

  @Test func badSpecifiers() {
    let path = recipe("[Partition]\nType=root\nLabel=50%x\nSplitName=a%{B\n")
    let found = errors(path)
    #expect(
      found.map(\.message) == [
        "invalid specifier '%x' in Label=", "unterminated %{ in SplitName=",
      ])
    #expect(found.map(\.column) == [9, 12])
    #expect(found[0].hint == "variables are written %{NAME}; write %% for a literal %")
  }

  @Test func errorsAreCollectedAndSorted() {
    let path = recipe(
      "[Partition]\nType=esp\nFormat=nope\n[Partition]\nType=root\nBogus=1\n[Outptu]\n")
    let found = errors(path)
    #expect(found.map(\.line) == [6, 9, 10])
    #expect(found == found.sorted(by: RecipeError.sortKey))
    let all = RecipeErrors(found.reversed())
    #expect(all.errors == found)
    #expect(all.description.split(separator: "\n").filter { !$0.hasPrefix("  ") }.count == 3)
  }

  @Test func builtinCannotBeRedefined() {
    let path = recipe("Define=IMAGE_NAME=x\n[Partition]\nType=root\n")
    expectSingle(
      errors(path), file: path, line: 4, column: 8,
      message: "cannot redefine built-in variable IMAGE_NAME")
    let cli = errors(
      dir.write("ok.conf", imageHeader + "[Partition]\nType=root\n"),
      defines: ["IMAGE_VERSION": "2"])
    #expect(
      cli.map(\.description) == [
        "--define IMAGE_VERSION: cannot redefine built-in "
          + "variable IMAGE_VERSION\n  hint: set it in the recipe's [Image] section instead"
      ])
  }

  @Test func badEnvironmentEpoch() {
    let path = recipe("[Partition]\nType=root\n")
    let found = errors(path, environment: ["SOURCE_DATE_EPOCH": "yesterday"])
    #expect(
      found.map(\.description) == [
        "SOURCE_DATE_EPOCH (environment): invalid SOURCE_DATE_EPOCH 'yesterday'\n"
          + "  hint: seconds since 1970, e.g. 1700000000"
      ])
  }

  @Test func inlineEscapes() {
    let path = recipe("[Partition]\nType=root\nFormat=rosefs\nInline=/etc/x:a\\qb\n")
    expectSingle(
      errors(path), file: path, line: 7, column: 16, message: "unknown escape '\\q' in Inline=",
      hint: "escapes are \\n, \\t and \\\\")
  }
}
