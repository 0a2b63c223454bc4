import Foundation
import RoseDisk

/// The value syntax of a key. One table of keys drives parsing, validation, `--help-keys` and
/// docs/RECIPES.md, so the three can never disagree.
public enum KeyType: Sendable, Equatable {
  case string
  case bool
  /// Bytes, with optional binary suffix K, M, G or T (`64M` = 64 MiB).
  case size
  /// A size or the word `auto`.
  case sizeOrAuto
  case int(min: Int64, max: Int64)
  case enumeration([String])
  /// A host path relative to the directory of the file that contains the line.
  case path
  /// Whitespace-separated words.
  case list
  case uuid
  /// A DPS name (esp, root, root-arm64, …) or a GUID.
  case partitionType
  /// A key-specific compound syntax, shown as given (e.g. `HOSTFILE:DEST[:MODE]`).
  case syntax(String)

  /// How the value is written in help and docs.
  public var placeholder: String {
    switch self {
    case .string: return "STRING"
    case .bool: return "BOOL"
    case .size: return "SIZE"
    case .sizeOrAuto: return "SIZE|auto"
    case .int: return "INT"
    case .enumeration(let values): return values.joined(separator: "|")
    case .path: return "PATH"
    case .list: return "WORD..."
    case .uuid: return "UUID"
    case .partitionType: return "TYPE"
    case .syntax(let text): return text
    }
  }
}

/// The sections a recipe may contain.
public enum SectionKind: String, Sendable, Equatable, CaseIterable {
  case image = "Image"
  case partition = "Partition"
  case output = "Output"
  /// Keys valid in every section and at the top of a file (`Include=`).
  case any = "*"
}

/// One entry of the key table.
public struct KeySpec: Sendable, Equatable {
  public var section: SectionKind
  public var name: String
  public var type: KeyType
  /// Human-readable default; empty when the key has none.
  public var defaultValue: String
  public var repeatable: Bool
  public var required: Bool
  /// The name systemd-repart uses for the same meaning, if this key is a repart key.
  public var fromRepart: Bool
  /// True for keys kept for compatibility that cannot change the output (one allowed value).
  public var recordedOnly: Bool
  public var help: String
  /// The field of the checked section the key's lines go to (what the model is built from).
  let binding: KeyBinding

  init(
    _ section: SectionKind, _ name: String, bind binding: KeyBinding, _ type: KeyType,
    default defaultValue: String = "",
    repeatable: Bool = false, required: Bool = false, repart: Bool = false,
    recordedOnly: Bool = false, _ help: String
  ) {
    self.section = section
    self.name = name
    self.type = type
    self.defaultValue = defaultValue
    self.repeatable = repeatable
    self.required = required
    self.fromRepart = repart
    self.recordedOnly = recordedOnly
    self.help = help
    self.binding = binding
  }

  /// What a key means to a reader (its binding is how the code keeps it).
  public static func == (lhs: KeySpec, rhs: KeySpec) -> Bool {
    lhs.section == rhs.section && lhs.name == rhs.name && lhs.type == rhs.type
      && lhs.defaultValue == rhs.defaultValue && lhs.repeatable == rhs.repeatable
      && lhs.required == rhs.required && lhs.fromRepart == rhs.fromRepart
      && lhs.recordedOnly == rhs.recordedOnly && lhs.help == rhs.help
  }

  /// True for keys that add a content layer; their order matters.
  var isLayer: Bool { layerKeys.contains(name) && section == .partition }
}

let layerKeys: Set<String> = [
  "Tarball", "Directory", "CopyFiles", "File", "Inline", "Template", "Symlink",
  "MakeDirectories", "Remove", "Ownership",
]

/// All type names accepted by `Type=`: RoseDisk's DPS table (the one source of the GUIDs) plus the
/// architecture-neutral `root` and `usr`.
let partitionTypeNames: [String] = PartitionTypes.explicit.map(\.name) + ["root", "usr"]

