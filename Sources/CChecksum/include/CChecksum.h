#ifndef CCHECKSUM_H
#define CCHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78). `state` is the running register:
   start with 0xFFFFFFFF, feed any number of pieces, finish with `state ^ 0xFFFFFFFF`.
   Uses SSE4.2 crc32 instructions when the CPU has them, slicing-by-8 otherwise. */
uint32_t rose_crc32c_update(uint32_t state, const void *data, size_t len);

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320) as GPT, zlib and PNG use it, same state convention. */
uint32_t rose_crc32_update(uint32_t state, const void *data, size_t len);

/* 1 when the SSE4.2 path is in use (reported by `inspect` and benchmarks). */
int rose_crc32c_hardware(void);

#endif
