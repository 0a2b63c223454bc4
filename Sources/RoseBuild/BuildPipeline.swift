import Foundation
import RoseDisk
import RoseFS
import RoseIngest
import RoseMkfs
import RoseRecipe
import RoseSizes

/// An automatically sized RoseFS partition, ingested once and packed at its smallest size (to learn
/// it) in a staging file; kept with its tree so that the final pack at the partition's size reads
/// no input again (`ImageBuilder.finish(into:size:...)`).
final class MeasuredVolume {
  let path: String
  let fd: Int32
  let report: BuildReport
  let builder: ImageBuilder
  let subvolumes: [Subvolume]
  let defaultSubvolume: Int

  init(
    path: String, fd: Int32, report: BuildReport, builder: ImageBuilder, subvolumes: [Subvolume],
    defaultSubvolume: Int
  ) {
    self.path = path
    self.fd = fd
    self.report = report
    self.builder = builder
    self.subvolumes = subvolumes
    self.defaultSubvolume = defaultSubvolume
  }

  deinit {
    close(fd)
    unlink(path)
  }
}

/// What one partition holds before the disk is planned.
enum BuildContent {
  /// `measured`: the smallest volume, built to learn the content size of an automatically sized
  /// partition (nil for a fixed size, built straight into the disk image).
  case rosefs(measured: MeasuredVolume?)
  case raw(path: String, size: UInt64)
  /// ext4, erofs, squashfs, ... (RoseMkfs): the staged tree and, when auto-sized, the smallest
  /// filesystem.
  case fileSystem(ForeignFileSystem)
  case empty
  /// A verity hash or signature partition: space reserved, filled after the data is written.
  case verity(reserved: UInt64)

  /// The content size the planner sees.
  var size: UInt64 {
    switch self {
    case .rosefs(let measured): return measured?.report.volumeBytes ?? 0
    case .raw(_, let size): return size
    case .fileSystem(let content): return content.minimal?.size ?? (1 << 20)
    case .empty: return 0
    case .verity(let reserved): return reserved
    }
  }
}

/// recipe -> inputs -> trees -> RoseFS volumes -> disk plan -> raw disk -> output encoders.
///
/// Everything is written into a staging directory inside the output directory and renamed into
/// place only when every output is complete, so a failure leaves no file under a final name.
public final class BuildPipeline {
  let recipe: Recipe
  let outputDirectory: String
  let progress: any BuildProgress
  let staging: String
  var contents: [BuildContent] = []
  /// The final RoseFS report of each RoseFS partition, by partition index.
  private(set) var reports: [Int: BuildReport] = [:]
  /// libarchive's warnings about the inputs, each once, in the order met (kept after a failure).
  public private(set) var inputWarnings: [ArchiveWarning] = []
  private var warningsSeen = Set<ArchiveWarning>()
  /// `--private-key`/`--certificate`: signs Verity=signature partitions.
  public var verityPrivateKey: String?
  public var verityCertificate: String?

  public init(recipe: Recipe, outputDirectory: String, progress: any BuildProgress)
    throws(BuildFailure)
  {
    self.recipe = recipe
    self.outputDirectory = outputDirectory
    self.progress = progress
    try OutputTarget.check(outputDirectory, directory: true)
    do {
      try FileManager.default.createDirectory(
        atPath: outputDirectory, withIntermediateDirectories: true)
    } catch {
      throw BuildFailure.io(
        path: outputDirectory, operation: "creating the output directory",
        errno: BuildPipeline.errnoCode(of: error))
    }
    lock = try DirectoryLock(outputDirectory) { message in
      FileHandle.standardError.write(Data((message + "\n").utf8))
    }
    BuildPipeline.removeStaleStaging(in: outputDirectory)
    staging = try BuildPipeline.makeStaging(in: outputDirectory)
  }

  /// A new staging directory (as mkdtemp makes one), registered for removal on a signal before
  /// it exists: a signal right after the mkdir cannot leave it behind.
  static func makeStaging(in directory: String) throws(BuildFailure) -> String {
    var random = SystemRandomNumberGenerator()
    for _ in 0..<100 {
      let suffix = String(random.next() & 0xFF_FFFF_FFFF, radix: 36)
      let candidate = directory + "/\(stagingPrefix)\(getpid())-\(suffix)"
      Interrupts.shared.register(candidate, directory: true)
      if mkdir(candidate, 0o700) == 0 { return candidate }
      let code = errno
      Interrupts.shared.unregister(candidate)
      guard code == EEXIST else {
        throw .io(path: directory, operation: "creating a staging directory", errno: code)
      }
    }
    throw .io(path: directory, operation: "creating a staging directory", errno: EEXIST)
  }

