// SHA-256 through libcrypto's low-level interface (SHA256_Init/Update/Final): the same assembly as
// EVP, without EVP's provider and configuration set-up, which made a convert touch about 2 MiB more
// of libcrypto (docs/MEMORY.md, "SHA-256 without EVP"). OpenSSL 3 marks these calls deprecated; the
// define keeps the import free of warnings.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
