import Foundation
import RoseDisk

/// The fully resolved, validated recipe: the only thing the planner and builder read, so that
/// they never re-interpret text, variables or includes, and never see an invalid value.
public struct Recipe: Sendable, Equatable {
  public var image: ImageSettings
  /// In disk order (file order of the `[Partition]` sections).
  public var partitions: [PartitionSpec]
  /// `InPartitionTable=no` sections: raw files at fixed offsets outside the table (bootloaders).
  public var blobs: [BlobSpec] = []
  public var output: OutputSpec
  /// Problems that do not stop a build (e.g. vfat on 4096-byte sectors); the CLI prints them.
  public var warnings: [RecipeError]
  /// Every file read to build this recipe (main file, includes, drop-ins, templates, manifests),
  /// so a caller can decide whether a rebuild is needed.
  public var sourceFiles: [String]

  public init(
    image: ImageSettings, partitions: [PartitionSpec], output: OutputSpec,
    warnings: [RecipeError] = [], sourceFiles: [String] = []
  ) {
    self.image = image
    self.partitions = partitions
    self.output = output
    self.warnings = warnings
    self.sourceFiles = sourceFiles
  }

  /// Which files (and lines) the recipe came from is provenance, not meaning.
  public static func == (lhs: Recipe, rhs: Recipe) -> Bool {
    lhs.image == rhs.image && lhs.partitions == rhs.partitions && lhs.blobs == rhs.blobs
      && lhs.output == rhs.output
      && lhs.warnings.map(\.message) == rhs.warnings.map(\.message)
  }
}

/// Target CPU architecture; only needed to turn `Type=root`/`Type=usr` into the right DPS GUID.
public enum Architecture: String, Sendable, Equatable, CaseIterable {
  case x8664 = "x86-64"
  case arm64
  case x86
  case arm
  case riscv64
}

/// The whole-disk size: a fixed size for a device of known size, or `auto` to make the disk
/// exactly as big as its partitions need (the device grows it on first boot).
public enum DiskSize: Sendable, Equatable {
  case auto
  case fixed(UInt64)
}

/// Image-wide settings, kept apart from partitions so that every partition sees one
/// consistent geometry (sector size, alignment) and one reproducibility seed.
public struct ImageSettings: Sendable, Equatable {
  public var name: String
  public var version: String
  public var architecture: Architecture
  /// 512 or 4096 (4Kn/UFS). All offsets and sizes are multiples of it.
  public var sectorSize: Int
  public var alignment: UInt64
  public var diskSize: DiskSize
  /// Feeds deterministic disk and partition UUIDs; defaults to the image name.
  public var seed: String
  /// Clamp for every timestamp written; from the environment, else the recipe, else 0.
  public var sourceDateEpoch: Int64
  /// `gpt`, `mbr` or `hybrid` (see `tableKind`).
  public var partitionTable: String
  /// Variables from `Define=` merged with `--define` (which wins). Built-ins are not included.
  public var defines: [String: String]
  /// Set for a repart.d definitions directory: the disk is laid out exactly as systemd-repart
  /// lays it out (`RepartLayout`), with UUIDs derived from this seed as repart derives them.
  public var repart: RepartDisk?
  /// `PartitionTable=`: the table written (`partitionTable` keeps the text for dumps).
  public var tableKind: PartitionTableKind {
    PartitionTableKind(rawValue: partitionTable) ?? .gpt
  }
  /// True when `SourceDateEpoch=`/`SOURCE_DATE_EPOCH` was given: input times later than it are
  /// clamped to it. Otherwise input times are kept (they are deterministic already) and the
  /// entries rosepack creates are dated `sourceDateEpoch` (0).
  public var clampsTimes: Bool = true

  public init(
    name: String, version: String = "0", architecture: Architecture = .x8664,
    sectorSize: Int = 512, alignment: UInt64 = 1 << 20, diskSize: DiskSize = .auto,
    seed: String? = nil, sourceDateEpoch: Int64 = 0, partitionTable: String = "gpt",
    defines: [String: String] = [:]
  ) {
    self.name = name
    self.version = version
    self.architecture = architecture
    self.sectorSize = sectorSize
    self.alignment = alignment
    self.diskSize = diskSize
    self.seed = seed ?? name
    self.sourceDateEpoch = sourceDateEpoch
    self.partitionTable = partitionTable
    self.defines = defines
    self.repart = nil
  }
}

/// The disk-wide settings of a `--definitions` build (systemd-repart's command line).
public struct RepartDisk: Sendable, Equatable {
  public var seed: GUID
  /// nil: `--size=auto`, the sum of the partitions' minimum sizes as repart computes it.
  public var diskSize: UInt64?