  deinit {
    try? FileManager.default.removeItem(atPath: staging)
    Interrupts.shared.unregister(staging)
  }

  /// Held for the whole build (see `DirectoryLock`).
  private let lock: DirectoryLock
  static let stagingPrefix = ".rosepack-build-"

  /// Staging directories of builds that died (SIGKILL, power loss). Called with the directory lock
  /// held: every build holds it while its staging directory exists, so any found now is stale.
  static func removeStaleStaging(in directory: String) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
      return
    }
    for name in names where name.hasPrefix(stagingPrefix) {
      try? FileManager.default.removeItem(atPath: directory + "/" + name)
    }
  }

  var seed: String { recipe.image.seed }
  var epoch: Int64 { recipe.image.sourceDateEpoch }

  // MARK: run

  /// Builds every output of the recipe and publishes them as a set.
  public func run() throws(BuildFailure) -> BuildSummary {
    do {
      return try runSteps()
    } catch let failure as BuildFailure {
      throw failure
    } catch {
      // Only the output encoders and the raw image are outside a partition's context here.
      throw .output(PartitionFailure(error))
    }
  }

  func runSteps() throws -> BuildSummary {
    let start = Date()
    for (i, spec) in recipe.partitions.enumerated() {
      contents.append(try prepare(spec, index: i))
    }
    try reserveVerity()
    progress.update("planning the disk")
    var layout = try plan()
    let base = recipe.output.baseName
    let rawPath = staging + "/" + base + ".img"
    var map = try writeDisk(layout, to: rawPath)
    layout = try applyVerity(layout, rawPath: rawPath, map: &map)
    // Zeros over every partition's signature areas, so flashing tools overwrite stale ones; the
    // manifest and summary report what the partitions hold (`contentMap`).
    let contentMap = map
    map.insert(layout.signatureAreas)

    var outputs: [(file: String, format: String)] = []
    let kinds = recipe.output.kinds
    if kinds.contains(.raw) { outputs.append((base + ".img", "raw")) }
    if kinds.contains(.zst) {
      progress.update("writing \(base).img.zst")
      try ZstdOutput(level: Int32(clamping: recipe.output.zstdLevel))
        .write(rawImage: rawPath, map: map, to: staging + "/" + base + ".img.zst")
      outputs.append((base + ".img.zst", "zstd"))
    }
    if kinds.contains(.bmap) {
      progress.update("writing \(base).bmap")
      // Named so that `bmaptool copy IMAGE` finds it beside the image it describes.
      let described = kinds.contains(.raw) ? [base + ".img"] : []
      let bmapName = kinds.contains(.raw) ? base + ".bmap" : base + ".img.zst.bmap"
      try BmapOutput().write(
        rawImage: rawPath, map: map, to: staging + "/" + bmapName,
        describes: described + (kinds.contains(.zst) ? [base + ".img.zst"] : []))
      outputs.append((bmapName, "bmap"))
    }
    if kinds.contains(.simg) {
      progress.update("writing \(base).simg")
      let sparse = AndroidSparseOutput(
        blockSize: UInt32(clamping: recipe.output.sparseBlockSize),
        includeCRC: recipe.output.sparseCRC
      )
      if let limit = recipe.output.maxDownloadSize {
        let pieces = try sparse.writeSplit(rawImage: rawPath, map: map, maxBytes: limit) { n in
          staging + "/" + base + ".\(n).simg"
        }
        for piece in pieces {
          outputs.append(((piece as NSString).lastPathComponent, "android-sparse"))
        }
      } else {
        try sparse.write(rawImage: rawPath, map: map, to: staging + "/" + base + ".simg")
        outputs.append((base + ".simg", "android-sparse"))
      }
    }
    outputs += try writePartitionSparseImages(layout, rawPath: rawPath, map: map)
    if kinds.contains(.split) {
      progress.update("writing split images")
      let written = try SplitOutput().write(
        rawImage: rawPath, partitions: layout.partitions, map: map, directory: staging,
        baseName: base)
      for (n, (path, spec)) in zip(written, recipe.partitions).enumerated() {
        let name = SplitOutput.fileName(baseName: base, label: spec.splitName, index: n + 1)
        if (path as NSString).lastPathComponent != name {
          guard rename(path, staging + "/" + name) == 0 else {
            throw BuildFailure.io(path: path, operation: "rename", errno: errno)
          }
        }
        outputs.append((name, "split"))
      }
    }
    if !kinds.contains(.raw) { unlink(rawPath) }

    progress.update("checksumming outputs")
    // Sparse outputs (the raw disk, split images) are digested over their mapped ranges only, so
    // the cost follows the content, not the disk size (docs/DISK-OUTPUTS.md, manifest.json).
    var manifest = Manifest(layout: layout, map: contentMap)
    var described: [Manifest.Output] = []
    var splitIndex = 0
    for output in outputs {
      var mapped: [AllocationMap.Extent]?
      if output.format == "raw" { mapped = contentMap.extents }
      if output.format == "split" {
        splitIndex += 1
        mapped = manifest.mappedRanges(ofPartition: splitIndex)
      }
      described.append(
        try Manifest.describeOutput(
          path: staging + "/" + output.file, format: output.format, mapped: mapped))
    }
    manifest.outputs = described
    var files = outputs.map(\.file)
    if kinds.contains(.manifest) {
      try manifest.write(to: staging + "/manifest.json")
      files.append("manifest.json")
    }
    // Commit: every output is complete; publish them as a set.
    try OutputSet.publish(files: files, from: staging, to: outputDirectory)
    progress.done()
    return BuildSummary(
      recipe: recipe, layout: layout, map: contentMap, reports: reports,
      inputWarnings: inputWarnings, outputs: described,
      outputDirectory: outputDirectory, manifestWritten: kinds.contains(.manifest),
      seconds: Date().timeIntervalSince(start))
  }

  // MARK: contents

  func prepare(_ spec: PartitionSpec, index: Int) throws -> BuildContent {
    switch spec.format {
    case .rosefs:
      if case .fixed = spec.size { return .rosefs(measured: nil) }
      let fd = try createFile(staging + "/.measure-\(index).rosefs")
      do {
        let packed = try buildVolume(spec, into: ImageFile(fd: fd.fd, path: fd.path), size: nil)
        return .rosefs(
          measured: MeasuredVolume(
            path: fd.path, fd: fd.fd, report: packed.report, builder: packed.builder,
            subvolumes: packed.subvolumes, defaultSubvolume: packed.defaultSubvolume))
      } catch {
        close(fd.fd)
        throw error
      }
    case .raw:
      guard let path = spec.copyBlocks else {
        throw BuildFailure.unbuildable(
          label: spec.label, at: spec.position,
          message: "partition '\(spec.label)': Format=raw needs CopyBlocks=", hint: nil)
      }
      var st = stat()
      guard stat(path, &st) == 0 else {
        throw BuildFailure.partition(
          label: spec.label, at: spec.position,
          cause: .disk(.io(path: path, operation: "stat", code: errno)))
      }
      return .raw(path: path, size: UInt64(st.st_size))
    case .empty:
      return .empty
    default:
      return try prepareFileSystem(spec, index: index)
    }
  }

  func createFile(_ path: String) throws(BuildFailure) -> (fd: Int32, path: String) {
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw .io(path: path, operation: "create", errno: errno) }
    return (fd, path)
  }

  func noteWarnings(_ warnings: [ArchiveWarning]) {
    for warning in warnings where warningsSeen.insert(warning).inserted {
      inputWarnings.append(warning)
    }
  }

  /// The errno of a Foundation file error (EIO when it carries none).
  static func errnoCode(of error: any Error) -> Int32 {
    let nsError = error as NSError
    if nsError.domain == NSPOSIXErrorDomain { return Int32(nsError.code) }
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError,
      underlying.domain == NSPOSIXErrorDomain
    {
      return Int32(underlying.code)
    }
    return EIO
  }

  /// `error` as a failure of partition `spec`: the pipeline's own failures as they are, a volume
  /// too small as "does not fit", anything else with its typed cause.
  func failure(of spec: PartitionSpec, _ error: any Error) -> BuildFailure {
    switch error {
    case let failure as BuildFailure: return failure
    case RoseFSError.volumeTooSmall(let needed, let have):
      return doesNotFit(spec, needed: needed, has: have)
    case DiskError.partitionDoesNotFit(_, let needed, let available):
      return doesNotFit(spec, needed: needed, has: available)
    case let error as ContentDoesNotFit:
      return doesNotFit(spec, needed: error.needed, has: error.available)
    case let error as RecipeErrors:
      return .recipe(error.errors)
    default:
      return .partition(label: spec.label, at: spec.position, cause: PartitionFailure(error))
    }
  }

  /// Builds one RoseFS volume into `image`; `size` nil packs the smallest volume. Returns the
  /// builder and trees too, for packing the same content again at another size.
  func buildVolume(_ spec: PartitionSpec, into image: ImageFile, size: UInt64?) throws
    -> (report: BuildReport, builder: ImageBuilder, subvolumes: [Subvolume], defaultSubvolume: Int)
  {
    let uuid = GUID.derived(seed: seed, label: "rosefs:" + spec.label).canonicalBytes
    let label = String(decoding: Array(spec.label.utf8.prefix(32)), as: UTF8.self)
    do {
      let builder = try ImageBuilder(
        image: image,
        options: BuildOptions(size: size, label: label, uuid: uuid, sourceDateEpoch: epoch))
      progress.update("\(spec.label): reading inputs")
      let filler = BuildSlotFiller(recipe: recipe, spec: spec, builder: builder, progress: progress)
      defer { noteWarnings(filler.warnings) }
      let subvolumes = try filler.fill()
      progress.update("\(spec.label): writing metadata")
      let defaultIndex = spec.defaultSubvolume.flatMap { spec.subvolumes.firstIndex(of: $0) } ?? 0
      let report = try builder.finish(subvolumes: subvolumes, defaultSubvolume: defaultIndex)
      return (report, builder, subvolumes, defaultIndex)
    } catch {
      throw failure(of: spec, error)
    }
  }

  /// `partition 'root' needs 412 MiB, has 256 MiB; the largest inputs are ...`
  func doesNotFit(_ spec: PartitionSpec, needed: UInt64, has: UInt64) -> BuildFailure {
    var inputs: [BuildFailure.SizedInput] = []
    for slotted in spec.layers {
      switch slotted.layer {
      case .tarball(let source, _, let at), .directory(let source, _, let at),
        .file(let source, _, _, let at):
        inputs.append(
          .init(name: (source as NSString).lastPathComponent, bytes: hostSize(source), at: at))
      case .inline(let destination, let text, let at):
        inputs.append(.init(name: destination, bytes: UInt64(text.utf8.count), at: at))
      default: break
      }
    }
    if let path = spec.copyBlocks {
      inputs.append(
        .init(name: (path as NSString).lastPathComponent, bytes: hostSize(path), at: spec.position))
    }
    // Largest first; a stable sort keeps recipe order among equal sizes.
    let largest = inputs.enumerated().sorted {
      $0.element.bytes != $1.element.bytes
        ? $0.element.bytes > $1.element.bytes : $0.offset < $1.offset
    }
    return .doesNotFit(
      label: spec.label,
      at: spec.format == .raw ? (spec.copyBlocksPosition ?? spec.position) : spec.position,
      needed: needed, available: has, largestInputs: largest.prefix(3).map(\.element))
  }

  /// Apparent size of a host file or directory tree.
  func hostSize(_ path: String) -> UInt64 {
    var st = stat()
    guard lstat(path, &st) == 0 else { return 0 }
    if (st.st_mode & S_IFMT) != S_IFDIR { return UInt64(max(st.st_size, 0)) }
    var total: UInt64 = 0
    let enumerator = FileManager.default.enumerator(atPath: path)
    while let entry = enumerator?.nextObject() as? String {
      var est = stat()
      if lstat(path + "/" + entry, &est) == 0, (est.st_mode & S_IFMT) == S_IFREG {
        total += UInt64(max(est.st_size, 0))
      }
    }
    return total
  }

  // MARK: planning

  /// A planner error at the line of the partition it names (the recipe file when it names none).
  func planFailure(_ error: any Error) -> BuildFailure {
    if let failure = error as? BuildFailure { return failure }
    guard let error = error as? DiskError else {
      return .internalError("the disk planner threw \(type(of: error))")
    }
    let spec = error.partitionLabel.flatMap { label in
      recipe.partitions.first { $0.label == label }
    }
    if case .partitionDoesNotFit(_, let needed, let available) = error, let spec {
      return doesNotFit(spec, needed: needed, has: available)
    }
    return .disk(error, at: spec?.position ?? recipeFilePosition)
  }

  /// The recipe as a whole (its first file, no line), for failures of no one line.
  var recipeFilePosition: SourcePosition {
    SourcePosition(file: recipe.sourceFiles.first ?? "recipe", line: 0, column: 0)
  }

  /// A partition's type GUID and its UUID: the recipe's, or derived from the seed and label.
  func identifiers(of spec: PartitionSpec) -> (type: GUID, uuid: GUID) {
    (GUID(spec.type.guid), spec.uuid.map(GUID.init) ?? GUID.derived(seed: seed, label: spec.label))
  }

  func plan() throws -> DiskLayout {
    if let repart = recipe.image.repart { return try planRepart(repart) }
    if recipe.partitions.allSatisfy({ $0.offset == nil }) { return try planByWeight() }
    var requests: [PartitionRequest] = []
    for (i, spec) in recipe.partitions.enumerated() {
      let (type, uuid) = identifiers(of: spec)
      let content = contents[i].size
      let rule: PartitionSizeRule
      switch spec.size {
      case .fixed(let bytes):
        rule = .fixed(bytes)
      case .auto(let minBytes, let maxBytes, let headroomBytes, let headroomPercent):
        let percent = content.multipliedReportingOverflow(by: UInt64(max(headroomPercent, 0)))
        let wanted = content &+ headroomBytes &+ (percent.overflow ? 0 : percent.partialValue / 100)
        var low = max(minBytes, wanted)
        if let maxBytes { low = min(low, maxBytes) }
        rule = .auto(min: max(low, minBytes), max: maxBytes)
      case .grow(let minBytes, let maxBytes):
        rule = .grow(min: minBytes, max: maxBytes, weight: UInt64(max(spec.weight, 1)))
      }
      requests.append(
        PartitionRequest(
          label: spec.label, type: type, uuid: uuid, attributes: spec.gptAttributes, size: rule,
          contentSize: content, offset: spec.offset))
    }
    var diskSize: UInt64?
    if case .fixed(let bytes) = recipe.image.diskSize { diskSize = bytes }
    do {
      return try DiskLayout.plan(
        sectorSize: UInt64(recipe.image.sectorSize), alignment: recipe.image.alignment,
        diskSize: diskSize,
        diskGUID: GUID.derived(seed: seed, label: "\u{0}rosepack-disk"), partitions: requests)
    } catch {
      throw planFailure(error)
    }
  }

  // MARK: the raw disk

  func writeDisk(_ layout: DiskLayout, to path: String) throws -> AllocationMap {
    progress.update("writing the disk image")
    let image = try RawImageOutput.create(path: path, size: layout.diskSize)
    var map = try writeTables(layout, to: image.fd, path: image.temporaryPath)
    map.insert(try writeBlobs(layout, to: image.fd, path: image.temporaryPath))
    for (i, spec) in recipe.partitions.enumerated() {
      let part = layout.partitions[i]
      switch contents[i] {
      case .rosefs(let measured):
        // A fixed size is built straight into the disk. An automatic one that leaves at least a
        // segment free is packed again at the partition's size from the tree ingested for the
        // measurement (inputs are read once), so headroom and Grow= space are free space inside
        // the file system; otherwise the measured volume is copied in.
        let blockBytes = UInt64(RoseLayout.blockSize)
        let size = part.size / blockBytes * blockBytes
        let target = ImageFile(fd: image.fd, path: image.temporaryPath, baseOffset: part.offset)
        var report: BuildReport
        if let measured,
          size < measured.report.volumeBytes + UInt64(measured.report.blocksPerSegment) * blockBytes
        {
          progress.update("\(spec.label): copying the volume")
          try RawImageOutput.copyFile(
            measured.path, into: image.fd, imagePath: image.temporaryPath, offset: part.offset,
            capacity: part.size, label: spec.label)
          report = measured.report
        } else if let measured {
          progress.update("\(spec.label): packing at \(formatSize(size))")
          do {
            report = try measured.builder.finish(
              into: target, size: size, subvolumes: measured.subvolumes,
              defaultSubvolume: measured.defaultSubvolume)
          } catch {
            throw failure(of: spec, error)
          }
        } else {
          report = try buildVolume(spec, into: target, size: size).report
        }
        contents[i] = .rosefs(measured: nil)  // the measured tree and staging file are released
        reports[i] = report
        for range in report.usedRanges where range.count == 2 {
          let start = range[0] * blockBytes
          guard start < part.size else { continue }
          map.insert(
            offset: part.offset + start, length: min(range[1] * blockBytes, part.size - start))
        }
      case .raw(let source, let size):
        do {
          try RawImageOutput.copyFile(
            source, into: image.fd, imagePath: image.temporaryPath, offset: part.offset,
            capacity: part.size,
            label: spec.label)
        } catch DiskError.partitionDoesNotFit(_, let needed, let available) {
          throw doesNotFit(spec, needed: needed, has: available)
        }
        if size > 0 { map.insert(offset: part.offset, length: min(size, part.size)) }
      case .fileSystem(let content):
        try writeFileSystem(spec, content, part: part, into: image, map: &map)
      case .empty, .verity:
        break
      }
    }
    try image.commit()
    return map
  }
}
