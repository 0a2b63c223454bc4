import ArgumentParser
import Foundation
import RoseBuild
import RoseDisk
import RoseIngest
import RoseRecipe
import RoseSizes

/// `rosepack build`: a recipe into a flashable disk image and its flashing formats.
struct BuildCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "build",
    abstract: "Build a disk image from a recipe.",
    discussion: """
      Reads the recipe (with its includes and NAME.conf.d drop-ins), fills every RoseFS partition
      from its content layers (A/B slots as subvolumes), plans the GPT disk, writes the raw image
      and the outputs of [Output] Formats= into OUTDIR. Outputs are written under temporary names
      and renamed at the end: a failed build leaves no output file behind.
      SOURCE_DATE_EPOCH (environment) wins over SourceDateEpoch=; two builds are byte-identical.
      """)

  @Argument(
    help: ArgumentHelp(
      "The recipe file (NAME.conf); with --definitions, the disk image to write (IMAGE.img) or an "
        + "output directory.", valueName: "recipe-or-image"))
  var recipe: String
  @Option(name: .shortAndLong, help: "Output directory (created if missing).") var output: String =
    "."
  @Option(
    help: ArgumentHelp(
      "A systemd repart.d directory (one partition per *.conf, in file-name order): builds the "
        + "disk systemd-repart --empty=create builds from it.", valueName: "dir"))
  var definitions: String?
  @Option(
    help: ArgumentHelp(
      "Absolute CopyFiles= (and with --definitions CopyBlocks=) sources are under this directory, "
        + "as in systemd-repart; never the build host's / unless --root / is given.",
      valueName: "dir"))
  var root: String?
  @Option(
    help: ArgumentHelp("--definitions: the UUID seed (as repart's --seed).", valueName: "uuid"))
  var seed: String?
  @Option(
    help: ArgumentHelp(
      "--definitions: the disk size (K, M, G, T suffixes), or auto.", valueName: "size"))
  var size: String = "auto"
  @Option(help: ArgumentHelp("--definitions: logical sector size, 512 or 4096.", valueName: "n"))
  var sectorSize: Int = 512
  @Option(
    name: .customLong("define"),
    help: "NAME=VALUE for %{NAME} in the recipe (repeatable; wins over Define=).")
  var defines: [String] = []
  @Option(
    help: ArgumentHelp(
      "PEM private key that signs Verity=signature partitions (as systemd-repart's "
        + "--private-key).", valueName: "file"))
  var privateKey: String?
  @Option(
    help: ArgumentHelp(
      "PEM certificate of --private-key, named in Verity=signature partitions.",
      valueName: "file"))
  var certificate: String?
  @Option(
    help: ArgumentHelp(
      "Split the whole-disk simg into valid sparse images of at most this size, as fastboot does "
        + "at the device's max-download-size (wins over MaxDownloadSize=).", valueName: "size"))
  var maxDownloadSize: String?
  @Flag(help: "Print the result as one JSON document on stdout.") var json = false
  @Flag(help: "Print the fully resolved recipe and exit.") var dumpConfig = false
  @Flag(help: "List the recipe keys and exit.") var helpKeys = false
  @Flag(name: .shortAndLong, help: "No progress display.") var quiet = false

  func run() throws {
    if helpKeys {
      print(helpKeysText(), terminator: "")
      return
    }
    var values: [String: String] = [:]
    for define in defines {
      guard let eq = define.firstIndex(of: "="), eq != define.startIndex else {
        throw CLIError.usage("--define '\(define)': expected NAME=VALUE")
      }
      values[String(define[..<eq])] = String(define[define.index(after: eq)...])
    }
    var loaded: Recipe
    var outputDirectory = output
    do {
      if let definitions {
        (loaded, outputDirectory) = try loadDefinitions(definitions)
      } else {
        loaded = try RecipeLoader.load(
          path: recipe, defines: values, environment: ProcessInfo.processInfo.environment,
          root: root)
      }
    } catch let error as RecipeErrors {
      reportErrors(error.errors)
      throw ExitCode.failure
    } catch let error as RecipeError {
      reportErrors([error])
      throw ExitCode.failure
    }
    if let text = maxDownloadSize {
      guard let limit = try parseSize(text, option: "--max-download-size"), limit >= 64 << 10 else {
        throw CLIError.usage("--max-download-size '\(text)': give a size of at least 64K")
      }
      let kinds = Set(loaded.output.kinds + [.simg])
      loaded.output.kinds = OutputKind.allCases.filter { kinds.contains($0) }
      loaded.output.maxDownloadSize = limit
    }
    if (privateKey == nil) != (certificate == nil) {
      throw CLIError.usage("--private-key and --certificate go together")
    }
    if dumpConfig {
      print(RoseRecipe.dumpConfig(loaded), terminator: "")
      return
    }
    if !json && !quiet { report(loaded.warnings, kind: "warning") }
    let progress = Progress(quiet: quiet || json)
    var pipeline: BuildPipeline?
    do {
      let build = try BuildPipeline(
        recipe: loaded, outputDirectory: outputDirectory, progress: progress)
      pipeline = build
      build.verityPrivateKey = privateKey
      build.verityCertificate = certificate
      let summary = try build.run()
      if !quiet { reportInputWarnings(build.inputWarnings) }
      if json {
        try printJSON(summary)
      } else if !quiet {
        print(summary.text)
      }
    } catch let error as BuildFailure {
      progress.done()
      if !quiet { reportInputWarnings(pipeline?.inputWarnings ?? []) }
      try reportBuildFailure(error)
    } catch let error as RecipeErrors {
      progress.done()
      reportErrors(error.errors)
      throw ExitCode.failure
    } catch {
      progress.done()
      throw error
    }
  }
}

