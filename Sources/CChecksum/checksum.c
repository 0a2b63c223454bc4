#include "CChecksum.h"
#include <string.h>

static uint32_t t32c[8][256];
static uint32_t t32[8][256];
static int tables_ready;

static void build(uint32_t t[8][256], uint32_t poly) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
}

static void ensure_tables(void) {
  /* Idempotent: racing threads compute identical tables. */
  if (__atomic_load_n(&tables_ready, __ATOMIC_ACQUIRE)) return;
  build(t32c, 0x82F63B78u);
  build(t32, 0xEDB88320u);
  __atomic_store_n(&tables_ready, 1, __ATOMIC_RELEASE);
}

static uint32_t slice8(uint32_t t[8][256], uint32_t crc, const unsigned char *p, size_t n) {
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    w ^= crc;
    crc = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^ t[4][(w >> 24) & 0xff] ^
          t[3][(w >> 32) & 0xff] ^ t[2][(w >> 40) & 0xff] ^ t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
  return crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p, size_t n) {
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = (uint32_t)c;
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}
static int hw_state = -1;
static int have_hw(void) {
  if (hw_state < 0) hw_state = __builtin_cpu_supports("sse4.2") ? 1 : 0;
  return hw_state;
}
#else
static int have_hw(void) { return 0; }
#endif

uint32_t rose_crc32c_update(uint32_t state, const void *data, size_t len) {
#if defined(__x86_64__)
  if (have_hw()) return crc32c_hw(state, (const unsigned char *)data, len);
#endif
  ensure_tables();
  return slice8(t32c, state, (const unsigned char *)data, len);
}

uint32_t rose_crc32_update(uint32_t state, const void *data, size_t len) {
  ensure_tables();
  return slice8(t32, state, (const unsigned char *)data, len);
}

int rose_crc32c_hardware(void) { return have_hw(); }