  public init(seed: GUID, diskSize: UInt64?) {
    self.seed = seed
    self.diskSize = diskSize
  }
}

/// repart's size keys as repart holds them after parsing: the minima rounded up and the maxima
/// rounded down to 4096 bytes; nil where the key is not set.
public struct RepartSizing: Sendable, Equatable {
  public var sizeMin: UInt64?
  public var sizeMax: UInt64?
  public var paddingMin: UInt64?
  public var paddingMax: UInt64?
  public var weight: Int
  public var paddingWeight: Int

  public init(
    sizeMin: UInt64? = nil, sizeMax: UInt64? = nil, paddingMin: UInt64? = nil,
    paddingMax: UInt64? = nil, weight: Int = 1000, paddingWeight: Int = 0
  ) {
    self.sizeMin = sizeMin
    self.sizeMax = sizeMax
    self.paddingMin = paddingMin
    self.paddingMax = paddingMax
    self.weight = weight
    self.paddingWeight = paddingWeight
  }
}

/// A GPT partition type as the user named it (a DPS name such as `esp`) plus the GUID that
/// goes on disk, so dumps stay readable while the writer needs no lookup table.
public struct PartitionType: Sendable, Equatable {
  /// The DPS name when one was used (`esp`, `root-arm64`, …), nil for a raw GUID.
  public var name: String?
  public var guid: UUID

  public init(name: String?, guid: UUID) {
    self.name = name
    self.guid = guid
  }
}

/// What goes in a partition; the builder dispatches on this.
public enum PartitionFormat: String, Sendable, Equatable, CaseIterable {
  /// Our filesystem, filled from content layers, optionally with A/B subvolumes.
  case rosefs
  /// FAT (for an ESP), filled from host files.
  case vfat
  /// Bytes copied verbatim from `CopyBlocks=` (bootloaders, kernels, boot.img).
  case raw
  /// Left zeroed/unused (e.g. a data partition formatted on first boot).
  case empty
  /// Other filesystems, made by their own tools (RoseMkfs) from the same content layers.
  case ext4, ext2, ext3, xfs, btrfs, erofs, squashfs, f2fs
  /// A swap area (`mkswap`); holds no content.
  case swap

  /// Formats built by another filesystem's own tool (everything but rosefs, raw and empty).
  public var isForeignFileSystem: Bool {
    switch self {
    case .rosefs, .raw, .empty: return false
    default: return true
    }
  }

  /// Formats whose `Compression=`/`CompressionLevel=` mean something (as systemd-repart).
  public var compresses: Bool { self == .erofs || self == .squashfs }
}

/// How big a partition is; the planner resolves it against content sizes and the disk.
public enum SizeRule: Sendable, Equatable {
  /// `SizeMinBytes=` equals `SizeMaxBytes=`.
  case fixed(bytes: UInt64)
  /// As small as the content allows plus headroom, then clamped to [min, max].
  case auto(minBytes: UInt64, maxBytes: UInt64?, headroomBytes: UInt64, headroomPercent: Int)
  /// Takes all space left on a fixed-size disk (`Grow=yes`); at most one per disk.
  case grow(minBytes: UInt64, maxBytes: UInt64?)
}

/// Which A/B slot a content layer applies to; `both` before the B snapshot is taken.
public enum SlotSelector: String, Sendable, Equatable, CaseIterable {
  case both
  case a
  case b
}

/// How subvolume B starts: sharing all of A (cheap) or empty (filled by the first update).
public enum SlotBMode: String, Sendable, Equatable, CaseIterable {
  case snapshot
  case empty
}

/// repart's `Minimize=`, kept so that ported definitions parse; rosepack sizes in one pass.
public enum MinimizeMode: String, Sendable, Equatable, CaseIterable {
  case off
  case best
  case guess
}

/// One Android fs_config line: ownership and mode cannot come from an unprivileged host tree,
/// so they are declared per path.
public struct OwnershipOverride: Sendable, Equatable {
  /// Absolute image path ("/system/bin/sh"); a trailing "/" (Android style) is removed.
  public var path: String
  public var uid: UInt32
  public var gid: UInt32
  public var mode: UInt16
  public var capabilities: UInt64
  public var position: SourcePosition

  public init(
    path: String, uid: UInt32, gid: UInt32, mode: UInt16, capabilities: UInt64 = 0,
    position: SourcePosition
  ) {
    self.path = path
    self.uid = uid
    self.gid = gid
    self.mode = mode
    self.capabilities = capabilities
    self.position = position
  }
}

