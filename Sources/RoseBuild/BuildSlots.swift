import Foundation
import RoseFS
import RoseIngest
import RoseRecipe
import RoseSizes

/// Fills the subvolume trees of one `Format=rosefs` partition from its content layers.
///
/// The A/B rule (what `Slot=` means when layers of different slots are interleaved):
///
/// 1. Layers are read in recipe order. Every layer up to the first *per-slot step* is applied
///    once, to slot A. A per-slot step is a `Slot=a` or `Slot=b` layer, or a `Template=` whose
///    output differs between the slots.
/// 2. At that point slot B is made: a snapshot of A (`SlotB=snapshot`, sharing every file).
/// 3. Every later layer is applied, in order, to the slots it names: `Slot=a` to A, `Slot=b` to
///    B, `Slot=both` to A and then to B. A `Slot=both` file, inline text, symlink, identical
///    template or host directory is created once and linked into both trees (stored once);
///    a `Slot=both` tarball after the split is unpacked into each slot (stored twice), so put
///    shared tarballs before the first per-slot layer.
/// 4. `Ownership=` after the split changes a file shared by both slots only in the slot it
///    targets: the inode is copied for that slot first (same inode number, same data blocks).
/// 5. `SlotB=empty`: slot B starts as an empty root and receives only `Slot=b` layers;
///    `Slot=both` layers go to A alone.
///
/// Host directories (`Directory=`, `CopyFiles=`) map the invoking user and group to root
/// (an unprivileged build cannot own files as root); every timestamp is clamped to
/// SOURCE_DATE_EPOCH at the end, so the image does not depend on checkout or access times.
final class BuildSlotFiller {
  let recipe: Recipe
  let spec: PartitionSpec
  let builder: ImageBuilder
  let progress: any BuildProgress
  private var renderCache: [Int: (a: String, b: String)] = [:]
  /// libarchive's warnings about the tarballs read, in the order met.
  private(set) var warnings: [ArchiveWarning] = []

  init(recipe: Recipe, spec: PartitionSpec, builder: ImageBuilder, progress: any BuildProgress) {
    self.recipe = recipe
    self.spec = spec
    self.builder = builder
    self.progress = progress
  }

  var epoch: Timestamp { Timestamp(seconds: recipe.image.sourceDateEpoch) }

  /// Builds the trees and returns the subvolumes in slot order.
  func fill() throws -> [Subvolume] {
    let a = TreeEditor(builder: builder)
    let names = spec.subvolumes.isEmpty ? ["a"] : spec.subvolumes
    guard spec.isAB, names.count == 2 else {
      for (i, slotted) in spec.layers.enumerated() {
        try apply(index: i, slotted.layer, to: a, slot: .a, other: nil)
      }
      clampTimes(a.root)
      return [Subvolume(name: names[0], root: a.root)]
    }
    if spec.slotB == .empty {
      let b = TreeEditor(
        builder: builder,
        root: builder.makeInode(kind: .directory, permissions: 0o755, mtime: epoch))
      for (i, slotted) in spec.layers.enumerated() {
        if slotted.slot == .b {
          try apply(index: i, slotted.layer, to: b, slot: .b, other: nil)
        } else {
          try apply(index: i, slotted.layer, to: a, slot: .a, other: nil)
        }
      }
      clampTimes(a.root)
      clampTimes(b.root)
      return [Subvolume(name: names[0], root: a.root), Subvolume(name: names[1], root: b.root)]
    }
    var split = spec.layers.count
    for (i, slotted) in spec.layers.enumerated() {
      if slotted.slot != .both {
        split = i
        break
      }
      if case .template = slotted.layer, let r = try rendered(i, slotted.layer), r.a != r.b {
        split = i
        break
      }
    }
    for i in 0..<split {
      try apply(index: i, spec.layers[i].layer, to: a, slot: .a, other: nil)
    }
    let b = TreeEditor(builder: builder, root: builder.snapshot(a.root))
    for i in split..<spec.layers.count {
      let slotted = spec.layers[i]
      switch slotted.slot {
      case .a: try apply(index: i, slotted.layer, to: a, slot: .a, other: b)
      case .b: try apply(index: i, slotted.layer, to: b, slot: .b, other: a)
      case .both: try applyBoth(index: i, slotted.layer, a: a, b: b)
      }
    }
    clampTimes(a.root)
    clampTimes(b.root)
    return [Subvolume(name: names[0], root: a.root), Subvolume(name: names[1], root: b.root)]
  }

