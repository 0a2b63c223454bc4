import ArgumentParser
import Foundation
import RoseFuzz

/// `rosepack debug-fuzz` (hidden): the driver of the mutation fuzz tests. It damages a valid input
/// in a seeded, reproducible way and runs rosepack's own commands on each variant in this process.
/// Every outcome must be success or a thrown error: a trap kills the process, and the test that
/// started it (Tests/RosepackTests/FuzzTests.swift) sees the signal, reads which mutation was
/// running from the progress file, reports it and restarts after it.
///
/// Targets:
/// - `image`: a RoseFS image; one to three fields of a metadata structure (superblock, checkpoint
///   and its heads, NAT/VBM/SSA/map blocks, directory, extent and xattr nodes, tail blocks, inode
///   slots) get a new value, then the structure's checksum is recomputed so that the damage reaches
///   the logic behind the checksum check. Runs inspect, inspect --json, ls -R -l, cat, export, fsck.
/// - `tar`: a tar archive; header fields are changed and the header checksum recomputed; runs
///   convert.
/// - `recipe`: a recipe file; lines are duplicated, cut, spliced, and values replaced with hostile
///   ones; runs the recipe loader.
struct FuzzCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "debug-fuzz", abstract: "Mutation fuzz driver for the test suite.",
    shouldDisplay: false)

  @Option var target: String
  @Option var input: String
  @Option var work: String
  @Option var seed: UInt64 = 1
  @Option var start: Int = 0
  @Option var count: Int = 100
  @Option(help: "Paths inside the image to cat.") var cat: [String] = []

  func run() throws {
    let pristine = try [UInt8](Data(contentsOf: URL(fileURLWithPath: input)))
    let progressPath = work + "/progress"
    // Command output is not the point; keep stdout for the summary.
    let savedStdout = dup(1)
    let devNull = open("/dev/null", O_WRONLY)
    dup2(devNull, 2)
    // A damaged size can make a valid sparse file of 2^40 bytes: cat and export would then spend
    // hours writing zeros. Outputs go to files capped at 256 MiB; past it a write fails (EFBIG)
    // and the command stops with an error, which is an outcome like any other.
    signal(SIGXFSZ, SIG_IGN)
    var cap = rlimit(rlim_cur: 256 << 20, rlim_max: 256 << 20)
    setrlimit(Int32(RLIMIT_FSIZE.rawValue), &cap)
    var outcomes: [String: Int] = [:]
    var executions = 0
    for index in start..<start + count {
      var rng = FuzzRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index))
      let variant: [UInt8]
      let note: String
      switch target {
      case "image": (variant, note) = ImageMutator.mutate(pristine, &rng)
      case "tar": (variant, note) = TarMutator.mutate(pristine, &rng)
      case "recipe": (variant, note) = RecipeMutator.mutate(pristine, &rng)
      default: throw CLIError.usage("--target image|tar|recipe")
      }
      let record = "\(index) \(note)\n"
      try Data(record.utf8).write(to: URL(fileURLWithPath: progressPath))
      let path = work + "/variant-\(target)"
      try writeSparse(variant, to: path)
      fflush(nil)  // every stream: print buffers in stdout
      let sink = open(work + "/stdout", O_WRONLY | O_CREAT | O_TRUNC, 0o644)
      dup2(sink, 1)
      close(sink)
      for args in commands(path) {
        executions += 1
        do {
          var command = try Rosepack.parseAsRoot(args)
          try command.run()
          outcomes["\(args[0]) ok", default: 0] += 1
        } catch {
          outcomes["\(args[0]) error", default: 0] += 1
        }
      }
      fflush(nil)  // every stream: print buffers in stdout
      dup2(savedStdout, 1)
    }
    let summary = ["executions": executions] as [String: Int]
    let data = try JSONSerialization.data(
      withJSONObject: ["summary": summary, "outcomes": outcomes], options: [.sortedKeys])
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
  }

  /// Writes only the blocks that are not zero (an image is mostly free space): fast on any disk.
  func writeSparse(_ bytes: [UInt8], to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw CLIError.failed("\(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    guard ftruncate(fd, off_t(bytes.count)) == 0 else {
      throw CLIError.failed("\(path): \(String(cString: strerror(errno)))")
    }
    try bytes.withUnsafeBytes { all in
      var at = 0
      while at < all.count {
        let end = min(at + 4096, all.count)
        let block = UnsafeRawBufferPointer(rebasing: all[at..<end])
        if block.contains(where: { $0 != 0 }) {
          guard pwrite(fd, block.baseAddress, block.count, off_t(at)) == block.count else {
            throw CLIError.failed("\(path): \(String(cString: strerror(errno)))")
          }
        }
        at = end
      }
    }
  }

  func commands(_ path: String) -> [[String]] {
    switch target {
    case "image":
      var list: [[String]] = [
        ["inspect", path], ["inspect", "--json", path], ["ls", "-R", "-l", path, "/"],
        ["fsck", path], ["export", path, "-o", work + "/export.tar"],
      ]
      for c in cat { list.append(["cat", path, c]) }
      return list
    case "tar":
      return [["convert", path, "-o", work + "/from-tar.img", "--quiet"]]
    default:
      return [["build", path, "-o", work + "/out", "--dump-config"]]
    }
  }
}
