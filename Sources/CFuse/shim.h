// libfuse 3 (Debian: libfuse3-dev). Low-level API version 3.1. _FILE_OFFSET_BITS must not be defined
// here: it makes `statvfs` differ between modules (swift-notes.md section 5); 64-bit needs none.
#define FUSE_USE_VERSION 31
#include <fuse3/fuse.h>
#include <fuse3/fuse_lowlevel.h>
#include <sys/xattr.h>
