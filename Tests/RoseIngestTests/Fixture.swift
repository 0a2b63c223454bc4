import Foundation
import RoseFS
import Testing

@testable import RoseIngest

/// Runs a shell command; throws with its output when it fails.
@discardableResult
func sh(_ cmd: String) throws -> String {
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/bin/bash")
  p.arguments = ["-c", cmd]
  let out = Pipe()
  p.standardOutput = out
  p.standardError = out
  try p.run()
  let data = out.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  let s = String(decoding: data, as: UTF8.self)
  if p.terminationStatus != 0 { throw ShellError(command: cmd, output: s) }
  return s
}

struct ShellError: Error, CustomStringConvertible {
  var command: String
  var output: String
  var description: String { "\(command.prefix(200)): \(output)" }
}

func tempDir(_ tag: String) throws -> String {
  let d = FileManager.default.temporaryDirectory.appendingPathComponent(
    "roseingest-\(tag)-\(getpid())-\(UUID().uuidString.prefix(8))"
  ).path
  try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
  return d
}

/// An ImageBuilder on a temp file plus an editor; the file is removed when the value dies.
final class Scratch {
  let dir: String
  let fd: Int32
  let builder: ImageBuilder
  let editor: TreeEditor
  init(epoch: Int64 = 1_700_000_000) throws {
    dir = try tempDir("img")
    let p = dir + "/image"
    fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0o644)
    builder = try ImageBuilder(
      image: ImageFile(fd: fd, path: p), options: BuildOptions(sourceDateEpoch: epoch))
    editor = TreeEditor(builder: builder)
  }
  deinit {
    close(fd)
    try? FileManager.default.removeItem(atPath: dir)
  }
}

let n255 = String(repeating: "n", count: 255)

/// The generated source tree and the archives made from it with real tools. Built once per run.
final class Fixture: Sendable {
  let dir: String
  let failure: String?
  var src: String { dir + "/src" }
  init() {
    var d = "/nonexistent"
    var f: String? = nil
    do {
      d = try tempDir("fixture")
      try sh(Fixture.script(d) + "\n")
    } catch {
      f = "\(error)"
    }
    dir = d
    failure = f
    atexit { try? FileManager.default.removeItem(atPath: sharedFixture.dir) }
  }
  /// Throws when the fixture could not be made (the tests using it then fail instead of crashing).
  func ready() throws -> Fixture {
    if let failure { throw ShellError(command: "fixture", output: failure) }
    return self
  }

  static func script(_ d: String) -> String {
    """
    set -e
    export LC_ALL=C
    S='\(d)/src'; mkdir -p "$S"; cd "$S"
    mkdir -p d/sub tmp sg
    chmod 1777 tmp; chmod 2755 sg
    : > f0
    for n in 1 368 4095 4096 4097 8192; do head -c $n /dev/urandom > f$n; done
    cp f368 suid; chmod 4755 suid
    chown 100000:200000 f4095
    ln f4097 d/hardlink
    printf 'x' > $'bad\\xff'
    printf 'long' > \(n255)
    T=$(python3 -c "print((('t'*199+'/')*21)[:4095], end='')")
    ln -s "$T" longlink
    ln -s ../f1 d/rel
    mknod cdev c 1 3; mknod bdev b 7 0; mkfifo fifo
    truncate -s 2G sparse
    printf '8bytes!!' | dd of=sparse bs=1 seek=1073741824 conv=notrunc status=none
    setfattr -n user.bin -v 0x00ff0102 f368
    setfattr -n security.capability -v 0x0100000200040000000000000000000000000000 suid
    setfacl -m u:1234:rwx,g:5678:r-x f8192
    setfacl -d -m u:1234:r-x d
    find . -exec touch -h -d '2021-03-04 05:06:07.123456789' {} +
    touch -h -d '1999-12-31 23:59:59.5' f1 d/rel
    cd '\(d)'
    tar --format=pax --xattrs --xattrs-include='*' --acls --sparse --numeric-owner -cf pax.tar -C src .
    tar --format=pax --sparse --sparse-version=0.1 --numeric-owner -cf pax01.tar -C src .
    tar --format=pax --sparse --sparse-version=1.0 --numeric-owner -cf pax10.tar -C src .
    tar --format=gnu --sparse --numeric-owner -cf gnu.tar -C src .
    tar --format=ustar --numeric-owner --exclude=./sparse --exclude=./longlink --exclude=./\(n255) -cf ustar.tar -C src .
    LC_ALL=C.UTF-8 bsdtar --format=pax --numeric-owner -cf bsd.tar -C src . 2>/dev/null || test -s bsd.tar
    (cd src && find . ! -name sparse | LC_ALL=C sort | cpio -o -H newc --quiet > ../newc.cpio)
    (cd src && find . \\( -type f -o -type d -o -type l \\) ! -name sparse | LC_ALL=C sort | zip -q -y ../files.zip -@)
    gzip -k -c pax.tar > pax.tar.gz
    xz -k -c pax.tar > pax.tar.xz
    zstd -q -c pax.tar > pax.tar.zst
    bzip2 -k -c pax.tar > pax.tar.bz2
    lz4 -q -c pax.tar > pax.tar.lz4
    gzip -k -c gnu.tar > gnu.tgz
    """
  }
}

