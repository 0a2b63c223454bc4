import ArgumentParser

struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Describe an image.")
  func run() throws { throw CLIError.failed("not wired yet") }
}
struct FsckCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "fsck", abstract: "Check an image.")
  func run() throws { throw CLIError.failed("not wired yet") }
}
struct LsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "ls", abstract: "List a directory.")
  func run() throws { throw CLIError.failed("not wired yet") }
}
struct CatCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "cat", abstract: "Print a file.")
  func run() throws { throw CLIError.failed("not wired yet") }
}
struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "export", abstract: "Export a subvolume as a pax tarball.")
  func run() throws { throw CLIError.failed("not wired yet") }
}
