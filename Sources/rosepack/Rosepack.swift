import ArgumentParser
import Foundation
import RoseBuild

struct Rosepack: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rosepack",
    abstract: "Pack root filesystems into RoseFS images and flashable A/B disk images, offline.",
    version: rosepackVersion,
    subcommands: [
      ConvertCommand.self, BuildCommand.self, InitCommand.self, RecipeCommand.self,
      InspectCommand.self, MapCommand.self,
      FsckCommand.self, LsCommand.self, CatCommand.self, ExportCommand.self, MountCommand.self,
      UpdateCommand.self, FuzzCommand.self,
    ])
}

/// `rosepack --version`.
let rosepackVersion = "rosepack 0.2.0"

enum RosepackMain {
  /// Parses, runs, and prints an error as one line on stderr with exit status 1.
  static func run() {
    Interrupts.shared.install()
    do {
      var command = try Rosepack.parseAsRoot()
      try command.run()
    } catch let e as ExitCode {
      exit(e.rawValue)
    } catch {
      let code = Rosepack.exitCode(for: error)
      if code == .success {
        print(Rosepack.fullMessage(for: error))
        exit(0)
      }
      if isArgumentParserError(error) {
        FileHandle.standardError.write(Data((Rosepack.fullMessage(for: error) + "\n").utf8))
        exit(1)
      }
      FileHandle.standardError.write(Data(("rosepack: error: \(error)\n").utf8))
      exit(1)
    }
  }

  static func isArgumentParserError(_ error: Error) -> Bool {
    String(reflecting: type(of: error)).hasPrefix("ArgumentParser.")
  }
}
