import Foundation
import RoseFS
import Testing

@testable import RoseIngest

func b(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct TreeEditorTests {
  @Test func normalisesPaths() throws {
    #expect(
      try ImagePath.components(b("./a//b/./c/"), input: "t") == [Name("a"), Name("b"), Name("c")])
    #expect(try ImagePath.components(b("/"), input: "t") == [])
    #expect(try ImagePath.components(b("///x"), input: "t") == [Name("x")])
    #expect(throws: IngestError.self) { try ImagePath.components(b("a/.."), input: "t") }
    #expect(throws: IngestError.self) {
      try ImagePath.components(b(String(repeating: "x", count: 256)), input: "t")
    }
    #expect(try ImagePath.components(b(String(repeating: "x", count: 255)), input: "t").count == 1)
  }

  @Test func laterEntriesReplaceAndDirectoriesMerge() throws {
    let s = try Scratch(epoch: 1234)
    let e = s.editor
    let m = EntryMetadata(permissions: 0o600, uid: 5, gid: 6, mtime: Timestamp(seconds: 99))
    try e.addInline(b("one"), at: b("dir/sub/f"))
    let parent = try #require(e.lookup("dir"))
    #expect(
      parent.permissions == 0o755 && parent.uid == 0 && parent.mtime == Timestamp(seconds: 1234))
    try e.directory(at: b("./dir/"), m, input: "t")
    #expect(e.lookup("dir") === parent)
    #expect(parent.permissions == 0o600 && parent.uid == 5)
    #expect(e.lookup("dir/sub/f") != nil)
    try e.addInline(b("two"), at: b("dir/sub/f"))
    #expect(try s.builder.data.readBack(e.lookup("dir/sub/f")!.content) == b("two"))
    // A file replacing a directory drops the subtree; a directory replacing a file.
    try e.addInline(b("x"), at: b("dir/sub"))
    #expect(e.lookup("dir/sub")?.kind == .regular)
    try e.directory(at: b("dir/sub"), m, input: "t")
    #expect(
      e.lookup("dir/sub")?.kind == .directory && e.lookup("dir/sub")?.children.isEmpty == true)
    // Replacing one name of a hard-linked file keeps the other.
    let big = [UInt8](repeating: 7, count: 10000)
    try e.addInline(big, at: b("h1"))
    try e.hardLink(at: b("h2"), target: b("./h1"), input: "t")
    #expect(e.names(of: e.lookup("h1")!) == 2)
    try e.addInline(b("new"), at: b("h1"))
    #expect(try s.builder.data.readBack(e.lookup("h2")!.content) == big)
    // The root entry sets the root's metadata.
    try e.directory(at: b("./"), m, input: "t")
    #expect(e.root.permissions == 0o600)
  }

  @Test func refusals() throws {
    let s = try Scratch()
    let e = s.editor
    let m = EntryMetadata(permissions: 0o644, mtime: Timestamp(seconds: 0))
    try e.addSymlink(at: b("l"), target: b("/etc"))
    #expect(throws: IngestError.self) { try e.addInline(b("x"), at: b("l/passwd")) }
    #expect(throws: IngestError.self) { try e.node(at: b(""), kind: .fifo, m, input: "t") }
    #expect(throws: IngestError.self) {
      try e.symlink(at: b("s"), target: [UInt8](repeating: 0x61, count: 4096), m, input: "t")
    }
    #expect(throws: IngestError.self) {
      try e.hardLink(at: b("h"), target: b("missing"), input: "t")
    }
    try e.makeDirectories(b("a/b/c"))
    #expect(throws: IngestError.self) { try e.hardLink(at: b("h"), target: b("a/b"), input: "t") }
    #expect(throws: IngestError.self) { try e.hardLink(at: b("h"), target: b("l/x"), input: "t") }
    do {
      try e.addInline(b("x"), at: b("l/passwd"), input: "in.tar")
    } catch let err as IngestError {
      #expect("\(err)".contains("in.tar") && "\(err)".contains("l/passwd"))
    }
  }

  @Test func hostFilesInlineAndSymlinks() throws {
    let s = try Scratch(epoch: 77)
    let dir = try tempDir("edit")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let content = (0..<20000).map { UInt8($0 % 251) }
    _ = FileManager.default.createFile(atPath: dir + "/host", contents: Data(content))
    let i = try s.editor.addFile(hostPath: dir + "/host", at: b("usr/bin/tool"), permissions: 0o755)
    #expect(try s.builder.data.readBack(i.content) == content)
    #expect(i.permissions == 0o755 && i.mtime == Timestamp(seconds: 77))
    try s.editor.addSymlink(at: b("usr/bin/alias"), target: b("tool"))
    #expect(try s.builder.data.readBack(s.editor.lookup("usr/bin/alias")!.content) == b("tool"))
    #expect(throws: IngestError.self) {
      try s.editor.addFile(hostPath: dir + "/missing", at: b("x"))
    }
    let d = try s.editor.makeDirectories(b("var/lib/x"), permissions: 0o700, uid: 3)
    #expect(d.permissions == 0o700 && d.uid == 3)
    #expect(try s.editor.makeDirectories(b("var/lib/x")) === d)
  }

  @Test func globs() {
    #expect(PathGlob("*.so").matches(b("a.so")))
    #expect(!PathGlob("*.so").matches(b("lib/a.so")))
    #expect(PathGlob("**/*.so").matches(b("lib/a.so")))
    #expect(PathGlob("**/*.so").matches(b("a.so")))
    #expect(PathGlob("/usr/share/doc/**").matches(b("usr/share/doc/x/y")))
    #expect(!PathGlob("usr/share/doc/**").matches(b("usr/share/docs")))
    #expect(PathGlob("usr/lib/lib?.[ab]").matches(b("usr/lib/libz.a")))
    #expect(!PathGlob("usr/lib/lib?.[!ab]").matches(b("usr/lib/libz.a")))
    #expect(PathGlob("./etc/*").matches(b("etc/passwd")))
  }

  @Test func removeAndCapabilities() throws {
    let s = try Scratch()
    let e = s.editor
    for p in [
      "usr/share/doc/a/README", "usr/share/doc/b", "usr/lib/x.so", "usr/lib/sub/y.so",
      "system/bin/ping",
    ] {
      try e.addInline(b("data"), at: b(p))
    }
    #expect(e.remove(glob: "usr/share/doc/*") == 2)
    #expect(e.lookup("usr/share/doc")?.children.isEmpty == true)
    // File capabilities as the recipe's fs_config (RoseRecipe.FSConfig) sets them.
    let ping = try #require(e.lookup("system/bin/ping"))
    Capabilities.apply(0x2000, to: ping)
    #expect(
      ping.xattrs == [
        Xattr(
          "security.capability", [1, 0, 0, 2, 0, 0x20, 0, 0] + [UInt8](repeating: 0, count: 12))
      ])
    Capabilities.apply(0, to: ping)
    #expect(ping.xattrs.isEmpty)
    #expect(e.remove(glob: "**") > 0)
    #expect(e.root.children.isEmpty)
  }
}

