import Foundation
import Testing

/// `rosepack map`: the block map as SVG (checked by Python's XML parser) and as HTML rendered by a real
/// headless chromium (the screenshot must show the map, not a blank page).
@Suite struct MapTests {
  /// A small image with two subvolumes: B replaces one file, so some blocks are shared and some not.
  static func makeImage(_ dir: String) throws -> String {
    let src = dir + "/src"
    try FileManager.default.createDirectory(
      atPath: src + "/etc", withIntermediateDirectories: true)
    for i in 0..<40 {
      let size = 500 + i * 997
      let bytes = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) })
      try bytes.write(to: URL(fileURLWithPath: src + "/etc/file\(i)"))
    }
    try Data(repeating: 0x5A, count: 300_000).write(to: URL(fileURLWithPath: src + "/big.bin"))
    let image = dir + "/v.img"
    let r = try CLI.rosepack(["convert", src, "-o", image, "--subvolumes", "a,b"])
    #expect(r.status == 0, "\(r.stderr)")
    return image
  }

  /// Python's own XML parser reads the SVG; returns the number of <rect> elements.
  static func svgRects(_ path: String) throws -> Int {
    let r = try CLI.tool(
      "python3",
      [
        "-c",
        "import sys, xml.etree.ElementTree as E; t = E.parse(sys.argv[1]); print(sum(1 for e in t.iter() if e.tag.endswith('rect')))",
        path,
      ])
    #expect(r.status == 0, "\(r.stderr)")
    return Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
  }

  @Test func svgAndHTMLNameEveryOwner() throws {
    let dir = try CLI.temporaryDirectory("map")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let image = try Self.makeImage(dir)
    let svg = dir + "/map.svg"
    var r = try CLI.rosepack(["map", image, "-o", svg])
    #expect(r.status == 0, "\(r.stderr)")
    #expect(try Self.svgRects(svg) > 20)
    let text = String(decoding: try CLI.bytes(svg), as: UTF8.self)
    for owner in [
      "superblock", "checkpoint slot", "inode page", "file data", "NAT", "VBM", "SSA", "free",
    ] {
      #expect(text.contains(">\(owner)</text>"), "legend lacks \(owner)")
    }
    let html = dir + "/map.html"
    r = try CLI.rosepack(["map", image, "-o", html])
    #expect(r.status == 0, "\(r.stderr)")
    let page = String(decoding: try CLI.bytes(html), as: UTF8.self)
    // The hover text of a data block names its path and inode.
    #expect(page.contains("file data /big.bin (ino "))
    #expect(page.contains("live in a+b"))
    // Wrong extension and a missing image fail with one line each.
    r = try CLI.rosepack(["map", image, "-o", dir + "/map.txt"])
    #expect(r.status == 1 && r.stderr.contains(".svg, .html or .png"))
    r = try CLI.rosepack(["map", dir + "/missing.img", "-o", svg])
    #expect(r.status == 1 && r.stderr.contains("missing.img"))
  }

  @Test func writeCountsAddAHeatPanel() throws {
    let dir = try CLI.temporaryDirectory("map-writes")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let image = try Self.makeImage(dir)
    var counts = [Int](repeating: 0, count: 4112)
    counts[2] = 500
    counts[100] = 3
    try Data("{\"blockSize\":4096,\"writes\":\(counts)}".utf8).write(
      to: URL(fileURLWithPath: image + ".writes.json"))
    let svg = dir + "/heat.svg"
    var r = try CLI.rosepack(["map", image, "-o", svg])
    #expect(r.status == 0, "\(r.stderr)")
    let text = String(decoding: try CLI.bytes(svg), as: UTF8.self)
    #expect(text.contains(">writes per block</text>"))
    #expect(text.contains("writes per cell (log scale)"))
    try Data("not json".utf8).write(to: URL(fileURLWithPath: dir + "/bad.json"))
    r = try CLI.rosepack(["map", image, "--writes", dir + "/bad.json", "-o", svg])
    #expect(r.status == 1 && r.stderr.contains("bad.json"))
  }

  /// A GPT disk: the RoseFS partition is found by label, and a partition that is not there is one error.
  @Test func mapsAPartitionOfADisk() throws {
    let dir = try CLI.temporaryDirectory("map-disk")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var r = try CLI.rosepack(["build", "Recipes/demo.conf", "-o", dir])
    #expect(r.status == 0, "\(r.stderr)")
    let disk = dir + "/demo_1.0.img"
    r = try CLI.rosepack(["map", disk, "--partition", "root", "-o", dir + "/root.svg"])
    #expect(r.status == 0, "\(r.stderr)")
    let svg = String(decoding: try CLI.bytes(dir + "/root.svg"), as: UTF8.self)
    #expect(svg.contains("partition") && svg.contains("'root'"))
    #expect(svg.contains(">file data</text>"))
    r = try CLI.rosepack(["map", disk, "--partition", "nosuch", "-o", dir + "/x.svg"])
    #expect(r.status == 1 && r.stderr.contains("nosuch"))
    #expect(r.stderr.split(separator: "\n").count == 1)
    #expect(!FileManager.default.fileExists(atPath: dir + "/x.svg"))
  }

  /// Decodes a PNG with Python's zlib (no imaging library needed) and returns (distinct colours,
  /// fraction of pixels that are not white).
  static let pngProbe = """
    import sys, zlib, struct
    d = open(sys.argv[1], 'rb').read()
    assert d[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
    p = 8; idat = b''; w = h = 0
    while p < len(d):
        n, t = struct.unpack('>I4s', d[p:p+8]); c = d[p+8:p+8+n]; p += 12 + n
        if t == b'IHDR': w, h, bd, ct = struct.unpack('>IIBB', c[:10])
        if t == b'IDAT': idat += c
    bpp = {2: 3, 6: 4}[ct]; raw = zlib.decompress(idat); stride = w * bpp
    prev = bytearray(stride); colours = set(); dark = 0; i = 0
    for y in range(h):
        f = raw[i]; line = bytearray(raw[i+1:i+1+stride]); i += 1 + stride
        for x in range(stride):
            a = line[x-bpp] if x >= bpp else 0; b = prev[x]; c = prev[x-bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp * 3):
            px = bytes(line[x:x+3]); colours.add(px)
            if px != b'\\xff\\xff\\xff': dark += 1
        prev = line
    print(len(colours), dark / max(1, (w * h) // 3))
    """

  @Test func htmlRendersInHeadlessChromium() throws {
    guard
      let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: {
        FileManager.default.isExecutableFile(atPath: $0)
      })
    else {
      print(
        "skipped: chromium is not installed (apt-get install chromium; scripts/install-deps.sh)")
      return
    }
    let dir = try CLI.temporaryDirectory("map-chromium")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let image = try Self.makeImage(dir)
    let html = dir + "/map.html"
    let r = try CLI.rosepack(["map", image, "-o", html])
    #expect(r.status == 0, "\(r.stderr)")
    let png = dir + "/shot.png"
    let shot = try CLI.run(
      chromium,
      [
        "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--user-data-dir=\(dir)/profile", "--screenshot=\(png)", "--window-size=800,700",
        "file://\(html)",
      ], environment: [:])
    #expect(shot.status == 0, "\(shot.stderr)")
    let probe = try CLI.tool("python3", ["-c", Self.pngProbe, png])
    #expect(probe.status == 0, "\(probe.stderr)")
    let parts = probe.stdout.split(separator: " ").compactMap {
      Double($0.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    try #require(parts.count == 2)
    // The owners' palette shows (several colours) and the map covers a good part of the page.
    #expect(parts[0] >= 6, "only \(parts[0]) colours: blank page?")
    #expect(parts[1] > 0.1, "only \(parts[1]) of the page is drawn")
  }
}