  // MARK: layers

  /// Renders a template for both slots once.
  func rendered(_ index: Int, _ layer: ContentLayer) throws -> (a: String, b: String)? {
    guard case .template(let source, _, let at) = layer else { return nil }
    if let cached = renderCache[index] { return cached }
    let renderer = TemplateRenderer()
    do {
      let a = try renderer.render(
        templatePath: source,
        variables: TemplateVariables.make(recipe: recipe, partition: spec, slot: .a))
      let b =
        spec.isAB
        ? try renderer.render(
          templatePath: source,
          variables: TemplateVariables.make(recipe: recipe, partition: spec, slot: .b)) : a
      renderCache[index] = (a, b)
      return (a, b)
    } catch let error as RecipeError {
      throw BuildFailure.recipe([error])
    } catch {
      throw BuildFailure.layer(label: spec.label, at: at, cause: PartitionFailure(error))
    }
  }

  /// A `Slot=both` layer after the split: once for both trees where the result can be shared.
  func applyBoth(index: Int, _ layer: ContentLayer, a: TreeEditor, b: TreeEditor) throws {
    let at = layer.position
    try located(at) {
      switch layer {
      case .file, .inline, .symlink:
        let inode = try create(layer, in: a, slot: .a)
        try b.link(inode, at: Array(destination(layer).utf8), input: at.description)
      case .template(_, let destination, _):
        guard let r = try rendered(index, layer) else { return }
        let inode = try a.addInline(
          Array(r.a.utf8), at: Array(destination.utf8), input: at.description)
        if r.a == r.b {
          try b.link(inode, at: Array(destination.utf8), input: at.description)
        } else {
          try b.addInline(Array(r.b.utf8), at: Array(destination.utf8), input: at.description)
        }
      case .ownership(_, let overrides, _):
        // The same values in both slots: shared inodes are changed once, in place.
        try applyOwnership(overrides, to: a, other: nil)
        try applyOwnership(overrides, to: b, other: nil)
      case .directory(let source, let destination, _) where isDirectory(source):
        let scratch = try hostDirectory(source)
        try overlay(scratch, onto: a, at: destination, input: source)
        try overlay(scratch, onto: b, at: destination, input: source)
      default:
        try apply(index: index, layer, to: a, slot: .a, other: b)
        try apply(index: index, layer, to: b, slot: .b, other: a)
      }
    }
  }

  /// Applies one layer to one tree; `other` is the other slot's tree when it may share inodes.
  func apply(
    index: Int, _ layer: ContentLayer, to editor: TreeEditor, slot: SlotSelector, other: TreeEditor?
  )
    throws
  {
    let at = layer.position
    try located(at) {
      switch layer {
      case .tarball(let source, let destination, _):
        let label = spec.label
        let name = (source as NSString).lastPathComponent
        warnings += try editor.ingest(source, at: imagePath(destination)) { [progress] p in
          var s =
            "\(label): \(name): \(p.entries) entries, \(formatSize(UInt64(max(p.bytesRead, 0))))"
          if let t = p.totalBytes, t > 0 {
            s += " (\(Int(Double(p.bytesRead) * 100 / Double(t)))%)"
          }
          progress.update(s)
        }
      case .directory(let source, let destination, _):
        if isDirectory(source) {
          try overlay(try hostDirectory(source), onto: editor, at: destination, input: source)
        } else {
          let target =
            destination == "/" ? "/" + (source as NSString).lastPathComponent : destination
          let inode = try editor.addFile(
            hostPath: source, at: Array(target.utf8), permissions: try hostPermissions(source))
          inode.mtime = epoch
        }
      case .file, .inline, .symlink:
        _ = try create(layer, in: editor, slot: slot)
      case .template(_, let destination, _):
        guard let r = try rendered(index, layer) else { return }
        try editor.addInline(
          Array((slot == .b ? r.b : r.a).utf8), at: Array(destination.utf8), input: at.description)
      case .makeDirectories(let paths, _):
        for path in paths { try editor.makeDirectories(Array(path.utf8), input: at.description) }
      case .remove(let glob, _):
        editor.remove(glob: glob)
      case .ownership(_, let overrides, _):
        try applyOwnership(overrides, to: editor, other: other)
      }
    }
  }

