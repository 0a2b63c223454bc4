import ArgumentParser
import Foundation
import RoseRecipe

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

  @Argument(help: "The recipe file (NAME.conf).") var recipe: String
  @Option(name: .shortAndLong, help: "Output directory (created if missing).") var output: String =
    "."
  @Option(
    name: .customLong("define"),
    help: "NAME=VALUE for %{NAME} in the recipe (repeatable; wins over Define=).")
  var defines: [String] = []
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
    let loaded: Recipe
    do {
      loaded = try RecipeLoader.load(
        path: recipe, defines: values, environment: ProcessInfo.processInfo.environment)
    } catch let error as RecipeErrors {
      reportErrors(error.errors)
      throw ExitCode.failure
    } catch let error as RecipeError {
      reportErrors([error])
      throw ExitCode.failure
    }
    if dumpConfig {
      print(RoseRecipe.dumpConfig(loaded), terminator: "")
      return
    }
    report(loaded.warnings, kind: "warning")
    let progress = Progress(quiet: quiet || json)
    do {
      let pipeline = try BuildPipeline(recipe: loaded, outputDirectory: output, progress: progress)
      let summary = try pipeline.run()
      if json {
        try printJSON(summary)
      } else {
        print(summary.text)
      }
    } catch let error as BuildFailure {
      progress.done()
      reportErrors(error.errors)
      throw ExitCode.failure
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

/// `rosepack init`: a starter recipe project that builds as it is.
struct InitCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "init", abstract: "Create a recipe project from a starter template.",
    discussion: StarterTemplates.allCases.map { "\($0.rawValue): \($0.summary)" }.joined(
      separator: "\n"))

  @Option(help: "Starter: \(StarterTemplates.allCases.map(\.rawValue).joined(separator: ", ")).")
  var template: String = StarterTemplates.minimal.rawValue
  @Argument(
    help: "Directory to create the project in (created if missing; files are never overwritten).")
  var directory: String

  func run() throws {
    guard let starter = StarterTemplates(rawValue: template) else {
      throw CLIError.usage(
        "--template '\(template)' is not a starter; use one of "
          + StarterTemplates.allCases.map(\.rawValue).joined(separator: ", "))
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
