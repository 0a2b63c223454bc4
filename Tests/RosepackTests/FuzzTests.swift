import Foundation
import Testing

/// Mutation fuzzing of everything rosepack reads: RoseFS images (with checksums recomputed after
/// each change, so that the damage reaches the logic), tar archives (header checksums recomputed)
/// and recipes. The mutations run in a child `rosepack debug-fuzz` process: a trap is seen here as
/// a signal death, the mutation that caused it is read from the child's progress file and
/// reported, and the run resumes after it. Each outcome must be success or a clean error.
///
/// The normal suite runs a few hundred mutations; ROSEPACK_LONG_TESTS=1 runs ten times more.
/// A seed is fixed, so a finding reproduces with
/// `rosepack debug-fuzz --target T --input I --work W --seed S --start N --count 1`.
@Suite("Mutation fuzzing: damaged images, archives and recipes never crash rosepack")
struct FuzzTests {
  static let long = ProcessInfo.processInfo.environment["ROSEPACK_LONG_TESTS"] == "1"

  struct Finding: CustomStringConvertible {
    var what: String
    var description: String { what }
  }

  struct Campaign {
    var executions = 0
    var mutations = 0
    var outcomes: [String: Int] = [:]
    var findings: [Finding] = []
  }

  /// Runs `count` mutations of `input`, restarting after each crash or hang.
  static func campaign(
    target: String, input: String, seed: UInt64, count: Int, extra: [String] = [],
    hangSeconds: Double = 240
  ) throws -> Campaign {
    guard let binary = CLI.binary else { throw TestFailure("rosepack binary not built") }
    // Every mutation writes a variant and runs commands that write: keep that off the disk.
    let shm = "/dev/shm/rosepack-fuzz-\(target)-\(getpid())-\(seed)"
    let work: String
    if (try? FileManager.default.createDirectory(atPath: shm, withIntermediateDirectories: true))
      != nil
    {
      work = shm
    } else {
      work = try CLI.temporaryDirectory("fuzz-\(target)")
    }
    defer { try? FileManager.default.removeItem(atPath: work) }
    var result = Campaign()
    var start = 0
    while start < count {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: binary)
      process.arguments =
        [
          "debug-fuzz", "--target", target, "--input", input, "--work", work, "--seed",
          String(seed), "--start", String(start), "--count", String(count - start),
        ] + extra
      let outPath = work + "/summary.json"
      _ = FileManager.default.createFile(atPath: outPath, contents: nil)
      process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
      process.standardError = FileHandle.nullDevice
      try process.run()
      // A hang is a finding too: no mutation may take minutes.
      var lastProgress = ""
      var lastChange = Date()
      var hung = false
      while process.isRunning {
        usleep(100_000)
        let p = (try? String(contentsOfFile: work + "/progress", encoding: .utf8)) ?? ""
        if p != lastProgress {
          lastProgress = p
          lastChange = Date()
        } else if Date().timeIntervalSince(lastChange) > hangSeconds {
          kill(process.processIdentifier, SIGKILL)
          hung = true
        }
      }
      process.waitUntilExit()
      let progress = (try? String(contentsOfFile: work + "/progress", encoding: .utf8)) ?? "0"
      let index = Int(progress.split(separator: " ").first ?? "0") ?? 0
      if process.terminationReason == .exit && process.terminationStatus == 0 {
        let data = try Data(contentsOf: URL(fileURLWithPath: outPath))
        struct Summary: Decodable {
          var summary: [String: Int]
          var outcomes: [String: Int]
        }
        let s = try JSONDecoder().decode(Summary.self, from: data)
        result.executions += s.summary["executions"] ?? 0
        for (k, v) in s.outcomes { result.outcomes[k, default: 0] += v }
        result.mutations += count - start
        break
      }
      let how =
        hung
        ? "hang (no progress for \(Int(hangSeconds)) s)"
        : process.terminationReason == .uncaughtSignal
          ? "signal \(process.terminationStatus)" : "exit \(process.terminationStatus)"
      result.findings.append(
        Finding(
          what:
            "\(target) seed \(seed) mutation \(progress.trimmingCharacters(in: .newlines)): \(how)")
      )
      result.mutations += index - start + 1
      start = index + 1
    }
    print(
      "fuzz \(target) seed \(seed): \(result.mutations) mutations, \(result.executions) command runs, outcomes \(result.outcomes.sorted { $0.key < $1.key }), findings \(result.findings.count)"
    )
    return result
  }

  /// A small image with every structure the format has: inline files, tails, a directory tree of
  /// 300 entries, an extent tree (a file of 80 runs between holes), an xattr node, 20 nested
  /// directories, a symlink, a hard link, a device, a FIFO, and two subvolumes.
  static let corpus: Result<(dir: String, image: String, tar: String), TestFailure> = {
    do {
      let dir = try CLI.temporaryDirectory("fuzz-corpus")
      let script = dir + "/corpus.py"
      try Data(corpusScript.utf8).write(to: URL(fileURLWithPath: script))
      let tar = dir + "/corpus.tar"
      let made = try CLI.run("/usr/bin/env", ["python3", script, tar], environment: [:])
      guard made.status == 0 else { return .failure(TestFailure("python3: \(made.stderr)")) }
      let image = dir + "/corpus.img"
      let convert = try CLI.rosepack(["convert", tar, "-o", image, "--subvolumes", "a,b", "-q"])
      guard convert.status == 0 else { return .failure(TestFailure(convert.stderr)) }
      return .success((dir, image, tar))
    } catch {
      return .failure(TestFailure("\(error)"))
    }
  }()

  static let corpusScript = """
    import tarfile, io, sys
    def add(t, name, data=None, **kw):
        ti = tarfile.TarInfo(name)
        for k, v in kw.items(): setattr(ti, k, v)
        if data is not None: ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
    with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as t:
        add(t, 'etc', type=tarfile.DIRTYPE, mode=0o755)
        add(t, 'etc/os-release', b'NAME=fuzz\\n', mode=0o644)
        add(t, 'etc/big', bytes(range(256)) * 40, mode=0o644)
        ti = tarfile.TarInfo('etc/xattr'); ti.size = 5000
        ti.pax_headers = {'SCHILY.xattr.user.big': 'v' * 1500, 'SCHILY.xattr.user.small': 's'}
        t.addfile(ti, io.BytesIO(b'x' * 5000))
        add(t, 'many', type=tarfile.DIRTYPE, mode=0o755)
        for i in range(300):
            add(t, 'many/entry-%04d' % i, b'%d' % i)
        blocks = b''.join((b'\\0' * 4096) if i % 2 else (bytes([i % 251 + 1]) * 4096) for i in range(160))
        add(t, 'sparse', blocks + b'tail', mode=0o644)
        d = 'deep'
        add(t, d, type=tarfile.DIRTYPE)
        for i in range(20):
            d += '/d%d' % i
            add(t, d, type=tarfile.DIRTYPE)
        add(t, d + '/leaf', b'leaf')
        add(t, 'link', type=tarfile.SYMTYPE, linkname='etc/os-release')
        add(t, 'hard', type=tarfile.LNKTYPE, linkname='etc/big')
        add(t, 'dev', type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        add(t, 'fifo', type=tarfile.FIFOTYPE)
    """

  func corpus() throws -> (dir: String, image: String, tar: String) {
    try Self.corpus.get()
  }

  @Test func damagedImagesNeverCrashTheReaders() throws {
    let c = try corpus()
    #expect(try CLI.rosepack(["fsck", c.image]).status == 0, "the corpus itself is clean")
    let result = try Self.campaign(
      target: "image", input: c.image, seed: 20_261_128, count: Self.long ? 2000 : 80,
      extra: ["--cat", "/etc/os-release", "--cat", "/sparse", "--cat", "/etc/xattr"])
    #expect(result.findings.isEmpty, "\(result.findings)")
    // The mutations reach the logic: some variants still read, some are refused.
    #expect((result.outcomes["fsck error"] ?? 0) > 0)
    #expect((result.outcomes["ls ok"] ?? 0) > 0)
  }

  @Test func damagedTarHeadersNeverCrashConvert() throws {
    let c = try corpus()
    let result = try Self.campaign(
      target: "tar", input: c.tar, seed: 7, count: Self.long ? 2000 : 150)
    #expect(result.findings.isEmpty, "\(result.findings)")
    #expect((result.outcomes["convert error"] ?? 0) > 0)
    #expect((result.outcomes["convert ok"] ?? 0) > 0)
  }

  @Test func damagedRecipesNeverCrashTheLoader() throws {
    let dir = try CLI.temporaryDirectory("fuzz-recipe")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let recipe = dir + "/r.conf"
    try Data(
      """
      [Image]
      Name=fuzz
      Version=1.0
      SectorSize=512

      [Output]
      Formats=raw zst manifest

      [Partition]
      Type=esp
      Label=esp
      Format=vfat
      SizeMinBytes=64M
      Inline=/loader/loader.conf:default a

      [Partition]
      Type=root
      Label=root
      Format=rosefs
      Subvolumes=a b
      SizeMinBytes=32M
      PaddingMinBytes=1M
      Inline=/etc/hostname:fuzz
      Alignment=1M
      """.utf8
    ).write(to: URL(fileURLWithPath: recipe))
    let result = try Self.campaign(
      target: "recipe", input: recipe, seed: 11, count: Self.long ? 3000 : 300)
    #expect(result.findings.isEmpty, "\(result.findings)")
  }
}