  /// Creates the inode of a File=, Inline= or Symlink= layer.
  @discardableResult
  func create(_ layer: ContentLayer, in editor: TreeEditor, slot: SlotSelector) throws -> Inode {
    let input = layer.position.description
    switch layer {
    case .file(let source, let destination, let mode, _):
      return try editor.addFile(
        hostPath: source, at: Array(destination.utf8),
        permissions: try mode ?? hostPermissions(source))
    case .inline(let destination, let text, _):
      return try editor.addInline(Array(text.utf8), at: Array(destination.utf8), input: input)
    case .symlink(let path, let target, _):
      return try editor.addSymlink(at: Array(path.utf8), target: Array(target.utf8), input: input)
    default:
      throw BuildFailure.internalError("\(layer.position): not a single-file layer")
    }
  }

  func destination(_ layer: ContentLayer) -> String {
    switch layer {
    case .file(_, let d, _, _), .inline(let d, _, _), .template(_, let d, _): return d
    case .symlink(let p, _, _): return p
    default: return "/"
    }
  }

  func imagePath(_ destination: String) -> [UInt8] {
    destination == "/" ? [] : Array(destination.utf8)
  }

  func hostPermissions(_ path: String) throws -> UInt16 {
    var st = stat()
    guard stat(path, &st) == 0 else {
      throw IngestError.io(path: path, operation: "stat", errno: errno)
    }
    return UInt16(truncatingIfNeeded: st.st_mode & 0o7777)
  }

  /// Prefixes every error with the recipe line of the layer.
  func located(_ at: SourcePosition, _ body: () throws -> Void) throws {
    do {
      try body()
    } catch let error as BuildFailure {
      throw error
    } catch let error as RecipeErrors {
      throw BuildFailure.recipe(error.errors)
    } catch {
      throw BuildFailure.layer(label: spec.label, at: at, cause: PartitionFailure(error))
    }
  }

  // MARK: host directories

  /// Reads a host directory into a scratch tree of this builder, owned by root where the host
  /// files belong to the invoking user.
  func hostDirectory(_ source: String) throws -> Inode {
    let scratch = TreeEditor(builder: builder)
    let label = spec.label
    let name = (source as NSString).lastPathComponent
    try DirectoryReader(
      path: source,
      progress: { [progress] p in
        progress.update(
          "\(label): \(name)/: \(p.entries) entries, \(formatSize(UInt64(max(p.bytesRead, 0))))")
      }
    ).read(into: scratch)
    let uid = getuid()
    let gid = getgid()
    func own(_ inode: Inode) {
      if inode.uid == uid { inode.uid = 0 }
      if inode.gid == gid { inode.gid = 0 }
    }
    own(scratch.root)
    scratch.walk { _, inode in own(inode) }
    return scratch.root
  }

  /// Puts a scratch tree at `destination` with tar semantics: directories merge (taking the
  /// scratch metadata), everything else replaces what was there and is shared, not copied.
  func overlay(_ scratch: Inode, onto editor: TreeEditor, at destination: String, input: String)
    throws
  {
    func meta(_ i: Inode) -> EntryMetadata {
      EntryMetadata(
        permissions: i.permissions, uid: i.uid, gid: i.gid, mtime: i.mtime, atime: i.atime,
        ctime: i.ctime, xattrs: i.xattrs)
    }
    func copy(_ dir: Inode, _ path: [UInt8]) throws {
      for name in dir.children.keys.sorted() {
        guard let child = dir.children[name] else { continue }
        let childPath = path.isEmpty ? name.bytes : path + [UInt8(ascii: "/")] + name.bytes
        if child.kind == .directory {
          try editor.directory(at: childPath, meta(child), input: input)
          try copy(child, childPath)
        } else {
          try editor.link(child, at: childPath, input: input)
        }
      }
    }
    let top = imagePath(destination)
    try editor.directory(at: top, meta(scratch), input: input)
    try copy(scratch, top)
  }

