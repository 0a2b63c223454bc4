// Linux calls and constants that Swift's Glibc module does not export: extended attributes of a
// path without following a final symlink or of an open descriptor, the directory walk's open/stat
// flags, and the SEEK_DATA/SEEK_HOLE whences (from the kernel's own
// header, so they are the kernel's values rather than numbers copied into Swift).
#ifndef ROSEPACK_CSYSTEM_SHIM_H
#define ROSEPACK_CSYSTEM_SHIM_H

#include <sys/types.h>
#include <sys/xattr.h>
#include <linux/fs.h>
#include <fcntl.h>

static inline ssize_t rose_llistxattr(const char *path, char *list, size_t size) {
  return llistxattr(path, list, size);
}

static inline ssize_t rose_lgetxattr(const char *path, const char *name, void *value, size_t size) {
  return lgetxattr(path, name, value, size);
}

static inline ssize_t rose_flistxattr(int fd, char *list, size_t size) {
  return flistxattr(fd, list, size);
}

static inline ssize_t rose_fgetxattr(int fd, const char *name, void *value, size_t size) {
  return fgetxattr(fd, name, value, size);
}

/* The directory walk's flags: Swift does not import these macros (they expand to other macros). */
static const int rose_o_directory = O_DIRECTORY;
static const int rose_at_symlink_nofollow = AT_SYMLINK_NOFOLLOW;

static const int rose_seek_data = SEEK_DATA;
static const int rose_seek_hole = SEEK_HOLE;

#endif
