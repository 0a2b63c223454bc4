// SHA-256 from libnettle, which libarchive already loads (it hashes with nettle), so the process maps
// no other crypto library. libcrypto's SHA-256 was as fast (both use the SHA-NI instructions here),
// but loading it touched 1.4 MiB of its pages (docs/MEMORY.md, "SHA-256 from nettle").
#include <nettle/sha2.h>
