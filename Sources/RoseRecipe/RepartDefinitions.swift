import Foundation
import RoseDisk

/// How rosepack treats one key of systemd-repart's `[Partition]` section (repart.d(5), v252).
public enum RepartKeyStatus: Sendable, Equatable {
  /// Same meaning and same result as systemd-repart.
  case same
  /// Accepted with a value repart would also accept; `reason` says what rosepack does differently.
  case partial(String)
  /// Refused with this reason (a feature that needs a running system, keys or a file system
  /// rosepack does not write).
  case refused(String)
}

/// Every `[Partition]` key of repart.d(5) and what rosepack does with it.
public let repartKeyTable: [(name: String, status: RepartKeyStatus)] = [
  ("Type", .same),
  ("Label", .same),
  ("UUID", .same),
  (
    "Priority",
    .partial(
      "only 0: repart drops partitions of higher priority when they do not fit; a build fails instead"
    )
  ),
  ("Weight", .same),
  ("PaddingWeight", .same),
  ("SizeMinBytes", .same),
  ("SizeMaxBytes", .same),
  ("PaddingMinBytes", .same),
  ("PaddingMaxBytes", .same),
  ("FactoryReset", .partial("only no: factory reset needs a running system")),
  (
    "CopyBlocks",
    .partial("a file under --root; 'auto' is refused (it copies from the running system)")
  ),
  (
    "Format",
    .partial(
      "vfat, ext4, ext2, ext3, xfs, btrfs, erofs, squashfs, f2fs, swap, rosefs, or none; "
        + "each made by its own tool (docs/FILESYSTEMS.md); minix is refused")
  ),
  ("CopyFiles", .partial("sources resolved under --root; any Format= that holds files")),
  ("MakeDirectories", .partial("any Format= that holds files")),
  ("Encrypt", .partial("only off: encryption needs keys or a TPM")),
  (
    "Verity",
    .partial(
      "data, hash and signature as repart (signature with --private-key/--certificate); the hash "
        + "tree has 4096-byte blocks and a salt derived from --seed where 252 uses the sector size "
        + "and a random salt, so the root hash (and the UUIDs it gives) differ from repart's")
  ),
  ("VerityMatchKey", .same),
  ("Flags", .same),
  ("ReadOnly", .same),
  ("NoAuto", .same),
  ("GrowFileSystem", .same),
  ("SplitName", .partial("recorded; names the split output file")),
  (
    "Subvolumes", .refused("btrfs subvolumes: rosepack does not write btrfs (A/B slots are Slots=)")
  ),
  (
    "Minimize",
    .partial(
      "newer than systemd 252; as documented for later versions: off, or best/guess/yes for the "
        + "smallest partition that holds its CopyFiles= (Format=rosefs or vfat)")
  ),
]

/// Reads a repart.d definitions directory (one partition per `*.conf`, in file-name order, with
/// `NAME.conf.d/*.conf` drop-ins) into a `Recipe` whose disk `RepartLayout` plans.
public enum RepartDefinitions {
  public struct Options: Sendable {
    public var root: String?
    public var seed: GUID
    /// nil: `--size=auto`.
    public var diskSize: UInt64?
    public var sectorSize: Int
    public var architecture: Architecture

    public init(
      root: String? = nil, seed: GUID = .zero, diskSize: UInt64? = nil, sectorSize: Int = 512,
      architecture: Architecture = .x8664
    ) {
      self.root = root
      self.seed = seed
      self.diskSize = diskSize
      self.sectorSize = sectorSize
      self.architecture = architecture
    }
  }

