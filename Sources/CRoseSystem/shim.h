// Linux calls and constants that Swift's Glibc module does not export: extended attributes of a
// path without following a final symlink, and the SEEK_DATA/SEEK_HOLE whences (from the kernel's own
// header, so they are the kernel's values rather than numbers copied into Swift).
#ifndef ROSEPACK_CSYSTEM_SHIM_H
#define ROSEPACK_CSYSTEM_SHIM_H

#include <sys/types.h>
#include <sys/xattr.h>
#include <linux/fs.h>

static inline ssize_t rose_llistxattr(const char *path, char *list, size_t size) {
  return llistxattr(path, list, size);
}

static inline ssize_t rose_lgetxattr(const char *path, const char *name, void *value, size_t size) {
  return lgetxattr(path, name, value, size);
}

static const int rose_seek_data = SEEK_DATA;
static const int rose_seek_hole = SEEK_HOLE;

#endif
