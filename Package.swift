// swift-tools-version: 6.0
import PackageDescription

// Release builds of our modules skip the runtime exclusivity checks (`swift_beginAccess` on every
// class property and global access was 4.5 % of convert's profile on small200k.tar); the compiler's
// static checks still run, and debug builds (the tests) keep the dynamic ones. docs/MEMORY.md,
// "Release flags and text order".
let releaseSwift: [SwiftSetting] = [
  .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

// The functions `--help`, `convert` of a one-file tarball and `convert` of minbase execute
// (scripts/text-order.sh writes the list), placed first in the release executable's text: resident
// text is every 64 KiB fault-around window a run touches, and in link order those functions were
// spread over 8.8 MiB of windows. A stale list costs memory, not correctness (names not found are
// skipped).
let textOrderFile = Context.packageDirectory + "/scripts/rosepack-text-order.txt"

// A C library the modules call: shared in debug builds (the tests link fast), its static archives in
// release builds, so that the release executable loads no libarchive (nor the libxml2 and ICU 72 it
// needs), nettle, zstd or fuse shared object; each cost its relocated tables and touched pages at
// start (docs/MEMORY.md, "Static C libraries"). The module maps carry no `link` and the system
// libraries no `pkgConfig`: SwiftPM would put their `-l` (the shared object) first on the release
// link, and lld would then record it as needed whatever came after.
func cLibrary(_ name: String, archives: [String]) -> [LinkerSetting] {
  [
    .linkedLibrary(name, .when(configuration: .debug)),
    .unsafeFlags(archives.flatMap { ["-Xlinker", "-l:lib\($0).a"] }, .when(configuration: .release)),
  ]
}
// libarchive's own dependencies (`pkg-config --static --libs libarchive`), with libxml2's for its
// xar reader.
let libarchive = cLibrary(
  "archive",
  archives: [
    "archive", "nettle", "acl", "lzma", "zstd", "lz4", "bz2", "z", "xml2", "icui18n", "icuuc",
    "icudata",
  ])
let libzstd = cLibrary("zstd", archives: ["zstd"])
let libnettle = cLibrary("nettle", archives: ["nettle"])
let libfuse = cLibrary("fuse3", archives: ["fuse3"])

let package = Package(
  name: "rosepack",
  products: [
    .executable(name: "rosepack", targets: ["rosepack"]),
    .library(name: "RoseFS", targets: ["RoseFS"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
    .package(url: "https://github.com/hummingbird-project/swift-mustache.git", exact: "2.1.1"),
    .package(url: "https://github.com/apple/swift-system.git", exact: "1.8.1"),
  ],
  targets: [
    // C system libraries; headers from Debian's libarchive-dev, libzstd-dev, nettle-dev,
    // libfuse3-dev. Their module maps link nothing: `cLibrary` below says how each is linked.
    .systemLibrary(name: "CArchive", providers: [.apt(["libarchive-dev"])]),
    .systemLibrary(name: "CZstd", providers: [.apt(["libzstd-dev"])]),
    .systemLibrary(name: "CNettle", providers: [.apt(["nettle-dev"])]),
    .systemLibrary(name: "CFuse", providers: [.apt(["libfuse3-dev"])]),
    // Linux calls and constants Swift's Glibc module leaves out (l*xattr, SEEK_DATA/SEEK_HOLE).
    .systemLibrary(name: "CRoseSystem"),
    // CRC32C (SSE4.2) and CRC32 (IEEE, for GPT): the only hand-written C, because Swift cannot be as fast.
    .target(name: "CChecksum"),
    // Byte sizes: the one grammar users write them in and the one way they are printed.
    .target(name: "RoseSizes", swiftSettings: releaseSwift),
    // The format: on-disk structures, builder, reader, fsck. Knows nothing of tarballs, recipes or disks.
    .target(
      name: "RoseFS", dependencies: ["CChecksum", "CNettle", "RoseSizes"],
      swiftSettings: releaseSwift, linkerSettings: libnettle),
    // Inputs (tarballs, directories, inline files) into the RoseFS tree model.
    .target(
      name: "RoseIngest", dependencies: ["RoseFS", "CArchive", "CZstd", "CRoseSystem"],
      swiftSettings: releaseSwift, linkerSettings: libarchive + libzstd),
    // Partition tables and output encoders.
    .target(
      name: "RoseDisk",
      dependencies: [
        "CChecksum", "CZstd", "CNettle", "CRoseSystem", "RoseSizes",
        .product(name: "SystemPackage", package: "swift-system"),
      ], swiftSettings: releaseSwift, linkerSettings: libzstd + libnettle),
    // Recipe schema, parser, validation, templates.
    .target(
      name: "RoseRecipe",
      dependencies: [
        "RoseDisk", "RoseSizes", .product(name: "Mustache", package: "swift-mustache"),
      ], swiftSettings: releaseSwift),
    // Other filesystems, made by their own tools (mke2fs, mkfs.erofs, mksquashfs, mkfs.btrfs,
    // mkfs.f2fs, mkfs.xfs, mkswap, mkfs.vfat + mtools) from a staged tree, unprivileged.
    .target(
      name: "RoseMkfs", dependencies: ["RoseFS", "RoseIngest", "RoseDisk", "RoseSizes"],
      swiftSettings: releaseSwift),
    // The FUSE low-level binding of a VolumeOperations (`rosepack mount`).
    .target(
      name: "RoseMount", dependencies: ["RoseFS", "CFuse"], swiftSettings: releaseSwift,
      linkerSettings: libfuse),
    // The block picture: `rosepack map` and the heat benchmark's heatmaps (one renderer, two callers).
    .target(name: "RoseMap", swiftSettings: releaseSwift),
    // The build pipeline: a recipe model in, a disk image and its outputs out (A/B slots, disk
    // planning, output encoders, publishing the output set). No flags, no terminal.
    .target(
      name: "RoseBuild",
      dependencies: [
        "RoseFS", "RoseIngest", "RoseDisk", "RoseRecipe", "RoseMkfs", "RoseSizes", "CRoseSystem",
      ], swiftSettings: releaseSwift),
    // Seeded mutations of RoseFS images, tar archives and recipes for the fuzz tests, which
    // `rosepack debug-fuzz` runs its own commands on.
    .target(name: "RoseFuzz", dependencies: ["RoseFS"], swiftSettings: releaseSwift),
    .executableTarget(
      name: "rosepack",
      dependencies: [
        "RoseBuild", "RoseFS", "RoseIngest", "RoseDisk", "RoseRecipe", "RoseMount", "RoseMap",
        "RoseMkfs", "RoseSizes", "RoseFuzz", "CRoseSystem",
        .product(name: "SystemPackage", package: "swift-system"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      swiftSettings: releaseSwift,
      // The release binary's fixed memory (docs/MEMORY.md, "The fixed baseline"): the Swift runtime
      // and Foundation linked in (no dynamic libFoundation*.so, ICU and their relocations), by lld
      // with packed relative relocations (a few KiB of RELR instead of 1.9 MB of RELA that the loader
      // reads), and without exporting every symbol (the static-stdlib default), which the dynamic
      // loader would hash and look up. Release only: debug links stay fast and tests do not link it.
      // The modules are compiled against the shared toolchain's Foundation, whose autolink entries
      // leave out the archives its static build needs besides itself: they are named here (lld finds
      // archive members in any order).
      linkerSettings: [
        .unsafeFlags(
          [
            "-static-stdlib", "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
            "-Xlinker", "--no-export-dynamic", "-Xlinker",
            "--symbol-ordering-file=" + textOrderFile,
            "-Xlinker", "--no-warn-symbol-ordering",
          ], .when(platforms: [.linux], configuration: .release)),
        .linkedLibrary("_FoundationICU", .when(platforms: [.linux], configuration: .release)),
        .linkedLibrary("CoreFoundation", .when(platforms: [.linux], configuration: .release)),
        .linkedLibrary("_FoundationCShims", .when(platforms: [.linux], configuration: .release)),
        .linkedLibrary(
          "_FoundationCollections", .when(platforms: [.linux], configuration: .release)),
        .linkedLibrary("stdc++", .when(platforms: [.linux], configuration: .release)),
      ]),
    // The write-heat benchmark (Benchmarks/heat/README.md): workload, runners, report.
    .target(
      name: "RoseHeat", dependencies: ["RoseFS", "RoseMap"],
      path: "Benchmarks/heat/Sources/RoseHeat"),
    .executableTarget(
      name: "rose-heat",
      dependencies: [
        "RoseHeat", "RoseFS", "RoseMap",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      path: "Benchmarks/heat/Sources/rose-heat"),
    .testTarget(
      name: "RoseHeatTests", dependencies: ["RoseHeat", "RoseMap"],
      path: "Benchmarks/heat/Tests/RoseHeatTests"),
    .testTarget(name: "RoseFSTests", dependencies: ["RoseFS", "RoseTestSupport"]),
    .testTarget(
      name: "RoseIngestTests", dependencies: ["RoseIngest", "RoseFS", "RoseTestSupport"]),
    // Helpers the test targets share (temporary directories, running outside checkers, the heap).
    .target(name: "RoseTestSupport", path: "Tests/RoseTestSupport"),
    .testTarget(name: "RoseDiskTests", dependencies: ["RoseDisk", "RoseTestSupport"]),
    .testTarget(
      name: "RoseMkfsTests",
      dependencies: ["RoseMkfs", "RoseFS", "RoseIngest", "RoseDisk", "RoseTestSupport"]),
    .testTarget(name: "RoseRecipeTests", dependencies: ["RoseRecipe", "RoseSizes"]),
    .testTarget(
      name: "RoseBuildTests",
      dependencies: [
        "RoseBuild", "RoseFS", "RoseIngest", "RoseDisk", "RoseRecipe", "RoseSizes",
        "RoseTestSupport",
      ]),
    .testTarget(
      name: "RosepackTests",
      dependencies: [
        "RoseFS", "RoseIngest", "RoseDisk", "RoseRecipe", "RoseMap", "RoseSizes", "RoseTestSupport",
      ]),
  ],
  swiftLanguageModes: [.v6]
)