  public static func load(directory: String, options: Options) throws -> Recipe {
    var diagnostics = Diagnostics()
    var dir = (directory as NSString).standardizingPath
    if !dir.hasPrefix("/") {
      dir = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(dir)
      dir = (dir as NSString).standardizingPath
    }
    var names: [String] = []
    do {
      names = try FileManager.default.contentsOfDirectory(atPath: dir).filter {
        $0.hasSuffix(".conf") && fileKind(dir + "/" + $0) == (true, false)
      }.sorted()
    } catch {
      throw RecipeErrors([
        RecipeError(
          file: dir, line: 0, column: 0,
          message: "cannot read definitions directory: \(reason(error))",
          hint: "give a directory of repart.d *.conf files")
      ])
    }
    if names.isEmpty {
      throw RecipeErrors([
        RecipeError(
          file: dir, line: 0, column: 0, message: "no *.conf files in the definitions directory")
      ])
    }
    var partitions: [PartitionSpec] = []
    var files: [String] = []
    for name in names {
      var paths = [dir + "/" + name]
      let dropIns = dir + "/" + name + ".d"
      if let more = try? FileManager.default.contentsOfDirectory(atPath: dropIns) {
        paths += more.filter { $0.hasSuffix(".conf") }.sorted().map { dropIns + "/" + $0 }
      }
      files += paths
      var reader = DefinitionReader(options: options)
      for path in paths { reader.read(path, diagnostics: &diagnostics) }
      if let spec = reader.partition(
        file: dir + "/" + name, earlier: partitions, diagnostics: &diagnostics)
      {
        partitions.append(spec)
      }
    }
    if diagnostics.errors.isEmpty { checkVeritySets(partitions, diagnostics: &diagnostics) }
    if !diagnostics.errors.isEmpty { throw RecipeErrors(diagnostics.errors) }
    var image = ImageSettings(
      name: (dir as NSString).lastPathComponent, architecture: options.architecture,
      sectorSize: options.sectorSize, alignment: UInt64(max(4096, options.sectorSize)),
      diskSize: options.diskSize.map { .fixed($0) } ?? .auto, seed: options.seed.description)
    image.repart = RepartDisk(seed: options.seed, diskSize: options.diskSize)
    // Input times are kept unless SOURCE_DATE_EPOCH asks for a clamp.
    image.clampsTimes = false
    if let text = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], let epoch = Int64(text),
      epoch >= 0
    {
      image.sourceDateEpoch = epoch
      image.clampsTimes = true
    }
    return Recipe(
      image: image, partitions: partitions,
      output: OutputSpec(kinds: [.raw], baseName: image.name),
      warnings: diagnostics.warnings.sorted(by: RecipeError.sortKey), sourceFiles: files)
  }

  /// Every VerityMatchKey= has exactly one data and one hash definition, and at most one
  /// signature, as repart 252 requires; the error is at the definition that breaks the rule.
  static func checkVeritySets(_ partitions: [PartitionSpec], diagnostics: inout Diagnostics) {
    var sets: [String: [VerityRole: PartitionSpec]] = [:]
    var keys: [String] = []
    for spec in partitions where spec.verity != .off {
      guard let key = spec.verityMatchKey else { continue }
      if sets[key] == nil { keys.append(key) }
      if let other = sets[key]?[spec.verity] {
        diagnostics.error(
          spec.position, "VerityMatchKey=\(key) has two Verity=\(spec.verity.rawValue) definitions",
          hint: "the other is \((other.position.file as NSString).lastPathComponent)")
        continue
      }
      sets[key, default: [:]][spec.verity] = spec
    }
    for key in keys {
      guard let set = sets[key],
        let any = set.values.min(by: { $0.position.file < $1.position.file })
      else { continue }
      for role in [VerityRole.data, .hash] where set[role] == nil {
        diagnostics.error(
          any.position, "VerityMatchKey=\(key) has no Verity=\(role.rawValue) definition",
          hint: "a verity set needs a data and a hash partition (and optionally a signature)")
      }
      if let data = set[.data], data.format == .empty {
        diagnostics.error(
          data.position, "Verity=data partition '\(data.label)' has no content",
          hint: "give it CopyBlocks= or Format= with CopyFiles=, as the hash tree is made over it")
      }
    }
  }

  static func reason(_ error: Error) -> String {
    if let posix = error as? CocoaError, let underlying = posix.underlying as? POSIXError {
      return String(cString: strerror(underlying.code.rawValue))
    }
    return (error as NSError).localizedDescription
  }
}

/// The keys of one definition (main file plus drop-ins), last assignment winning as in systemd.
struct DefinitionReader {
  let options: Options
  typealias Options = RepartDefinitions.Options
  var values: [String: (value: String, at: SourcePosition)] = [:]
  var copyFiles: [(value: String, at: SourcePosition)] = []
  var makeDirectories: [(value: String, at: SourcePosition)] = []
  var firstHeader: SourcePosition?

