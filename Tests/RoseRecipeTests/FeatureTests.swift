import Foundation
import Testing

@testable import RoseRecipe

@Suite struct FeatureTests {
  let dir = TempDir()

  func load(
    _ path: String, defines: [String: String] = [:], environment: [String: String] = [:]
  ) throws -> Recipe {
    try RecipeLoader.load(path: path, defines: defines, environment: environment)
  }

  @Test func defaultsAndSizes() throws {
    let path = dir.write(
      "img.conf",
      "[Partition]\nType=root\nFormat=empty\nSizeMinBytes=64M\nSizeMaxBytes=64M\n"
        + "[Partition]\nType=var\nSizeMinBytes=1G\nHeadroomPercent=10\nHeadroomBytes=4K\n")
    let recipe = try load(path)
    #expect(recipe.image.name == "img")
    #expect(recipe.image.seed == "img")
    #expect(recipe.image.alignment == 1 << 20)
    #expect(recipe.image.sourceDateEpoch == 0)
    #expect(recipe.output.kinds == [.raw, .manifest])
    #expect(recipe.output.baseName == "img_0")
    #expect(recipe.partitions.map(\.label) == ["root-x86-64", "var"])
    #expect(recipe.partitions[0].type.guid.uuidString == "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709")
    #expect(recipe.partitions[0].size == .fixed(bytes: 64 << 20))
    #expect(
      recipe.partitions[1].size
        == .auto(minBytes: 1 << 30, maxBytes: nil, headroomBytes: 4096, headroomPercent: 10))
    #expect(recipe.partitions[0].position.line == 1)
    #expect(recipe.partitions[1].position.line == 6)
  }

  @Test func architectureResolvesRoot() throws {
    let path = dir.write("a.conf", "[Image]\nArchitecture=arm64\n[Partition]\nType=root\n")
    let recipe = try load(path)
    #expect(recipe.partitions[0].type.name == "root")
    #expect(recipe.partitions[0].type.guid.uuidString == "B921B045-1DF0-41C3-AF44-4C6F280D3FAE")
  }

  @Test func gptAttributes() throws {
    let path = dir.write(
      "g.conf", "[Partition]\nType=root\nFlags=0x4\nReadOnly=yes\nNoAuto=1\nGrowFileSystem=on\n")
    let part = try load(path).partitions[0]
    let expected: UInt64 = 0x4 | 1 << 60 | 1 << 63 | 1 << 59
    #expect(part.gptAttributes == expected)
  }

  @Test func includesAndDropInsOverrideInOrder() throws {
    dir.write(
      "common/esp.conf",
      "Format=vfat\nSizeMinBytes=64M\nSizeMaxBytes=64M\nCopyFiles=efi:/\n")
    dir.mkdir("common/efi")
    dir.mkdir("rootfs")
    let path = dir.write(
      "img.conf",
      "Include=common/top.conf\n[Image]\nName=base\nVersion=1\n[Partition]\nType=esp\n"
        + "Include=common/esp.conf\nLabel=esp\n[Partition]\nType=root\nFormat=rosefs\n"
        + "Directory=rootfs\n")
    dir.write("common/top.conf", "[Output]\nFormats=raw\n")
    dir.write("img.conf.d/20-late.conf", "[Image]\nVersion=3\n")
    dir.write("img.conf.d/10-early.conf", "[Image]\nVersion=2\nName=dropin\n")
    dir.write(
      "img.conf.d/30-extend.conf",
      "[Partition]\nExtend=root\nInline=/etc/issue:hi\n[Partition]\nType=home\n"
        + "[Output]\nFormats=bmap\n")
    dir.write("img.conf.d/ignored.txt", "garbage")
    let recipe = try load(path)
    #expect(recipe.image.name == "dropin")
    #expect(recipe.image.version == "3")
    #expect(recipe.partitions.map(\.label) == ["esp", "root-x86-64", "home"])
    #expect(recipe.partitions[0].format == .vfat)
    #expect(recipe.partitions[0].size == .fixed(bytes: 64 << 20))
    #expect(recipe.partitions[1].layers.count == 2)
    #expect(recipe.output.kinds == [.raw, .bmap])
    #expect(recipe.sourceFiles.count == 6)
    guard case .inline(_, _, let at) = recipe.partitions[1].layers[1].layer else {
      Issue.record("expected inline layer")
      return
    }
    #expect(at.file == dir.file("img.conf.d/30-extend.conf"))
    #expect(at.line == 3)
    guard case .directory(let source, "/", _) = recipe.partitions[1].layers[0].layer else {
      Issue.record("expected directory layer")
      return
    }
    #expect(source == dir.file("rootfs"))
  }

  @Test func errorsInIncludedFilesPointThere() {
    let inc = dir.write("parts/p.conf", "Type=root\nFormatt=rosefs\n")
    let path = dir.write("m.conf", "[Partition]\nInclude=parts/p.conf\n")
    expectSingle(
      errors(path), file: inc, line: 2, column: 1, message: "unknown key Formatt= in [Partition]",
      hint: "did you mean Format=?")
  }

  @Test func includeCycleAndMissingInclude() {
    dir.write("b.conf", "Include=a.conf\n")
    let a = dir.write("a.conf", "[Partition]\nType=root\nInclude=b.conf\nInclude=nope.conf\n")
    let found = errors(a)
    #expect(
      found.map(\.message) == [
        "cannot read included file \(dir.file("nope.conf")): No such file or directory",
        "include cycle: a.conf -> b.conf -> a.conf",
      ])
    #expect(found[0].line == 4 && found[0].column == 9)
    #expect(found[1].file == dir.file("b.conf") && found[1].line == 1)
  }

  @Test func extendUnknownLabel() {
    let path = dir.write("e.conf", "[Partition]\nType=root\n[Partition]\nExtend=rot\n")
    expectSingle(
      errors(path), file: path, line: 4, column: 8,
      message: "Extend=rot names no earlier partition",
      hint: "labels so far: root")
  }

  @Test func definesAndEscapes() throws {
    let path = dir.write(
      "d.conf",
      "[Image]\nName=n\nVersion=%{VER}\nDefine=VER=1.0\nDefine=HOST=box\n"
        + "[Partition]\nType=root\nFormat=rosefs\nLabel=%{HOST}-%{IMAGE_VERSION}\n"
        + "Inline=/etc/motd:100%% %{IMAGE_NAME}\\n\n[Output]\nBaseName=%{IMAGE_NAME}-v%{VER}\n")
    let fromRecipe = try load(path)
    #expect(fromRecipe.image.version == "1.0")
    #expect(fromRecipe.partitions[0].label == "box-1.0")
    #expect(fromRecipe.output.baseName == "n-v1.0")
    guard case .inline("/etc/motd", let text, _) = fromRecipe.partitions[0].layers[0].layer else {
      Issue.record("expected inline")
      return
    }
    #expect(text == "100% n\n")
    let overridden = try load(path, defines: ["HOST": "cli", "VER": "9"])
    #expect(overridden.partitions[0].label == "cli-9")
    #expect(overridden.image.defines == ["HOST": "cli", "VER": "9"])
  }

  @Test func sourceDateEpochPrecedence() throws {
    let with = dir.write(
      "s.conf",
      "[Image]\nSourceDateEpoch=1700000000\n[Partition]\nType=root\nLabel=r%{SOURCE_DATE_EPOCH}\n")
    #expect(try load(with).image.sourceDateEpoch == 1_700_000_000)
    #expect(try load(with).partitions[0].label == "r1700000000")
    let env = try load(with, environment: ["SOURCE_DATE_EPOCH": "42"])
    #expect(env.image.sourceDateEpoch == 42)
    #expect(env.partitions[0].label == "r42")
    let without = dir.write("t.conf", "[Partition]\nType=root\n")
    #expect(try load(without).image.sourceDateEpoch == 0)
  }

  @Test func layersKeepOrderAcrossKindsAndSlots() throws {
    dir.write("root.tar", "")
    dir.write("motd", "x")
    dir.write("Templates/fstab.mustache", "slot={{slot}}\n")
    dir.write("own", "system/bin/sh 0 2000 0755\nsystem/xbin/su 0 0 04750 capabilities=0x0\n")
    let path = dir.write(
      "l.conf",
      "[Partition]\nType=root\nFormat=rosefs\nSlots=a b\nDefaultSlot=a\n"
        + "Tarball=root.tar\nFile=motd:/etc/motd:0644\nSymlink=/bin:usr/bin\n"
        + "Slot=b\nTemplate=fstab.mustache:/etc/fstab\nMakeDirectories=/data /cache\n"
        + "Slot=both\nRemove=/usr/share/doc/**\nOwnership=own\n")
    let part = try load(path).partitions[0]
    #expect(part.isAB && part.slotB == .snapshot && part.defaultSubvolume == "a")
    #expect(part.layers.map(\.slot) == [.both, .both, .both, .b, .b, .both, .both])
    let kinds = part.layers.map { layer -> String in
      switch layer.layer {
      case .tarball: return "tarball"
      case .file(_, _, let mode, _): return "file \(String(mode ?? 0, radix: 8))"
      case .symlink(let p, let t, _): return "symlink \(p)->\(t)"
      case .template(_, let d, _): return "template \(d)"
      case .makeDirectories(let paths, _): return "mkdir \(paths.joined(separator: ","))"
      case .remove(let glob, _): return "remove \(glob)"
      case .ownership(_, let o, _): return "ownership \(o.count)"
      default: return "other"
      }
    }
    #expect(
      kinds == [
        "tarball", "file 644", "symlink /bin->usr/bin", "template /etc/fstab",
        "mkdir /data,/cache", "remove /usr/share/doc/**", "ownership 2",
      ])
    #expect(part.layers[3].layer.position.line == 10)
  }

  /// systemd-repart 252 refuses a CopyBlocks= source that is empty or not whole 512-byte
  /// sectors; the recipe's in-table raw partition does the same, a blob takes any size.
  @Test func copyBlocksSizeAsRepart() {
    dir.write("odd.img", String(repeating: "x", count: 1000))
    dir.write("empty.img", "")
    dir.write("whole.img", String(repeating: "x", count: 1024))
    let path = dir.write(
      "cb.conf",
      "[Partition]\nType=linux-generic\nLabel=a\nFormat=raw\nCopyBlocks=odd.img\n"  // 1-5
        + "[Partition]\nType=linux-generic\nLabel=b\nFormat=raw\nCopyBlocks=empty.img\n"  // 6-10
        + "[Partition]\nType=linux-generic\nLabel=c\nFormat=raw\nCopyBlocks=whole.img\n"  // 11-15
        + "[Partition]\nLabel=spl\nInPartitionTable=no\nFormat=raw\nCopyBlocks=odd.img\n"  // 16-20
        + "Offset=8K\n")
    let found = errors(path)
    #expect(
      found.map { "\($0.line):\($0.column) \($0.message)" } == [
        "5:12 CopyBlocks= source \(dir.file("odd.img")) is 1000 bytes, not a multiple of 512",
        "10:12 CopyBlocks= source \(dir.file("empty.img")) is empty (0 bytes)",
      ])
    #expect(found.first?.hint?.contains("truncate -s 1024 FILE") == true)
  }

  @Test func crossChecks() {
    dir.write("boot.img", "x")
    let path = dir.write(
      "x.conf",
      "[Image]\nDiskSize=1G\n"  // 1-2
        + "[Partition]\nType=esp\nLabel=a\nSizeMinBytes=1000\nGrow=yes\n"  // 3-7
        + "[Partition]\nType=root\nLabel=a\nGrow=yes\nFormat=rosefs\nSlots=x y\n"  // 8-13
        + "DefaultSlot=z\n"  // 14
        + "[Partition]\nType=linux-generic\nLabel=raw\nFormat=raw\n"  // 15-18
        // 19-24
        + "[Partition]\nType=swap\nLabel=s\nOffset=3M\nSizeMinBytes=64M\nSizeMaxBytes=64M\n"
        // 25-30
        + "[Partition]\nType=home\nLabel=h\nOffset=4M\nCopyBlocks=boot.img\nTarball=boot.img\n"
        + "[Partition]\nType=var\nOffset=1536K\nSlot=a\n")  // 31-34
    let found = errors(path)
    #expect(
      found.map { "\($0.line):\($0.column) \($0.message)" } == [
        "6:14 SizeMinBytes=1000 is not a multiple of the sector size (512)",
        "10:7 duplicate partition label 'a'",
        "14:13 DefaultSlot=z is not one of Slots=",
        "15:1 Format=raw partition 'raw' has no CopyBlocks=",
        "28:8 partition 'h' at offset 4194304 overlaps 's', which ends at 70254592",
        "29:1 CopyBlocks= needs Format=raw",
        "30:1 Tarball= needs a Format= that holds files (rosefs, vfat, ext4, ...)",
        "33:8 Offset=1536K is not aligned to Alignment= (1048576 bytes)",
        "34:6 Slot=a needs two Slots=",
      ])
    #expect(found[1].hint == "already used by the partition at line 3")
    #expect(found[2].hint == "Slots= are: x y")
  }

  @Test func doesNotFitFixedDisk() {
    let path = dir.write(
      "f.conf",
      "[Image]\nDiskSize=64M\n[Partition]\nType=root\nSizeMinBytes=64M\nSizeMaxBytes=64M\n")
    let found = errors(path)
    #expect(
      found.map(\.message) == [
        "partition 'root-x86-64' ends at byte 68157440, beyond the usable end of DiskSize= (67091968)"
      ])
    #expect(found.first?.line == 3)
  }

  @Test func vfatOn4KWarnsAndSectorMultiples() throws {
    dir.mkdir("efi")
    let path = dir.write(
      "w.conf",
      "[Image]\nSectorSize=4096\n[Partition]\nType=esp\nFormat=vfat\nCopyFiles=efi:/EFI\n")
    let recipe = try load(path)
    #expect(
      recipe.warnings.map { "\($0.line):\($0.column) \($0.message)" } == [
        "5:8 vfat with 4096-byte sectors"
      ])
    let again = try load(dir.write("dump/w.conf", dumpConfig(recipe)))
    #expect(again == recipe)
    let bad = dir.write(
      "v.conf", "[Image]\nSectorSize=4096\n[Partition]\nType=root\nSizeMinBytes=2K\n")
    #expect(
      errors(bad).map(\.message) == [
        "SizeMinBytes=2K is not a multiple of the sector size (4096)"
      ])
  }

  @Test func outputs() throws {
    let path = dir.write(
      "o.conf",
      "[Partition]\nType=root\n[Output]\nFormats=raw\nFormats=\nFormats=simg split zst\n"
        + "CompressLevel=19\nSparseCrc=no\n")
    let output = try load(path).output
    #expect(output.kinds == [.zst, .simg, .split])
    #expect(output.zstdLevel == 19)
    let bad = dir.write("p.conf", "[Partition]\nType=root\n[Output]\nFormats=raw smig\n")
    expectSingle(
      errors(bad), file: bad, line: 4, column: 13, message: "unknown output format 'smig'",
      hint: "did you mean simg? allowed values: raw, zst, bmap, simg, split, manifest")
  }

  @Test func fsConfigParsing() {
    let text = """
      # comment

      system/bin/sh 0 2000 0755
      /vendor/ 1000 1000 0751 capabilities=0x1000
      system/bin/x root 0 0755
      a 0 0 0855
      b 0 0 0644 caps=1
      c 0 0
      system/bin/sh 0 0 0700
      """
    let result = FSConfig.parse(text: text, file: "fs_config")
    #expect(result.overrides.map(\.path) == ["/system/bin/sh", "/vendor"])
    #expect(result.overrides[1].capabilities == 0x1000)
    #expect(result.overrides[1].mode == 0o751)
    #expect(result.overrides[0].gid == 2000)
    #expect(
      result.errors.map(\.description) == [
        "fs_config:5:14: invalid uid 'root'\n  hint: fs_config takes numeric ids, e.g. 0 for root",
        "fs_config:6:7: invalid mode '0855'\n  hint: an octal mode such as 0755",
        "fs_config:7:12: invalid capabilities 'caps=1'\n  hint: write capabilities=0x followed by a "
          + "hexadecimal mask",
        "fs_config:8:1: expected 'path uid gid mode [capabilities=0x...]', got 3 fields",
        "fs_config:9:1: duplicate entry for /system/bin/sh\n  hint: first given at line 3",
      ])
  }

  @Test func ownershipErrorsReachTheLoader() {
    let manifest = dir.write("own", "etc 0 0 9\n")
    let path = dir.write("m.conf", "[Partition]\nType=root\nFormat=rosefs\nOwnership=own\n")
    expectSingle(errors(path), file: manifest, line: 1, column: 9, message: "invalid mode '9'")
  }

  @Test func templatesRenderPerSlot() throws {
    let template = dir.write(
      "t.mustache", "{{slot}} {{image_name}} <{{partition_label}}>{{#slot_b}} B!{{/slot_b}}\n")
    let path = dir.write(
      "r.conf", "[Image]\nName=n&m\n[Partition]\nType=root\nFormat=rosefs\nSlots=a b\n")
    let recipe = try load(path)
    let renderer = TemplateRenderer()
    let a = try renderer.render(
      templatePath: template,
      variables: TemplateVariables.make(recipe: recipe, partition: recipe.partitions[0], slot: .a))
    let b = try renderer.render(
      templatePath: template,
      variables: TemplateVariables.make(recipe: recipe, partition: recipe.partitions[0], slot: .b))
    #expect(a == "a n&m <root-x86-64>\n")
    #expect(b == "b n&m <root-x86-64> B!\n")
  }

  @Test func templateSyntaxErrorsHavePositions() {
    let template = dir.write("Templates/bad.mustache", "ok\n{{#open}}\nnever closed\n")
    let direct = #expect(throws: RecipeError.self) {
      try TemplateRenderer().render(templatePath: template, variables: [:])
    }
    #expect(direct?.file == template)
    #expect(direct?.message == "template syntax error: section is not closed")
    let path = dir.write(
      "r.conf", "[Partition]\nType=root\nFormat=rosefs\nTemplate=bad.mustache:/x\n")
    let found = errors(path)
    #expect(found.count == 1)
    #expect(found.first?.file == template)
    #expect((found.first?.line ?? 0) >= 2)
  }
}