/// Resolves a `Type=` value; nil if it is neither a known name nor a GUID.
func resolvePartitionType(_ text: String, architecture: Architecture) -> PartitionType? {
  let lower = text.lowercased()
  guard let guid = PartitionTypes.guid(for: lower, architecture: architecture.rawValue),
    let uuid = UUID(uuidString: guid.description)
  else { return nil }
  let named = partitionTypeNames.contains(lower)
  return PartitionType(name: named ? lower : nil, guid: uuid)
}

private let sizeHelp = "Sizes take K, M, G, T suffixes (powers of 1024)."

/// The one table of recipe keys.
public let recipeKeys: [KeySpec] = [
  KeySpec(
    .any, "Include", bind: .loader, .path, repeatable: true,
    "Reads another recipe file at this point, relative to the directory of the file that "
      + "contains the line. Keys at the top of the included file continue the current section. "
      + "The value is not subject to %{...} expansion."),

  KeySpec(
    .image, "Name", bind: .image(\.name), .string, default: "the recipe file name without .conf",
    "Image name; the %{IMAGE_NAME} variable, the default Seed= and output base name."),
  KeySpec(
    .image, "Version", bind: .image(\.version), .string, default: "0",
    "Image version; the %{IMAGE_VERSION} variable and part of the output base name."),
  KeySpec(
    .image, "Architecture", bind: .loader, .enumeration(Architecture.allCases.map(\.rawValue)),
    default: "x86-64", "Target architecture; decides what Type=root and Type=usr mean."),
  KeySpec(
    .image, "SectorSize", bind: .image(\.sectorSize), .enumeration(["512", "4096"]), default: "512",
    "Logical sector size of the target device (4096 for UFS and 4Kn disks). Every offset and "
      + "size must be a multiple of it."),
  KeySpec(
    .image, "Alignment", bind: .image(\.alignment), .size, default: "1M",
    "Partition start alignment; a power of two and a multiple of SectorSize=. " + sizeHelp),
  KeySpec(
    .image, "DiskSize", bind: .image(\.diskSize), .sizeOrAuto, default: "auto",
    "Size of the whole disk; auto makes it exactly as large as the partitions need. " + sizeHelp),
  KeySpec(
    .image, "Seed", bind: .image(\.seed), .string, default: "the value of Name=",
    "Seed for the deterministic disk and partition UUIDs."),
  KeySpec(
    .image, "SourceDateEpoch", bind: .loader, .int(min: 0, max: Int64(Int32.max) * 4),
    default: "none",
    "Timestamp (seconds since 1970): times from the inputs later than it are clamped to it, "
      + "as mkosi does. Without it (or SOURCE_DATE_EPOCH, which wins) input times are kept; "
      + "entries rosepack creates are dated 0 (1970-01-01) unless an epoch is given."),
  KeySpec(
    .image, "PartitionTable", bind: .image(\.partitionTable),
    .enumeration(PartitionTableKind.allCases.map(\.rawValue)),
    default: "gpt",
    "gpt: a GUID partition table. mbr: a DOS table of at most 4 primary partitions (type bytes "
      + "from MBRType=, active flag from Bootable=). hybrid: a GPT plus an MBR mirroring the "
      + "partitions that have MBRType= (at most 3) next to a 0xEE entry, as genimage writes it."),
  KeySpec(
    .image, "Define", bind: .loader, .syntax("NAME=VALUE"), repeatable: true,
    "Default for a %{NAME} variable; --define NAME=VALUE on the command line wins. The value "
      + "is taken literally."),

  KeySpec(
    .partition, "Type", bind: .partition(\.type), .partitionType,
    default: "Format=rosefs: rosefs-root with two Slots=, else rosefs-data", repart: true,
    "GPT partition type: a DPS name ("
      + partitionTypeNames.joined(separator: ", ") + "), a GUID, or one of genimage's "
      + "shortcuts U (ESP), L (Linux), S (swap), H (home), R (RAID), V (LVM), F (basic data)."),
  KeySpec(
    .partition, "Label", bind: .partition(\.label), .string,
    default: "repart's name for the type (root-x86-64, esp, ...), -2, -3 for repeats", repart: true,
    "GPT partition name (at most 36 characters); unique on the disk, except _empty (the "
      + "systemd-sysupdate mark of an unused slot), which several partitions may carry."),
  KeySpec(
    .partition, "UUID", bind: .partition(\.uuid), .uuid, default: "derived from Seed=",
    repart: true,
    "GPT partition UUID, with or without dashes; null writes the all-zero UUID."),
  KeySpec(
    .partition, "Extend", bind: .loader, .string,
    "Adds this section's keys to the earlier partition with this Label= (or, for a partition "
      + "without one, this Type= value) instead of creating a new partition (for drop-ins)."),
  KeySpec(
    .partition, "Format", bind: .partition(\.format),
    .enumeration(PartitionFormat.allCases.map(\.rawValue)),
    default: "empty", repart: true,
    "rosefs: filled from content layers; raw: "
      + "CopyBlocks= copied verbatim; empty: left unformatted. vfat, ext4, ext2, ext3, xfs, btrfs, "
      + "erofs, squashfs and f2fs are filled from the same content layers as rosefs, built "
      + "unprivileged by each filesystem's own tool (mke2fs -d, mkfs.xfs -p, mkfs.btrfs "
      + "--rootdir, mkfs.erofs, mksquashfs, mkfs.f2fs + sload.f2fs, mkfs.vfat + mcopy); content a format cannot "
      + "hold is refused, naming the entry (docs/FILESYSTEMS.md). swap: a swap area, no content."),
  KeySpec(
    .partition, "VolumeLabel", bind: .partition(\.volumeLabel), .string,
    default: "the Label= value, cut to the format's limit",
    repart: true,
    "Filesystem label of a Format=vfat, ext2/3/4, xfs, btrfs, f2fs or swap partition (at most "
      + "11 bytes for vfat, 12 for xfs, 16 for ext2/3/4 and swap, 255 for btrfs, 512 for f2fs). "
      + "erofs (erofs-utils 1.5) and squashfs have no label; setting one is refused."),
  KeySpec(
    .partition, "Compression", bind: .partition(\.compression), .string,
    default: "none for erofs, gzip for squashfs",
    repart: true,
    "Format=erofs or squashfs: the compressor, passed to the tool as systemd-repart passes it "
      + "(erofs: lz4, lz4hc; squashfs: gzip, lzo, lz4, xz, zstd)."),
  KeySpec(
    .partition, "CompressionLevel", bind: .partition(\.compressionLevel), .int(min: 0, max: 22),
    repart: true,
    "Format=erofs or squashfs: the compressor's level (needs Compression=)."),
  KeySpec(
    .partition, "MakeFileSystemOptions", bind: .partition(\.makeFileSystemOptions), .list,
    repeatable: true,
    "Extra arguments for the format's mkfs tool, appended after rosepack's own, as repart's "
      + "SYSTEMD_REPART_MKFS_OPTIONS_<TYPE> (e.g. vfat: -s 8 for the cluster size; ext4: "
      + "-O ^has_journal -I 128; erofs: -Ededupe). Repeats add."),
  KeySpec(
    .partition, "SizeMinBytes", bind: .partition(\.sizeMinBytes), .size, default: "0", repart: true,
    "Minimum size. Equal to SizeMaxBytes= makes a fixed size. " + sizeHelp),
  KeySpec(
    .partition, "SizeMaxBytes", bind: .partition(\.sizeMaxBytes), .size, default: "no limit",
    repart: true,
    "Maximum size. " + sizeHelp),
  KeySpec(
    .partition, "HeadroomBytes", bind: .partition(\.headroomBytes), .size, default: "0",
    "Free space added above the content size for automatically sized partitions."),
  KeySpec(
    .partition, "HeadroomPercent", bind: .partition(\.headroomPercent), .int(min: 0, max: 1000),
    default: "0",
    "Free space added above the content size, in percent of the content size."),
  KeySpec(
    .partition, "Grow", bind: .partition(\.grow), .bool, default: "no",
    "Share the space left on a fixed-size disk with the other growing partitions, by Weight= "
      + "(default 1000)."),
  KeySpec(
    .partition, "Offset", bind: .partition(\.offset), .size,
    default: "after the previous partition",
    "Pin the partition start (e.g. for boot ROMs); a multiple of Alignment=."),
  KeySpec(
    .partition, "PaddingMinBytes", bind: .partition(\.paddingMinBytes), .size, default: "0",
    repart: true,
    "Unused space kept after the partition."),
  KeySpec(
    .partition, "Weight", bind: .partition(\.weight), .int(min: 0, max: 1_000_000), default: "1000",
    repart: true,
    "Share of the free space of a fixed-size disk, divided as systemd-repart divides it (minima "
      + "first, then maxima, then by weight, on the Alignment= grain). Only partitions with "
      + "Grow=yes, Weight= or SizeMaxBytes= above SizeMinBytes= share it."),
  KeySpec(
    .partition, "PaddingWeight", bind: .partition(\.paddingWeight), .int(min: 0, max: 1_000_000),
    default: "0", repart: true,
    "Share of the free space left unused after the partition, as Weight= for the partition."),
  KeySpec(
    .partition, "PaddingMaxBytes", bind: .partition(\.paddingMaxBytes), .size, default: "no limit",
    repart: true,
    "Upper bound of the unused space after the partition. " + sizeHelp),
  KeySpec(
    .partition, "Minimize", bind: .partition(\.minimize), .syntax("off|best|guess|BOOL"),
    default: "off", repart: true,
    "best, guess or yes: the partition is exactly as large as its content (plus headroom) and "
      + "takes no free space of a fixed-size disk; off or no: it shares free space by Weight=."),
  KeySpec(
    .partition, "Flags", bind: .partition(\.flags), .syntax("BITS"), default: "0", repart: true,
    "GPT attribute bits, decimal or 0x hexadecimal."),
  KeySpec(
    .partition, "ReadOnly", bind: .partition(\.readOnly), .bool, default: "no", repart: true,
    "Sets GPT attribute bit 60."),
  KeySpec(
    .partition, "NoAuto", bind: .partition(\.noAuto), .bool, default: "no", repart: true,
    "Sets GPT attribute bit 63."),
  KeySpec(
    .partition, "GrowFileSystem", bind: .partition(\.growFileSystem), .bool, default: "no",
    repart: true,
    "Sets GPT attribute bit 59 (grow the filesystem to the partition on first mount)."),
  KeySpec(
    .partition, "SplitName", bind: .partition(\.splitName), .string, default: "the Label= value",
    repart: true,
    "File name of this partition in the split output."),
  KeySpec(
    .partition, "CopyBlocks", bind: .partition(\.copyBlocks), .path, repart: true,
    "Format=raw: host file copied verbatim into the partition (bootloader, kernel, boot.img). "
      + "repart's CopyBlocks=auto (copy the running system's partition) is refused."),
  KeySpec(
    .partition, "Slots", bind: .partition(\.slots), .list,
    "Format=rosefs: one or two subvolume names; the first is slot A, the second slot B."),
  KeySpec(
    .partition, "DefaultSlot", bind: .partition(\.defaultSlot), .string,
    "Format=rosefs: the subvolume mounted by default; one of Slots=."),
  KeySpec(
    .partition, "SlotB", bind: .partition(\.slotB),
    .enumeration(SlotBMode.allCases.map(\.rawValue)), default: "snapshot",
    "How slot B starts: a snapshot sharing everything with slot A (plus B-only layers and "
      + "per-slot template output), or empty."),
  KeySpec(
    .partition, "Slot", bind: .partition(\.layers),
    .enumeration(SlotSelector.allCases.map(\.rawValue)), default: "both",
    repeatable: true,
    "Selects the slot for the content layers that follow it in this section, until the next "
      + "Slot=. Needs two Slots=."),
  KeySpec(
    .partition, "Tarball", bind: .partition(\.layers), .syntax("PATH[:DEST]"), repeatable: true,
    "Layer: unpack a tar archive (plain, gz, xz, zst) at DEST (default /)."),
  KeySpec(
    .partition, "Directory", bind: .partition(\.layers), .syntax("HOSTDIR[:DEST]"),
    repeatable: true,
    "Layer: copy a host directory tree (or one file) to DEST (default /); an absolute HOSTDIR "
      + "is a host path as given."),
  KeySpec(
    .partition, "CopyFiles", bind: .partition(\.layers), .syntax("SRC[:DEST]"), repeatable: true,
    repart: true,
    "Layer: copy a file or directory to DEST (default: the same path). As in repart, an "
      + "absolute SRC is under `rosepack build --root DIR` (never the build host's / unless "
      + "--root / is given); a relative SRC is relative to the recipe file."),
  KeySpec(
    .partition, "File", bind: .partition(\.layers), .syntax("HOSTFILE:DEST[:MODE]"),
    repeatable: true,
    "Layer: copy one host file to DEST, with an optional octal MODE."),
  KeySpec(
    .partition, "Inline", bind: .partition(\.layers), .syntax("DEST:TEXT"), repeatable: true,
    "Layer: write TEXT to DEST; \\n, \\t and \\\\ are escapes."),
  KeySpec(
    .partition, "Template", bind: .partition(\.layers), .syntax("TEMPLATE:DEST"), repeatable: true,
    "Layer: render a Mustache template per slot to DEST. A bare file name is looked up in "
      + "Templates/ next to the recipe file."),
  KeySpec(
    .partition, "Symlink", bind: .partition(\.layers), .syntax("DEST:TARGET"), repeatable: true,
    "Layer: create a symbolic link DEST pointing to TARGET."),
  KeySpec(
    .partition, "MakeDirectories", bind: .partition(\.layers), .list, repeatable: true,
    repart: true,
    "Layer: create these absolute image directories."),
  KeySpec(
    .partition, "Remove", bind: .partition(\.layers), .syntax("GLOB"), repeatable: true,
    "Layer: remove image paths matching GLOB (* within a name, ** across directories)."),
  KeySpec(
    .partition, "Ownership", bind: .partition(\.layers), .path, repeatable: true,
    "Layer: apply an Android fs_config manifest (path uid gid mode [capabilities=0x...])."),

  // Tables, blobs, verity and per-partition sparse images (issue 9).
  KeySpec(
    .partition, "MBRType", bind: .partition(\.mbrType), .syntax("BYTE|fat32|linux|esp|swap"),
    default: "0xef for an ESP, 0x82 for swap, 0x0c for vfat, else 0x83",
    "DOS partition type byte (hex, e.g. 0x0c or 83) for PartitionTable=mbr or hybrid. With "
      + "hybrid it also puts the partition into the MBR (at most 3)."),
  KeySpec(
    .partition, "Bootable", bind: .partition(\.bootable), .bool, default: "no",
    "Sets the MBR active flag (0x80) and GPT attribute bit 2 (legacy BIOS bootable)."),
  KeySpec(
    .partition, "InPartitionTable", bind: .partition(\.inPartitionTable), .bool, default: "yes",
    "no: the section is a blob, not a partition: CopyBlocks= is written byte for byte at "
      + "Offset= (any byte offset, e.g. 8K or 32K for u-boot/SPL) outside the partition "
      + "table, as genimage's in-partition-table = false. Refused where it overlaps the MBR, "
      + "the GPT, a partition or another blob. Needs Format=raw, CopyBlocks= and Offset=."),
  KeySpec(
    .partition, "Verity", bind: .partition(\.verity),
    .enumeration(VerityRole.allCases.map(\.rawValue)), default: "off",
    repart: true,
    "dm-verity role as systemd-repart defines it: data (the protected file system), hash "
      + "(veritysetup format over the data partition), signature (repart's JSON with rootHash and "
      + "a PKCS#7 signature made with --private-key/--certificate). The root hash derives the "
      + "data and hash partition UUIDs as repart does."),
  KeySpec(
    .partition, "VerityMatchKey", bind: .partition(\.verityMatchKey), .string, repart: true,
    "Ties the data, hash and signature partitions of one verity set together."),
  KeySpec(
    .partition, "Formats", bind: .partition(\.formats), .list, default: "none",
    "simg: also write this partition as an Android sparse image named SplitName=.img (e.g. "
      + "system_a.img), for `fastboot flash system_a system_a.img`."),
  KeySpec(
    .output, "MaxDownloadSize", bind: .output(\.maxDownloadSize), .size, default: "no limit",
    "Split the whole-disk simg into pieces NAME.N.simg of at most this size, each a valid "
      + "sparse image that fastboot flashes in turn (as fastboot splits at its "
      + "max-download-size). " + sizeHelp),

  KeySpec(
    .output, "Formats", bind: .output(\.formats), .list, default: "raw manifest", repeatable: true,
    "Artifacts to write: " + OutputKind.allCases.map(\.rawValue).joined(separator: ", ")
      + ". Repeats add; an empty value clears the list."),
  KeySpec(
    .output, "CompressLevel", bind: .output(\.compressLevel), .int(min: 1, max: 22), default: "3",
    "zstd level for zst."),
  KeySpec(
    .output, "SparseCrc", bind: .output(\.sparseCrc), .bool, default: "no",
    "Add a CRC32 chunk to Android sparse images (some fastboot versions reject it)."),
  KeySpec(
    .output, "SparseBlockSize", bind: .output(\.sparseBlockSize), .size, default: "4K",
    "Block size of Android sparse images; a multiple of 4 and of SectorSize=."),
  KeySpec(
    .output, "BaseName", bind: .output(\.baseName), .string,
    default: "%{IMAGE_NAME}_%{IMAGE_VERSION}",
    "File name stem of every artifact."),
]