  init(options: Options) { self.options = options }

  static let known: Set<String> = Set(repartKeyTable.map(\.name))

  mutating func read(_ path: String, diagnostics: inout Diagnostics) {
    guard let data = FileManager.default.contents(atPath: path) else {
      diagnostics.error(
        SourcePosition(file: path, line: 0, column: 0),
        "cannot read definition file: \(String(cString: strerror(errno)))")
      return
    }
    guard let text = String(data: data, encoding: .utf8) else {
      diagnostics.error(
        SourcePosition(file: path, line: 0, column: 0), "definition file is not UTF-8 text")
      return
    }
    var inPartition = false
    for line in INIParser.parse(text: text, file: path, diagnostics: &diagnostics) {
      switch line {
      case .section(let name, let at):
        inPartition = name == "Partition"
        if firstHeader == nil { firstHeader = at }
        if !inPartition {
          diagnostics.warning(
            at, "unknown section [\(name)] ignored", hint: "repart.d files have one [Partition]")
        }
      case .entry(let key, let value, let keyAt, let valueAt):
        guard inPartition else {
          diagnostics.error(
            keyAt, "\(key)= is outside [Partition]", hint: "add [Partition] above it")
          continue
        }
        guard Self.known.contains(key) else {
          let hint = closestMatch(key, in: repartKeyTable.map(\.name)).map {
            "did you mean \($0)=?"
          }
          diagnostics.error(keyAt, "unknown key \(key)= in [Partition]", hint: hint)
          continue
        }
        switch key {
        case "CopyFiles":
          if value.isEmpty { copyFiles = [] } else { copyFiles.append((value, valueAt)) }
        case "MakeDirectories":
          if value.isEmpty {
            makeDirectories = []
          } else {
            makeDirectories.append((value, valueAt))
          }
        case "Label" where value.utf16.count > 36:
          // repart ignores an over-long label (with a warning) and keeps the earlier one.
          diagnostics.warning(
            valueAt, "Label= is longer than 36 UTF-16 code units; ignored, as repart ignores it")
        default:
          if let previous = values[key], previous.at.file == valueAt.file {
            diagnostics.warning(
              keyAt, "\(key)= repeats line \(previous.at.line); the last value wins")
          }
          values[key] = (value, valueAt)
        }
      }
    }
  }

  func value(_ key: String) -> (value: String, at: SourcePosition)? {
    guard let entry = values[key] else { return nil }
    // An empty assignment resets a key to its default (except Label=, where empty is a name).
    if entry.value.isEmpty && key != "Label" { return nil }
    return entry
  }

  /// Expands repart's specifiers as systemd-repart 252 does with `--root`: `%a` is the architecture,
  /// `%o %w %W %B %M %A` the OS release fields and `%m` the machine ID of the root being built
  /// (`ROOT/etc/os-release`, else `ROOT/usr/lib/os-release`; `ROOT/etc/machine-id`); `%%`, `%T` and `%V`
  /// are constants. Without `--root` the OS fields are refused rather than read from the build host,
  /// and `%b %H %l %v` (boot ID, host name, kernel release) always are: they describe the machine
  /// repart runs on, which an image built for another machine cannot know.
  func expand(_ text: String, at: SourcePosition, diagnostics: inout Diagnostics) -> String? {
    var out = ""
    var chars = Array(text)[...]
    while let c = chars.popFirst() {
      guard c == "%" else {
        out.append(c)
        continue
      }
      guard let s = chars.popFirst() else {
        diagnostics.error(at, "'%' at the end of the value", hint: "write %% for a literal %")
        return nil
      }
      switch s {
      case "%": out.append("%")
      case "T": out += "/tmp"
      case "V": out += "/var/tmp"
      case "a": out += options.architecture.rawValue
      case "o", "w", "W", "B", "M", "A", "m":
        guard let value = rootValue(s, at: at, diagnostics: &diagnostics) else { return nil }
        out += value
      case "b", "H", "l", "v":
        diagnostics.error(
          at, "specifier %\(s) needs a running system",
          hint: "it expands to the boot ID, host name or kernel release of the machine repart runs "
            + "on; write the value out")
        return nil
      default:
        diagnostics.error(
          at, "unknown specifier %\(s)",
          hint: "repart knows %a %A %b %B %H %l %m %M %o %T %v %V "
            + "%w %W and %%")
        return nil
      }
    }
    return out
  }