@Suite struct LayeredInputTests {
  /// Several inputs in order, tar semantics across them: a later entry (in the same archive or a
  /// later input) replaces an earlier one; directories merge.
  @Test func laterInputsAndAppendedEntriesWin() throws {
    let dir = try tempDir("layers")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try sh(
      """
      cd '\(dir)' && mkdir -p a/etc b/etc && echo one > a/etc/conf && echo keep > a/etc/other
      chmod 700 a/etc && tar -cf base.tar -C a . && echo two > a/etc/conf && tar -rf base.tar -C a ./etc/conf
      echo three > b/etc/conf && chmod 750 b/etc && ln -s conf b/etc/link && tar -czf layer.tgz -C b .
      """)
    let s = try Scratch()
    try s.editor.ingest(dir + "/base.tar")
    #expect(try s.builder.data.readBack(s.editor.lookup("etc/conf")!.content) == b("two\n"))
    try s.editor.ingest(dir + "/layer.tgz")
    try s.editor.ingest(dir + "/b", at: b("opt/copy"))
    let e = s.editor
    #expect(try s.builder.data.readBack(e.lookup("etc/conf")!.content) == b("three\n"))
    #expect(try s.builder.data.readBack(e.lookup("etc/other")!.content) == b("keep\n"))
    #expect(e.lookup("etc")?.permissions == 0o750)
    #expect(e.lookup("etc/link")?.kind == .symlink)
    #expect(e.lookup("opt/copy/etc/link")?.kind == .symlink)
    #expect(throws: IngestError.self) { try e.ingest(dir + "/missing") }
  }
}
