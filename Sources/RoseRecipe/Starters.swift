import Foundation

/// Ready-to-build recipe projects for `rosepack init --template NAME DIR`, because a working
/// example that validates teaches the language faster than any reference page. The text is
/// embedded so the binary needs no data files.
public enum StarterTemplates: String, CaseIterable, Sendable {
  /// One RoseFS root partition.
  case minimal
  /// PC: ESP + RoseFS root with A/B subvolumes.
  case abRoot = "ab-root"
  /// Phone: 4096-byte sectors, boot_a/boot_b raw, RoseFS A/B, Android sparse output.
  case phone

  public var summary: String {
    switch self {
    case .minimal: return "one RoseFS root partition filled from a directory"
    case .abRoot: return "PC disk: ESP plus a RoseFS root with A/B subvolumes, zst and bmap"
    case .phone:
      return "phone: 4096-byte sectors, boot_a/boot_b raw images, RoseFS A/B, Android sparse"
    }
  }

  /// File name of the recipe inside the project directory.
  public var recipeFileName: String { "\(rawValue).conf" }

  /// Every file of the project, relative path and contents, recipe first.
  public var files: [(path: String, contents: String)] {
    switch self {
    case .minimal:
      return [
        (recipeFileName, minimalRecipe),
        ("rootfs/etc/os-release", osRelease),
      ]
    case .abRoot:
      return [
        (recipeFileName, abRootRecipe),
        ("rootfs/etc/os-release", osRelease),
        ("esp/EFI/BOOT/README.txt", "Put BOOTX64.EFI here.\n"),
        ("Templates/fstab.mustache", fstabTemplate),
        ("Templates/slot.mustache", "{{slot}}\n"),
        ("Templates/loader.conf.mustache", "default {{image_name}}-*\ntimeout 3\n"),
        ("fs_config", fsConfigSample),
      ]
    case .phone:
      return [
        (recipeFileName, phoneRecipe),
        // An empty tar archive (two zero blocks); replace with the real system tarball.
        ("system.tar", String(repeating: "\0", count: 1024)),
        ("boot.img", String(repeating: "\0", count: 4096)),
        ("Templates/slot_suffix.mustache", "_{{slot}}\n"),
        ("Templates/fstab.mustache", fstabTemplate),
        ("fs_config", fsConfigSample),
      ]
    }
  }

  /// Writes the project into `directory` (created if needed) and returns the recipe path.
  /// Refuses to overwrite existing files.
  @discardableResult
  public func write(to directory: String) throws -> String {
    let manager = FileManager.default
    for file in files {
      let path = (directory as NSString).appendingPathComponent(file.path)
      if manager.fileExists(atPath: path) {
        throw RecipeError(
          file: path, line: 0, column: 0, message: "already exists; not overwriting it")
      }
    }
    for file in files {
      let path = (directory as NSString).appendingPathComponent(file.path)
      try manager.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try Data(file.contents.utf8).write(to: URL(fileURLWithPath: path))
    }
    return (directory as NSString).appendingPathComponent(recipeFileName)
  }
}

private let osRelease = """
  NAME="Rose"
  ID=rose
  VERSION_ID=1.0

  """

private let fstabTemplate = """
  # /etc/fstab for slot {{slot}} of {{image_name}} {{image_version}}
  PARTLABEL={{partition_label}} / rosefs subvol={{subvolume}},ro 0 0

  """

private let fsConfigSample = """
  # Android fs_config: path uid gid mode [capabilities=0x...]
  etc 0 0 0755
  etc/os-release 0 0 0644
  usr/bin/ping 0 0 0755 capabilities=0x2000

  """

private let minimalRecipe = """
  # A minimal rosepack recipe: one RoseFS root partition.
  # Build it with: rosepack build minimal.conf

  [Image]
  Name=minimal
  Version=1.0

  [Partition]
  Type=root
  Label=root
  Format=rosefs
  # Leave 20% free space above the content size.
  HeadroomPercent=20
  # Content layers apply in the order written.
  Directory=rootfs:/
  Inline=/etc/hostname:%{IMAGE_NAME}\\n
  MakeDirectories=/var /tmp

  [Output]
  Formats=raw manifest

  """

private let abRootRecipe = """
  # PC disk: EFI system partition + one RoseFS root holding slots A and B as subvolumes.
  # Slot B starts as a snapshot of slot A: it shares everything except per-slot files.

  [Image]
  Name=rose-pc
  Version=1.0
  Architecture=x86-64
  SectorSize=512
  Alignment=1M
  DiskSize=8G
  SourceDateEpoch=1700000000
  Define=HOSTNAME=rose-pc

  [Partition]
  Type=esp
  Label=esp
  Format=vfat
  SizeMinBytes=256M
  SizeMaxBytes=256M
  CopyFiles=esp:/
  Template=loader.conf.mustache:/loader/loader.conf

  [Partition]
  Type=root
  Label=root
  Format=rosefs
  # Take the rest of the 8G disk.
  Grow=yes
  SizeMinBytes=2G
  GrowFileSystem=yes
  Slots=a b
  DefaultSlot=a
  SlotB=snapshot
  Directory=rootfs:/
  Inline=/etc/hostname:%{HOSTNAME}\\n
  # Rendered once per slot: differing output becomes a per-slot file.
  Template=fstab.mustache:/etc/fstab
  Template=slot.mustache:/etc/rose/slot
  Ownership=fs_config
  Remove=/usr/share/doc/**
  # Layers after Slot=b apply to slot B only.
  Slot=b
  Inline=/etc/rose/first-boot:pending\\n

  [Output]
  Formats=raw zst bmap manifest
  CompressLevel=19

  """

private let phoneRecipe = """
  # Phone (UFS): 4096-byte sectors, raw boot_a/boot_b, RoseFS system with A/B subvolumes,
  # Android sparse output for fastboot.

  [Image]
  Name=rose-phone
  Version=1.0
  Architecture=arm64
  SectorSize=4096
  Alignment=1M
  DiskSize=auto

  [Partition]
  Type=linux-generic
  Label=boot_a
  Format=raw
  CopyBlocks=boot.img
  SizeMinBytes=64M
  SizeMaxBytes=64M

  [Partition]
  Type=linux-generic
  Label=boot_b
  Format=raw
  CopyBlocks=boot.img
  SizeMinBytes=64M
  SizeMaxBytes=64M

  [Partition]
  Type=root
  Label=system
  Format=rosefs
  HeadroomPercent=10
  HeadroomBytes=64M
  Slots=a b
  DefaultSlot=a
  Tarball=system.tar
  Ownership=fs_config
  Template=slot_suffix.mustache:/etc/slot_suffix
  Template=fstab.mustache:/etc/fstab
  Symlink=/vendor:/system/vendor

  [Output]
  Formats=simg bmap manifest
  SparseCrc=no
  SparseBlockSize=4K

  """