extension BuildCommand {
  /// Prints a build failure: at its recipe lines when it has them, else as one error line. The
  /// failures about the command line's own values are worded with its flags.
  func reportBuildFailure(_ failure: BuildFailure) throws -> Never {
    switch failure {
    case .diskBelowMinimum(let given, let minimum):
      reportErrors([
        RecipeError(
          file: "--size \(formatSize(given, exact: true))", line: 0, column: 0,
          message:
            "the disk is too small: these partitions need at least \(formatSize(minimum, exact: true))",
          hint: "give --size \(minimum) or more, or --size auto")
      ])
    case .noRoomOnDisk(_, let at, _, _) where definitions != nil:
      let message = failure.diagnostics?.first?.message ?? failure.description
      reportErrors([
        RecipeError(
          file: at.file, line: at.line, column: at.column, message: message,
          hint: "give a larger --size, or lower SizeMinBytes=/PaddingMinBytes=")
      ])
    case .signingKeyMissing(_, let at):
      let message = failure.diagnostics?.first?.message ?? failure.description
      reportErrors([
        RecipeError(
          file: at.file, line: at.line, column: at.column, message: message,
          hint: "give --private-key KEY.pem and --certificate CERT.pem")
      ])
    case .outputOccupied:
      throw CLIError.usage("-o \(failure)")
    default:
      guard let diagnostics = failure.diagnostics else {
        throw CLIError.failed(failure.description)
      }
      reportErrors(diagnostics)
    }
    throw ExitCode.failure
  }

  /// `--definitions DIR ... IMAGE-or-OUTDIR`: the recipe of a repart.d directory and the
  /// directory its outputs go to.
  func loadDefinitions(_ directory: String) throws -> (Recipe, String) {
    var seedGUID = GUID.zero
    if let seed {
      guard let parsed = GUID.parseID128(seed) else {
        throw CLIError.usage("--seed '\(seed)': expected a UUID (32 hex digits, dashes optional)")
      }
      seedGUID = parsed
    }
    guard sectorSize == 512 || sectorSize == 4096 else {
      throw CLIError.usage("--sector-size \(sectorSize): expected 512 or 4096")
    }
    var diskSize: UInt64?
    if size != "auto" {
      guard let bytes = parseCLISize(size), bytes > 0, bytes < 1 << 60 else {
        throw CLIError.usage(
          "--size '\(size)': expected bytes with an optional K, M, G or T suffix, or auto")
      }
      // repart rounds --size up to its grain (4096 bytes, or a larger sector).
      diskSize = RepartLayout.roundUp(bytes, RepartLayout.grain(sectorSize: UInt64(sectorSize)))
    }
    var recipe = try RepartDefinitions.load(
      directory: directory,
      options: .init(root: root, seed: seedGUID, diskSize: diskSize, sectorSize: sectorSize))
    let target = (self.recipe as NSString).standardizingPath
    var isDirectory: ObjCBool = false
    let exists = FileManager.default.fileExists(atPath: target, isDirectory: &isDirectory)
    if target.hasSuffix(".img") && !(exists && isDirectory.boolValue) {
      recipe.output = OutputSpec(
        kinds: [.raw], baseName: String((target as NSString).lastPathComponent.dropLast(4)))
      let parent = (target as NSString).deletingLastPathComponent
      return (recipe, parent.isEmpty ? "." : parent)
    }
    recipe.output = OutputSpec(kinds: [.raw, .manifest], baseName: recipe.image.name)
    return (recipe, target)
  }
}