private let sharedFixture = Fixture()
var fixture: Fixture { get throws { try sharedFixture.ready() } }

/// Which fields a comparison looks at (formats differ in what they keep).
struct Fields {
  var perms = true
  var owner = true
  var mtime = true
  var nsec = true
  var ctime = false
  var xattrs = true
  var links = true
  var devices = true
}

/// Every path of the tree mapped to a line with the fields asked for; content as a digest of its
/// non-zero bytes (so stored holes and zero blocks compare equal).
func describe(_ root: Inode, _ source: ContentSource, _ f: Fields = Fields()) throws -> [String:
  String]
{
  var out: [String: String] = [:]
  var firstName: [ObjectIdentifier: String] = [:]
  func line(_ p: String, _ i: Inode) throws -> String {
    var s = "\(i.kind)"
    if f.perms && i.kind != .symlink { s += " perm=\(String(i.permissions, radix: 8))" }
    if f.owner { s += " own=\(i.uid):\(i.gid)" }
    if f.mtime && i.kind != .directory {
      s += " mtime=\(i.mtime.seconds)" + (f.nsec ? ".\(i.mtime.nanoseconds)" : "")
    }
    if f.ctime { s += " ctime=\(i.ctime.seconds).\(i.ctime.nanoseconds)" }
    if f.xattrs {
      for x in i.xattrs {
        s +=
          " x:\(Name.printable(x.name))=\(x.value.map { String($0, radix: 16) }.joined(separator: ","))"
      }
    }
    switch i.kind {
    case .regular, .symlink:
      s += " size=\(i.content.size) data=\(try digest(i.content, source))"
    case .characterDevice, .blockDevice:
      if f.devices { s += " dev=\(i.rdevMajor),\(i.rdevMinor)" }
    default: break
    }
    if f.links && i.kind != .directory {
      let id = ObjectIdentifier(i)
      if let first = firstName[id] { s += " link=\(first)" } else { firstName[id] = p }
    }
    return s
  }
  out["."] = try line(".", root)
  try TreeEditor.walk(root, prefix: []) { path, inode in
    let p = Name.printable(path)
    out[p] = try line(p, inode)
  }
  return out
}

func digest(_ c: FileContent, _ source: ContentSource) throws -> String {
  var h: UInt64 = 0xcbf2_9ce4_8422_2325
  try StoredPieces.forEach(c, source) { b, off in
    for (i, byte) in b.enumerated() where byte != 0 {
      var x = (off + UInt64(i)) &* 31 &+ UInt64(byte)
      for _ in 0..<8 {
        h = (h ^ (x & 0xFF)) &* 0x100_0000_01b3
        x >>= 8
      }
    }
  }
  return String(h, radix: 16)
}

/// Differences between two descriptions, one line per path, for a readable failure.
func diff(_ a: [String: String], _ b: [String: String], ignoring: Set<String> = []) -> [String] {
  var out: [String] = []
  for k in Set(a.keys).union(b.keys).sorted() where !ignoring.contains(k) {
    if a[k] != b[k] {
      out.append("\(k):\n  want \(a[k] ?? "missing")\n  got  \(b[k] ?? "missing")")
    }
  }
  return out
}
