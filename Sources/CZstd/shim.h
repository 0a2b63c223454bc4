
// ZSTD_getCParams (RoseDisk's ZstdOutput sizes a frame's parameters from the level's own): in
// libzstd's experimental section, exported by the shared library since 1.3.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