  /// The value of an OS-release or machine-ID specifier, read from `--root`.
  func rootValue(_ s: Character, at: SourcePosition, diagnostics: inout Diagnostics) -> String? {
    let field: String
    switch s {
    case "o": field = "ID"
    case "w": field = "VERSION_ID"
    case "W": field = "VARIANT_ID"
    case "B": field = "BUILD_ID"
    case "M": field = "IMAGE_ID"
    case "A": field = "IMAGE_VERSION"
    default: field = "machine-id"
    }
    guard let root = options.root else {
      diagnostics.error(
        at, "specifier %\(s) needs --root",
        hint:
          "it is read from the root being built (\(s == "m" ? "etc/machine-id" : "os-release \(field)=")); "
          + "give --root DIR, or write the value out")
      return nil
    }
    if s == "m" {
      let path = root + "/etc/machine-id"
      let id = (try? String(contentsOfFile: path, encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines)
      guard let id, id.count == 32, id.allSatisfy(\.isHexDigit) else {
        diagnostics.error(
          at, "specifier %m: \(path) holds no machine ID",
          hint: "the root needs a 32-digit /etc/machine-id, or write the value out")
        return nil
      }
      return id
    }
    for path in [root + "/etc/os-release", root + "/usr/lib/os-release"] {
      guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
      // os-release(5): KEY=value lines, values optionally quoted; an unset field expands to "".
      for line in text.split(whereSeparator: \.isNewline) {
        let parts = line.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, parts[0] == field else { continue }
        var v = String(parts[1])
        if v.count >= 2, let q = v.first, q == "\"" || q == "'", v.last == q {
          v = String(v.dropFirst().dropLast())
        }
        return v
      }
      return ""
    }
    diagnostics.error(
      at, "specifier %\(s): no os-release under \(root)",
      hint: "the root needs etc/os-release or usr/lib/os-release, or write the value out")
    return nil
  }

  func size(
    _ key: String, isMinimum: Bool, diagnostics: inout Diagnostics
  ) -> UInt64? {
    guard let entry = value(key) else { return nil }
    guard let parsed = parseRepartSize(entry.value) else {
      diagnostics.error(
        entry.at, "invalid size '\(entry.value)' for \(key)=",
        hint: "bytes with an optional K, M, G, T, P or E suffix (powers of 1024), e.g. 64M")
      return nil
    }
    guard parsed < 1 << 60 else {
      diagnostics.error(
        entry.at, "\(key)=\(entry.value) is too large",
        hint: "sizes must be below 1 EiB (2^60 bytes)")
      return nil
    }
    // systemd-repart 252 (as Debian 12 ships it, checked with SYSTEMD_LOG_LEVEL=debug: "Rounded
    // SizeMinBytes= size 300000001 → 299999232") rounds the minima down and the maxima up to 4096;
    // later versions round the other way. rosepack builds what 252 builds.
    return isMinimum ? parsed / 4096 * 4096 : (parsed + 4095) / 4096 * 4096
  }

  func tristate(_ key: String, diagnostics: inout Diagnostics) -> Bool? {
    guard let entry = value(key) else { return nil }
    guard let b = parseBool(entry.value) else {
      diagnostics.error(entry.at, "invalid boolean '\(entry.value)' for \(key)=", hint: "yes or no")
      return nil
    }
    return b
  }

  func weight(_ key: String, diagnostics: inout Diagnostics) -> Int? {
    guard let entry = value(key) else { return nil }
    guard let v = UInt32(entry.value), v <= 1_000_000 else {
      diagnostics.error(
        entry.at, "invalid \(key)= '\(entry.value)'", hint: "an integer from 0 to 1000000")
      return nil
    }
    return Int(v)
  }

  mutating func partition(file: String, earlier: [PartitionSpec], diagnostics: inout Diagnostics)
    -> PartitionSpec?
  {
    let header = firstHeader ?? SourcePosition(file: file, line: 1, column: 1)
    guard let typeEntry = value("Type") else {
      diagnostics.error(header, "Type= not defined", hint: "e.g. Type=root, Type=esp or a GUID")
      return nil
    }
    guard
      let typeGUID = PartitionTypes.guid(
        for: typeEntry.value, architecture: options.architecture.rawValue)
    else {
      diagnostics.error(
        typeEntry.at, "unknown partition type '\(typeEntry.value)'",
        hint: typeHint(typeEntry.value))
      return nil
    }
    let typeUUID = typeGUID.uuid
    var failed = false

    let unsupported: [(String, (String) -> Bool, String)] = [
      (
        "Priority", { Int32($0) == 0 },
        "repart drops partitions of higher priority that do not fit; rosepack fails instead"
      ),
      ("FactoryReset", { parseBool($0) == false }, "factory reset needs a running system"),
      (
        "Encrypt", { $0 == "off" || parseBool($0) == false },
        "encryption needs keys or a TPM of the target machine"
      ),
    ]
    for (key, accepted, why) in unsupported {
      if let entry = value(key), !accepted(entry.value) {
        diagnostics.error(entry.at, "\(key)=\(entry.value) is not supported", hint: why)
        failed = true
      }
    }
    var minimize = MinimizeMode.off
    if let entry = value("Minimize") {
      switch entry.value {
      case "best": minimize = .best
      case "guess": minimize = .guess
      case "off": minimize = .off
      default:
        if let b = parseBool(entry.value) {
          minimize = b ? .best : .off
        } else {
          diagnostics.error(
            entry.at, "invalid Minimize= '\(entry.value)'", hint: "off, best, guess, yes or no")
          failed = true
        }
      }
    }
    if let entry = value("Subvolumes") {
      diagnostics.error(
        entry.at, "Subvolumes= is not supported",
        hint: "repart's Subvolumes= lists btrfs subvolumes; rosepack does not write btrfs (its "
          + "A/B slots are Slots= in a rosepack recipe)")
      failed = true
    }
    let (verity, verityMatchKey, verityFailed) = verityRole(diagnostics: &diagnostics)
    failed = failed || verityFailed

    // Label: explicit (specifiers expanded), else repart's type name made unique.
    var label: String
    if let entry = value("Label") {
      guard let expanded = expand(entry.value, at: entry.at, diagnostics: &diagnostics) else {
        return nil
      }
      if expanded.utf16.count > 36 {
        diagnostics.error(entry.at, "Label= is longer than 36 UTF-16 code units")
        failed = true
      }
      label = expanded
    } else {
      let prefix = PartitionTypes.repartLabelPrefix(for: typeGUID)
      label = prefix
      var k = 1
      while earlier.contains(where: { $0.label == label }) {
        k += 1
        label = "\(prefix)-\(k)"
      }
    }

    var uuid: UUID?
    if let entry = value("UUID") {
      if entry.value == "null" {
        uuid = GUID.zero.uuid
      } else if let guid = GUID.parseID128(entry.value) {
        uuid = guid.uuid
      } else {
        diagnostics.error(
          entry.at, "invalid UUID '\(entry.value)'",
          hint: "32 hexadecimal digits with or without dashes, or null")
        failed = true
      }
    }
    // The data and hash partitions of a verity set are named by the root hash (after the hash
    // tree is built), as repart names them, unless UUID= is given.
    if uuid == nil && verity != .data && verity != .hash {
      let instance = UInt64(earlier.filter { $0.type.guid == typeUUID }.count)
      let derived = GUID.repartPartitionGUID(seed: options.seed, type: typeGUID, instance: instance)
      uuid = UUID(uuidString: derived.description)
    }

    var sizing = RepartSizing(
      sizeMin: size("SizeMinBytes", isMinimum: true, diagnostics: &diagnostics),
      sizeMax: size("SizeMaxBytes", isMinimum: false, diagnostics: &diagnostics),
      paddingMin: size("PaddingMinBytes", isMinimum: true, diagnostics: &diagnostics),
      paddingMax: size("PaddingMaxBytes", isMinimum: false, diagnostics: &diagnostics),
      weight: weight("Weight", diagnostics: &diagnostics) ?? 1000,
      paddingWeight: weight("PaddingWeight", diagnostics: &diagnostics) ?? 0)
    if verity == .signature {
      // repart 252: a signature partition is exactly VERITY_SIG_SIZE (16 KiB), and says so.
      if let entry = value("SizeMinBytes") ?? value("SizeMaxBytes") {
        diagnostics.error(
          entry.at, "SizeMinBytes=/SizeMaxBytes= cannot be used with Verity=signature",
          hint: "a signature partition is 16 KiB, as repart makes it")
        failed = true
      }
      sizing.sizeMin = Verity.signatureSize
      sizing.sizeMax = Verity.signatureSize
    }
    if let low = sizing.sizeMin, let high = sizing.sizeMax, low > high,
      let entry = value("SizeMaxBytes")
    {
      diagnostics.error(entry.at, "SizeMinBytes= is larger than SizeMaxBytes=")
      failed = true
    }
    if let low = sizing.paddingMin, let high = sizing.paddingMax, low > high,
      let entry = value("PaddingMaxBytes")
    {
      diagnostics.error(entry.at, "PaddingMinBytes= is larger than PaddingMaxBytes=")
      failed = true
    }

    // An invalid Flags= is reported; the rest is still read so that every error shows at once.
    let parsedFlags = attributeFlags(
      type: typeGUID, typeName: typeEntry.value, diagnostics: &diagnostics)
    if parsedFlags == nil { failed = true }

    // Content.
    var format = PartitionFormat.empty
    if let entry = value("Format") {
      switch entry.value {
      case let name
      where PartitionFormat(rawValue: name).map({ $0.isForeignFileSystem || $0 == .rosefs })
        == true:
        format = PartitionFormat(rawValue: name) ?? .empty
      default:
        diagnostics.error(
          entry.at, "Format=\(entry.value) is not supported",
          hint: "rosepack writes vfat, ext4, ext2, ext3, xfs, btrfs, erofs, squashfs, f2fs, swap "
            + "and rosefs; leave Format= out for an empty partition")
        failed = true
      }
    }
    var copyBlocks: String?
    if let entry = value("CopyBlocks") {
      if entry.value == "auto" {
        diagnostics.error(
          entry.at, "CopyBlocks=auto needs a running system",
          hint: "it copies the partition the running system booted from; give a file under --root")
        failed = true
      } else if let path = rooted(entry.value, at: entry.at, want: .file, diagnostics: &diagnostics)
      {
        copyBlocks = path
        if let problem = copyBlocksSizeProblem(path, key: "CopyBlocks") {
          diagnostics.error(entry.at, problem.message, hint: problem.hint)
          failed = true
        }
        if value("Format") != nil || !copyFiles.isEmpty || !makeDirectories.isEmpty {
          diagnostics.error(
            entry.at, "Format=/CopyFiles=/MakeDirectories= and CopyBlocks= cannot be combined")
          failed = true
        }
        format = .raw
      } else {
        failed = true
      }
    }
    let (layers, layersFailed) = contentLayers(diagnostics: &diagnostics)
    if layersFailed { failed = true }
    if !layers.isEmpty && format == .empty && copyBlocks == nil {
      let at = copyFiles.first?.at ?? makeDirectories.first?.at ?? header
      diagnostics.error(
        at, "CopyFiles=/MakeDirectories= without Format=",
        hint: "add Format= (ext4, vfat, rosefs, ...)")
      failed = true
    }
    var splitName: String?
    if let entry = value("SplitName") {
      splitName = expand(entry.value, at: entry.at, diagnostics: &diagnostics)
    }
    if failed { return nil }
    let flags = parsedFlags ?? 0

    let sizeRule: SizeRule
    if let low = sizing.sizeMin, let high = sizing.sizeMax, low == high {
      sizeRule = .fixed(bytes: low)
    } else {
      sizeRule = .auto(
        minBytes: sizing.sizeMin ?? 0, maxBytes: sizing.sizeMax, headroomBytes: 0,
        headroomPercent: 0)
    }
    var spec = PartitionSpec(
      label: label, type: PartitionType(name: PartitionTypes.name(for: typeGUID), guid: typeUUID),
      uuid: uuid, format: format, size: sizeRule, flags: flags, weight: sizing.weight,
      splitName: splitName, copyBlocks: copyBlocks, layers: layers, position: header)
    spec.minimize = minimize
    if minimize != .off && (format == .empty || format == .raw || format == .swap),
      let entry = value("Minimize")
    {
      diagnostics.warning(
        entry.at, "Minimize= has no effect without a Format= that holds files")
    }
    spec.repartSizing = sizing
    spec.attributeOverride = flags
    spec.verity = verity
    spec.verityMatchKey = verityMatchKey
    return spec
  }
  /// The GPT attribute bits as repart merges them: Flags=, then the three tristates for the types
  /// that know them; verity partitions read-only and growable types grow-fs by default. nil after
  /// an error (reported).
  func attributeFlags(type: GUID, typeName: String, diagnostics: inout Diagnostics) -> UInt64? {
    var flags: UInt64 = 0
    if let entry = value("Flags") {
      if let v = parseUnsigned(entry.value) {
        flags = v
      } else {
        diagnostics.error(
          entry.at, "invalid Flags= '\(entry.value)'", hint: "a 64-bit number, decimal or 0x hex")
        return nil
      }
    }
    var readOnly = tristate("ReadOnly", diagnostics: &diagnostics)
    let noAuto = tristate("NoAuto", diagnostics: &diagnostics)
    var growFS = tristate("GrowFileSystem", diagnostics: &diagnostics)
    if PartitionTypes.isVerity(type) && readOnly == nil { readOnly = true }
    if PartitionTypes.knowsGrowFileSystem(type) && readOnly != true && growFS == nil {
      growFS = true
    }
    for (key, value, bit, knows) in [
      ("NoAuto", noAuto, UInt64(63), PartitionTypes.knowsNoAuto(type)),
      ("ReadOnly", readOnly, UInt64(60), PartitionTypes.knowsReadOnly(type)),
      ("GrowFileSystem", growFS, UInt64(59), PartitionTypes.knowsGrowFileSystem(type)),
    ] {
      guard let value else { continue }
      if knows {
        flags = value ? flags | (1 << bit) : flags & ~(1 << bit)
      } else if let entry = self.value(key) {
        diagnostics.warning(
          entry.at, "\(key)= has no effect on a partition of type \(typeName)",
          hint: "repart ignores it for this type, as does rosepack")
      }
    }
    return flags
  }

  /// CopyFiles= and MakeDirectories= as layers of both slots; `failed` after an error (reported),
  /// with the entries that were valid still returned so that later checks see them.
  func contentLayers(diagnostics: inout Diagnostics) -> (layers: [SlottedLayer], failed: Bool) {
    var failed = false
    var layers: [SlottedLayer] = []
    for entry in copyFiles {
      let parts = splitFields(entry.value, on: ":", limit: 3)
      guard parts.count <= 2,
        let source = expand(parts[0].field, at: entry.at, diagnostics: &diagnostics),
        let target = expand(
          parts.count > 1 ? parts[1].field : parts[0].field, at: entry.at,
          diagnostics: &diagnostics)
      else {
        if splitFields(entry.value, on: ":", limit: 3).count > 2 {
          diagnostics.error(entry.at, "CopyFiles= takes SOURCE[:TARGET]")
        }
        failed = true
        continue
      }
      guard target.hasPrefix("/") else {
        diagnostics.error(entry.at, "CopyFiles= target '\(target)' is not absolute")
        failed = true
        continue
      }
      guard let path = rooted(source, at: entry.at, want: .any, diagnostics: &diagnostics) else {
        failed = true
        continue
      }
      layers.append(
        SlottedLayer(
          slot: .both,
          layer: .directory(source: path, destination: normalised(target), at: entry.at)))
    }
    for entry in makeDirectories {
      var paths: [String] = []
      for word in splitWords(entry.value) {
        guard let path = expand(word.word, at: entry.at, diagnostics: &diagnostics),
          path.hasPrefix("/")
        else {
          diagnostics.error(entry.at, "MakeDirectories= path '\(word.word)' is not absolute")
          failed = true
          continue
        }
        paths.append(normalised(path))
      }
      layers.append(SlottedLayer(slot: .both, layer: .makeDirectories(paths: paths, at: entry.at)))
    }
    return (layers, failed)
  }

  /// `Verity=` and `VerityMatchKey=` with the checks repart 252 makes on one definition: a role
  /// needs a key and a key needs a role; hash and signature partitions take no content and no
  /// encryption. Whether each key has its data and hash partition is checked across the
  /// definitions (`RepartDefinitions.checkVeritySets`).
  func verityRole(diagnostics: inout Diagnostics) -> (VerityRole, String?, failed: Bool) {
    var role = VerityRole.off
    var failed = false
    if let entry = value("Verity") {
      if let parsed = VerityRole(rawValue: entry.value) {
        role = parsed
      } else {
        diagnostics.error(
          entry.at, "invalid Verity= '\(entry.value)'", hint: "off, data, hash or signature")
        return (.off, nil, true)
      }
    }
    let key = value("VerityMatchKey")
    if role != .off && key == nil, let entry = value("Verity") {
      diagnostics.error(
        entry.at, "Verity=\(role.rawValue) needs VerityMatchKey=",
        hint: "give the data, hash and signature definitions of one set the same key")
      failed = true
    }
    if role == .off, let key {
      diagnostics.error(
        key.at, "VerityMatchKey= needs Verity= (data, hash or signature)",
        hint: "repart refuses a match key on a partition that is not part of a verity set")
      failed = true
    }
    if role == .hash || role == .signature {
      let content =
        ["Format", "CopyBlocks"].compactMap { value($0)?.at }
        + copyFiles.map(\.at) + makeDirectories.map(\.at)
      if let at = content.first {
        diagnostics.error(
          at,
          "Verity=\(role.rawValue) partitions take no Format=, CopyBlocks=, CopyFiles= or "
            + "MakeDirectories=",
          hint: role == .hash
            ? "rosepack fills it with veritysetup format over the data partition"
            : "rosepack fills it with repart's JSON signature")
        failed = true
      }
    }
    if role != .off, let entry = value("Encrypt"), entry.value != "off",
      parseBool(entry.value) != false
    {
      diagnostics.error(entry.at, "Encrypt= cannot be combined with Verity=")
      failed = true
    }
    return (role, key?.value, failed)
  }

  func normalised(_ path: String) -> String {
    var p = (path as NSString).standardizingPath
    if p.isEmpty { p = "/" }
    return p
  }

  /// A source path of CopyFiles=/CopyBlocks=, resolved under `--root` as repart resolves it.
  func rooted(
    _ path: String, at: SourcePosition, want: LoadState.Want, diagnostics: inout Diagnostics
  ) -> String? {
    guard path.hasPrefix("/") else {
      diagnostics.error(
        at, "source path '\(path)' is not absolute", hint: "repart paths are absolute")
      return nil
    }
    guard let root = options.root else {
      diagnostics.error(
        at, "'\(path)' needs --root",
        hint:
          "repart resolves sources against --root; give --root DIR (or --root / for this machine)"
      )
      return nil
    }
    let full = ((root as NSString).standardizingPath + "/" + path).replacingOccurrences(
      of: "//", with: "/")
    let resolved = (full as NSString).standardizingPath
    let kind = fileKind(resolved)
    if !kind.exists {
      diagnostics.error(
        at, "file not found: \(resolved)", hint: "paths are resolved under --root \(root)")
      return nil
    }
    if want == .file && kind.isDirectory {
      diagnostics.error(at, "\(resolved) is a directory; CopyBlocks= needs a file")
      return nil
    }
    return resolved
  }
}

/// repart's `parse_size(…, 1024)`: a number with an optional B, K, M, G, T, P or E suffix.
func parseRepartSize(_ text: String) -> UInt64? {
  var digits = Substring(text)
  var multiplier: UInt64 = 1
  if digits.last == "B" { digits = digits.dropLast() }
  if let last = digits.last, let index = "KMGTPE".firstIndex(of: last) {
    multiplier = 1 << (10 * UInt64("KMGTPE".distance(from: "KMGTPE".startIndex, to: index) + 1))
    digits = digits.dropLast()
  }
  guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = UInt64(digits)
  else { return nil }
  let (product, overflow) = n.multipliedReportingOverflow(by: multiplier)
  return overflow ? nil : product
}

/// "did you mean" for a bad `Type=`: the 3 to 5 nearest known names.
func typeHint(_ value: String) -> String {
  let names = partitionTypeNames
  let scored = names.map { (editDistance(value, $0), $0) }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
  return "nearest names: " + scored.prefix(5).map(\.1).joined(separator: ", ")
    + " (`rosepack recipe --help-keys` lists all), or a GUID"
}