/// One step in filling a filesystem. Steps run in the order written, across all kinds, because
/// later steps must be able to overwrite or remove what earlier ones put there.
/// Host paths are absolute (resolved against the directory of the file that named them);
/// image paths are absolute inside the filesystem.
public enum ContentLayer: Sendable, Equatable {
  case tarball(source: String, destination: String, at: SourcePosition)
  case directory(source: String, destination: String, at: SourcePosition)
  case file(source: String, destination: String, mode: UInt16?, at: SourcePosition)
  case inline(destination: String, text: String, at: SourcePosition)
  /// Rendered per slot by `TemplateRenderer`; differing output yields per-slot files.
  case template(source: String, destination: String, at: SourcePosition)
  case symlink(path: String, target: String, at: SourcePosition)
  case makeDirectories(paths: [String], at: SourcePosition)
  /// Glob over image paths (`*` within a name, `**` across directories).
  case remove(glob: String, at: SourcePosition)
  case ownership(source: String, overrides: [OwnershipOverride], at: SourcePosition)

  public var position: SourcePosition {
    switch self {
    case .tarball(_, _, let at), .directory(_, _, let at), .file(_, _, _, let at),
      .inline(_, _, let at), .template(_, _, let at), .symlink(_, _, let at),
      .makeDirectories(_, let at), .remove(_, let at), .ownership(_, _, let at):
      return at
    }
  }
}

/// A content layer and the slot it is for.
public struct SlottedLayer: Sendable, Equatable {
  public var slot: SlotSelector
  public var layer: ContentLayer

  public init(slot: SlotSelector, layer: ContentLayer) {
    self.slot = slot
    self.layer = layer
  }
}

/// One partition as the user asked for it, with repart's meaning for repart's key names.
public struct PartitionSpec: Sendable, Equatable {
  public var label: String
  public var type: PartitionType
  /// Nil: derived from the image seed by the planner.
  public var uuid: UUID?
  public var format: PartitionFormat
  public var size: SizeRule
  /// Start offset in bytes when pinned by `Offset=` (bootloaders at fixed places).
  public var offset: UInt64?
  public var paddingMinBytes: UInt64
  /// Raw GPT attribute bits from `Flags=`, before ReadOnly/NoAuto/GrowFileSystem are added.
  public var flags: UInt64
  public var readOnly: Bool
  public var noAuto: Bool
  public var growFileSystem: Bool
  public var weight: Int
  public var minimize: MinimizeMode
  /// Name of the `split` output file for this partition.
  public var splitName: String
  /// Format=raw: the host file copied verbatim.
  public var copyBlocks: String?
  /// Format=rosefs: subvolume names; the first is slot A, the second slot B.
  public var subvolumes: [String]
  public var defaultSubvolume: String?
  public var slotB: SlotBMode
  /// In the order written.
  public var layers: [SlottedLayer]
  /// The `[Partition]` header, for planner errors such as "does not fit".
  public var position: SourcePosition
  /// The `CopyBlocks=` value, for errors about the copied file.
  public var copyBlocksPosition: SourcePosition?
  /// repart's size keys, laid out by `RepartLayout` (set for every partition: `--definitions`
  /// builds as repart reads them, recipes with the weight of partitions that grow).
  public var repartSizing: RepartSizing?
  /// The GPT attribute bits as written when set (repart's defaults already applied); nil: computed
  /// from `flags`, `readOnly`, `noAuto` and `growFileSystem`.
  public var attributeOverride: UInt64?
  /// `VolumeLabel=`: the filesystem label (nil: derived from `label` by the format's rule).
  public var volumeLabel: String?
  /// `Compression=`/`CompressionLevel=` (erofs, squashfs), as systemd-repart names them.
  public var compression: String?
  public var compressionLevel: Int?
  /// `MakeFileSystemOptions=`: extra arguments for the format's mkfs tool, appended last.
  public var makeFileSystemOptions: [String] = []
  /// `MBRType=`: the DOS type byte. With `PartitionTable=hybrid` it also selects the partition
  /// for the MBR (as genimage's `partition-type`); nil: derived from the GPT type and format.
  public var mbrType: UInt8?
  /// `Bootable=yes`: the MBR active flag (0x80) and GPT attribute bit 2 (legacy BIOS bootable),
  /// as genimage sets both.
  public var bootable: Bool = false
  /// `Verity=`: this partition's role in a dm-verity set, as systemd-repart defines it.
  public var verity: VerityRole = .off
  /// `VerityMatchKey=`: ties a data, hash and signature partition together.
  public var verityMatchKey: String?
  /// `Formats=simg` in the section: also write this partition as an Android sparse image
  /// named `SplitName=.img` (for `fastboot flash NAME`).
  public var sparseImage: Bool = false

