import Foundation
import Testing

@testable import RoseRecipe

/// The key table binds every key to the field of its section that the model is built from
/// (issue 12): no key is accepted and then dropped, and no two keys share a field.
@Suite struct KeyBindingTests {
  /// Keys the loader reads itself, before sections are built.
  static let loaderKeys: Set<String> = [
    "Include", "Define", "Extend", "Architecture", "SourceDateEpoch",
  ]

  @Test func everyKeyHasItsOwnFieldInItsSection() {
    var fields: [AnyKeyPath: String] = [:]
    var layers: [String] = []
    for key in recipeKeys {
      let field: AnyKeyPath
      switch key.binding {
      case .loader:
        #expect(Self.loaderKeys.contains(key.name), "\(key.name)= is read by nobody")
        continue
      case .image(let path):
        #expect(key.section == .image, "\(key.name)")
        field = path
      case .partition(let path):
        #expect(key.section == .partition, "\(key.name)")
        if path == \PartitionKeys.layers {
          layers.append(key.name)
          continue
        }
        field = path
      case .output(let path):
        #expect(key.section == .output, "\(key.name)")
        field = path
      }
      if let other = fields[field] {
        Issue.record("\(key.name)= and \(other)= are bound to one field")
      }
      fields[field] = key.name
    }
    // The content layers (and Slot=) share one field because their order is their meaning.
    #expect(Set(layers) == layerKeys.union(["Slot"]), "\(layers)")
  }

  @Test func aSectionSortsItsLinesIntoTheBoundFields() throws {
    let dir = FileManager.default.temporaryDirectory.path + "/keybinding-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/r.conf"
    try Data(
      """
      [Image]
      Name=bound

      [Partition]
      Type=root
      Label=first
      Label=second
      Format=rosefs
      ReadOnly=yes
      Inline=/a:1
      Slot=both
      Inline=/b:2

      [Output]
      BaseName=out

      """.utf8
    ).write(to: URL(fileURLWithPath: path))
    let recipe = try RecipeLoader.load(path: path)
    let spec = try #require(recipe.partitions.first)
    #expect(spec.label == "second", "the last line of a single key wins")
    #expect(spec.readOnly)
    #expect(spec.layers.count == 2)
    #expect(recipe.output.baseName == "out")
  }
}
