import Foundation

/// Where an accepted key's lines go: the one field of its section's checked keys that the model
/// is built from, as systemd-repart's `ConfigTableItem` names the field a key parses into. The key
/// table holds the binding, `Build.swift` reads the fields (never a key by its name), so a key in
/// the table always reaches the model and a misspelt lookup cannot compile.
enum KeyBinding: Sendable {
  /// Read by the loader itself while it reads files (`Include=`, `Define=`, `Extend=`, and the
  /// `[Image]` keys that `%{...}` variables need before anything else).
  case loader
  case image(WritableKeyPath<ImageKeys, KeyEntries> & Sendable)
  case partition(WritableKeyPath<PartitionKeys, KeyEntries> & Sendable)
  case output(WritableKeyPath<OutputKeys, KeyEntries> & Sendable)
}

/// The lines of one key in one section, in file order (the last one wins for single keys).
struct KeyEntries {
  var all: [Entry] = []

  /// The line that sets the key (the last); nil when the key is absent.
  var entry: Entry? { all.last }
  var isSet: Bool { !all.isEmpty }
  /// The checked value; nil when absent or when the value failed its type check.
  var typed: TypedValue? {
    guard let entry, !entry.failed else { return nil }
    return entry.typed
  }
  var text: String? { typed?.text }
  var size: UInt64? { typed?.size }
  var bool: Bool? { typed?.bool }
  var int: Int64? { typed?.int }
}

/// A section's checked lines sorted into its key fields by the key table's bindings.
protocol SectionKeys {
  init()
  /// The field `binding` names in this kind of section, if it names one here.
  static func field(_ binding: KeyBinding) -> WritableKeyPath<Self, KeyEntries>?
}

extension SectionKeys {
  init(_ entries: [Entry]) {
    self.init()
    for entry in entries {
      guard let binding = entry.spec?.binding, let field = Self.field(binding) else { continue }
      self[keyPath: field].all.append(entry)
    }
  }
}

/// The `[Image]` keys.
struct ImageKeys {
  var name = KeyEntries()
  var version = KeyEntries()
  var sectorSize = KeyEntries()
  var alignment = KeyEntries()
  var diskSize = KeyEntries()
  var seed = KeyEntries()
  var partitionTable = KeyEntries()
}

extension ImageKeys: SectionKeys {
  static func field(_ binding: KeyBinding) -> WritableKeyPath<ImageKeys, KeyEntries>? {
    if case .image(let field) = binding { return field }
    return nil
  }
}

/// A `[Partition]` section's keys. `layers` holds the content layers and `Slot=` lines, in file
/// order: their order is their meaning.
struct PartitionKeys {
  var type = KeyEntries()
  var label = KeyEntries()
  var uuid = KeyEntries()
  var format = KeyEntries()
  var volumeLabel = KeyEntries()
  var compression = KeyEntries()
  var compressionLevel = KeyEntries()
  var makeFileSystemOptions = KeyEntries()
  var sizeMinBytes = KeyEntries()
  var sizeMaxBytes = KeyEntries()
  var headroomBytes = KeyEntries()
  var headroomPercent = KeyEntries()
  var grow = KeyEntries()
  var offset = KeyEntries()
  var paddingMinBytes = KeyEntries()
  var weight = KeyEntries()
  var paddingWeight = KeyEntries()
  var paddingMaxBytes = KeyEntries()
  var minimize = KeyEntries()
  var flags = KeyEntries()
  var readOnly = KeyEntries()
  var noAuto = KeyEntries()
  var growFileSystem = KeyEntries()
  var splitName = KeyEntries()
  var copyBlocks = KeyEntries()
  var slots = KeyEntries()
  var defaultSlot = KeyEntries()
  var slotB = KeyEntries()
  var layers = KeyEntries()
  var mbrType = KeyEntries()
  var bootable = KeyEntries()
  var inPartitionTable = KeyEntries()
  var verity = KeyEntries()
  var verityMatchKey = KeyEntries()
  var formats = KeyEntries()
}

extension PartitionKeys: SectionKeys {
  static func field(_ binding: KeyBinding) -> WritableKeyPath<PartitionKeys, KeyEntries>? {
    if case .partition(let field) = binding { return field }
    return nil
  }
}

/// The `[Output]` keys.
struct OutputKeys {
  var maxDownloadSize = KeyEntries()
  var formats = KeyEntries()
  var compressLevel = KeyEntries()
  var sparseCrc = KeyEntries()
  var sparseBlockSize = KeyEntries()
  var baseName = KeyEntries()
}

extension OutputKeys: SectionKeys {
  static func field(_ binding: KeyBinding) -> WritableKeyPath<OutputKeys, KeyEntries>? {
    if case .output(let field) = binding { return field }
    return nil
  }
}