func parseCLISize(_ text: String) -> UInt64? {
  var digits = Substring(text)
  var multiplier: UInt64 = 1
  if let last = digits.last, let index = "KMGT".firstIndex(of: last) {
    multiplier = 1 << (10 * UInt64("KMGT".distance(from: "KMGT".startIndex, to: index) + 1))
    digits = digits.dropLast()
  }
  guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = UInt64(digits)
  else { return nil }
  let (product, overflow) = n.multipliedReportingOverflow(by: multiplier)
  return overflow ? nil : product
}

/// libarchive's warnings about the inputs on stderr, one line each, naming archive and entry.
func reportInputWarnings(_ warnings: [ArchiveWarning]) {
  for warning in warnings {
    FileHandle.standardError.write(Data("rosepack: warning: \(warning)\n".utf8))
  }
}

/// Compiler-style diagnostics on stderr: `file:line:col: error: message`, then the hint.
func reportErrors(_ errors: [RecipeError]) { report(errors, kind: "error") }

func report(_ diagnostics: [RecipeError], kind: String) {
  for d in diagnostics {
    let place = d.line > 0 ? "\(d.file):\(d.line):\(d.column)" : d.file
    var text = "\(place): \(kind): \(d.message)\n"
    if let hint = d.hint { text += "  hint: \(hint)\n" }
    FileHandle.standardError.write(Data(text.utf8))
  }
}

/// `rosepack init`: a starter recipe project that builds as it is, copied from `Templates/NAME/`.
struct InitCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "init", abstract: "Create a recipe project from a starter template.",
    discussion: """
      Copies Templates/NAME/ (a recipe NAME.conf, its inputs and Mustache templates) into DIR.
      Templates/ is found through $ROSEPACK_TEMPLATES, next to the rosepack executable
      (Templates/ or share/rosepack/Templates/), or in the source tree it was built in.
      """)

  @Option(help: "The starter template (see --list).") var template: String = "minimal"
  @Flag(help: "List the starter templates and exit.") var list = false
  @Argument(
    help: "Directory to create the project in (created if missing; files are never overwritten).")
  var directory: String?

  func run() throws {
    guard let templates = StarterTemplates.directory() else {
      throw CLIError.failed(
        "cannot find the Templates/ directory; set ROSEPACK_TEMPLATES to the Templates/ folder of "
          + "the rosepack sources")
    }
    let starters = StarterTemplates.list(in: templates)
    if list {
      for starter in starters { print("\(starter.name)\t\(starter.summary)") }
      return
    }
    guard let directory else {
      throw CLIError.usage("rosepack init: give the project DIRECTORY (or --list)")
    }
    guard let starter = starters.first(where: { $0.name == template }) else {
      throw CLIError.usage(
        "--template '\(template)' is not a starter in \(templates); use one of "
          + starters.map(\.name).joined(separator: ", "))
    }
    let path: String
    do {
      path = try starter.write(to: directory)
    } catch let error as RecipeError {
      throw CLIError.failed(error.description)
    }
    print("created \(path) (\(starter.summary))")
    print(
      "build it with: rosepack build \(path) -o \((directory as NSString).appendingPathComponent("out"))"
    )
  }
}

/// `rosepack recipe`: the recipe language reference.
struct RecipeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "recipe", abstract: "Recipe language help: every key, or the full reference.")

  @Flag(help: "List every recipe key with its values, default and meaning.") var helpKeys = false
  @Flag(help: "Print the recipe reference (docs/RECIPES.md) as Markdown.") var docs = false

  func run() throws {
    if docs {
      print(recipesMarkdown(), terminator: "")
    } else if helpKeys {
      print(helpKeysText(), terminator: "")
    } else {
      throw CLIError.usage("rosepack recipe: give --help-keys or --docs")
    }
  }
}