  // MARK: ownership

  /// fs_config overrides. A file shared with `other` (the other slot) gets its own copy in this
  /// tree first: a new inode with the same metadata and a copy of the data (every hard link of it
  /// in this tree moves to the copy), so the change stays in this slot.
  func applyOwnership(_ overrides: [OwnershipOverride], to editor: TreeEditor, other: TreeEditor?)
    throws
  {
    var shared = Set<ObjectIdentifier>()
    if let other {
      other.walk { _, inode in
        if inode.kind != .directory { shared.insert(ObjectIdentifier(inode)) }
      }
    }
    var names: [ObjectIdentifier: [[UInt8]]] = [:]
    if !shared.isEmpty {
      editor.walk { path, inode in
        if shared.contains(ObjectIdentifier(inode)) {
          names[ObjectIdentifier(inode), default: []].append(path)
        }
      }
    }
    for o in overrides {
      guard var inode = editor.lookup(o.path) else { continue }
      if shared.contains(ObjectIdentifier(inode)), let paths = names[ObjectIdentifier(inode)],
        let first = paths.first
      {
        inode = try privateCopy(of: inode, at: first, in: editor)
        for path in paths.dropFirst() {
          try editor.link(inode, at: path, input: o.position.description)
        }
      }
      inode.uid = o.uid
      inode.gid = o.gid
      inode.permissions = o.mode & 0o7777
      Capabilities.apply(o.capabilities, to: inode)
    }
  }

  /// A new inode at `path` with the metadata and a copy of the content of `inode`. A regular file's
  /// data streams block by block from what was already written into its new blocks (memory: one
  /// block, not the file); holes stay holes.
  func privateCopy(of inode: Inode, at path: [UInt8], in editor: TreeEditor) throws -> Inode {
    let meta = EntryMetadata(
      permissions: inode.permissions, uid: inode.uid, gid: inode.gid, mtime: inode.mtime,
      atime: inode.atime,
      ctime: inode.ctime, xattrs: inode.xattrs)
    let input = "fs_config"
    switch inode.kind {
    case .regular:
      let source = inode.content
      return try editor.file(at: path, size: source.size, meta, input: input) { writer in
        try builder.data.readContent(source) { chunk, offset in
          try writer.write(chunk, at: offset)
        }
      }
    case .symlink:
      // A target is at most a few KiB (PATH_MAX): read whole.
      var target = [UInt8](repeating: 0, count: Int(inode.content.size))
      try builder.data.readContent(inode.content) { chunk, offset in
        let start = Int(offset)
        let end = min(target.count, start + chunk.count)
        if start < end { target.replaceSubrange(start..<end, with: chunk[0..<(end - start)]) }
      }
      return try editor.symlink(at: path, target: target, meta, input: input)
    default:
      return try editor.node(
        at: path, kind: inode.kind, meta, rdevMajor: inode.rdevMajor, rdevMinor: inode.rdevMinor,
        input: input)
    }
  }

  /// Every timestamp at most SOURCE_DATE_EPOCH.
  func clampTimes(_ root: Inode) {
    guard recipe.image.clampsTimes else { return }
    let limit = epoch
    var seen = Set<ObjectIdentifier>()
    func clamp(_ inode: Inode) {
      guard seen.insert(ObjectIdentifier(inode)).inserted else { return }
      if inode.mtime > limit { inode.mtime = limit }
      if inode.atime > limit { inode.atime = limit }
      if inode.ctime > limit { inode.ctime = limit }
      for (_, child) in inode.children { clamp(child) }
    }
    clamp(root)
  }
}