func keySpec(section: SectionKind, name: String) -> KeySpec? {
  recipeKeys.first { ($0.section == section || $0.section == .any) && $0.name == name }
}

/// `rosepack build --help-keys`: every key, grouped by section, from the key table.
public func helpKeysText() -> String {
  var out = "Recipe keys (see docs/RECIPES.md for the full language):\n"
  for section in [SectionKind.any, .image, .partition, .output] {
    out += "\n" + (section == .any ? "Any section" : "[\(section.rawValue)]") + "\n"
    for key in recipeKeys where key.section == section {
      var head = "  \(key.name)=\(key.type.placeholder)"
      var notes: [String] = []
      if key.required { notes.append("required") }
      if key.repeatable { notes.append("repeatable") }
      if !key.defaultValue.isEmpty { notes.append("default: \(key.defaultValue)") }
      if !notes.isEmpty { head += "  (" + notes.joined(separator: "; ") + ")" }
      out += head + "\n"
      out += wrap(key.help, width: 88, indent: "      ")
    }
  }
  return out
}

func wrap(_ text: String, width: Int, indent: String) -> String {
  var lines: [String] = []
  var current = ""
  for word in text.split(separator: " ") {
    if !current.isEmpty && indent.count + current.count + 1 + word.count > width {
      lines.append(current)
      current = ""
    }
    current += (current.isEmpty ? "" : " ") + word
  }
  if !current.isEmpty { lines.append(current) }
  return lines.map { indent + $0 + "\n" }.joined()
}
