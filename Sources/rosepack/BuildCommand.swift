import ArgumentParser

struct BuildCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "build", abstract: "Build a disk image from a recipe.")
  func run() throws { throw CLIError.failed("build: not wired yet") }
}

struct InitCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "init", abstract: "Create a recipe project.")
  func run() throws { throw CLIError.failed("init: not wired yet") }
}

struct RecipeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "recipe", abstract: "Recipe language help.")
  func run() throws { throw CLIError.failed("recipe: not wired yet") }
}
