#include <archive.h>
#include <archive_entry.h>
/* AE_IF* are casts through a macro that Swift does not import: define them again. */
static const unsigned int CA_IFREG = AE_IFREG, CA_IFLNK = AE_IFLNK, CA_IFDIR = AE_IFDIR,
  CA_IFCHR = AE_IFCHR, CA_IFBLK = AE_IFBLK, CA_IFIFO = AE_IFIFO, CA_IFSOCK = AE_IFSOCK,
  CA_IFMT = AE_IFMT;
/* archive_set_error is variadic, which Swift cannot call: a fixed-argument wrapper. */
static inline void ca_set_error(struct archive *a, int err, const char *message) {
  archive_set_error(a, err, "%s", message);
}