  public init(
    label: String, type: PartitionType, uuid: UUID? = nil, format: PartitionFormat = .empty,
    size: SizeRule = .auto(minBytes: 0, maxBytes: nil, headroomBytes: 0, headroomPercent: 0),
    offset: UInt64? = nil, paddingMinBytes: UInt64 = 0, flags: UInt64 = 0,
    readOnly: Bool = false, noAuto: Bool = false, growFileSystem: Bool = false,
    weight: Int = 1000, minimize: MinimizeMode = .off, splitName: String? = nil,
    copyBlocks: String? = nil, subvolumes: [String] = [], defaultSubvolume: String? = nil,
    slotB: SlotBMode = .snapshot, layers: [SlottedLayer] = [], position: SourcePosition
  ) {
    self.label = label
    self.type = type
    self.uuid = uuid
    self.format = format
    self.size = size
    self.offset = offset
    self.paddingMinBytes = paddingMinBytes
    self.flags = flags
    self.readOnly = readOnly
    self.noAuto = noAuto
    self.growFileSystem = growFileSystem
    self.weight = weight
    self.minimize = minimize
    self.splitName = splitName ?? label
    self.copyBlocks = copyBlocks
    self.subvolumes = subvolumes
    self.defaultSubvolume = defaultSubvolume
    self.slotB = slotB
    self.layers = layers
    self.position = position
    self.repartSizing = nil
    self.attributeOverride = nil
    self.copyBlocksPosition = nil
  }

  /// The GPT attribute field as written: `Flags=` plus the DPS bits 60 (read-only),
  /// 63 (no-auto) and 59 (grow-file-system), as systemd-repart maps them.
  public var gptAttributes: UInt64 {
    if let attributeOverride { return attributeOverride }
    var bits = flags
    if readOnly { bits |= 1 << 60 }
    if noAuto { bits |= 1 << 63 }
    if growFileSystem { bits |= 1 << 59 }
    if bootable { bits |= 1 << 2 }
    return bits
  }

  /// True when the partition carries two slots in one filesystem.
  public var isAB: Bool { subvolumes.count == 2 }
}

/// A raw file written at a fixed byte offset outside the partition table (u-boot, SPL): a
/// `[Partition]` section with `InPartitionTable=no`, `CopyBlocks=` and `Offset=`, as genimage's
/// `in-partition-table = false`.
public struct BlobSpec: Sendable, Equatable {
  /// The section's `Label=` (for errors and the summary).
  public var name: String
  public var source: String
  public var offset: UInt64
  public var position: SourcePosition

  public init(name: String, source: String, offset: UInt64, position: SourcePosition) {
    self.name = name
    self.source = source
    self.offset = offset
    self.position = position
  }
}

/// A partition's role in a dm-verity set (systemd-repart's `Verity=`).
public enum VerityRole: String, Sendable, Equatable, CaseIterable {
  case off
  /// The protected file system.
  case data
  /// The Merkle tree made by `veritysetup format` over the data partition.
  case hash
  /// JSON `{"rootHash": ..., "signature": ...}` (PKCS#7 over the root hash).
  case signature
}

/// An output artifact kind; any combination may be asked for.
public enum OutputKind: String, Sendable, Equatable, CaseIterable {
  case raw
  case zst
  case bmap
  case simg
  case split
  case manifest
}

/// What files a build leaves behind, so flashing tools of every kind (dd, bmaptool,
/// fastboot, per-partition updaters) get the format they want from one build.
public struct OutputSpec: Sendable, Equatable {
  /// In canonical order, without duplicates.
  public var kinds: [OutputKind]
  public var zstdLevel: Int
  /// Android sparse CRC32 chunk; off by default because current fastboot crashes on it.
  public var sparseCRC: Bool
  public var sparseBlockSize: UInt64
  /// File name stem of every artifact.
  public var baseName: String
  /// `MaxDownloadSize=` (or `--max-download-size`): split the whole-disk sparse image into
  /// pieces of at most this many bytes, each a valid sparse image (as fastboot splits).
  public var maxDownloadSize: UInt64?

  public init(
    kinds: [OutputKind] = [.raw, .manifest], zstdLevel: Int = 3, sparseCRC: Bool = false,
    sparseBlockSize: UInt64 = 4096, baseName: String
  ) {
    self.kinds = kinds
    self.zstdLevel = zstdLevel
    self.sparseCRC = sparseCRC
    self.sparseBlockSize = sparseBlockSize
    self.baseName = baseName
  }
}
