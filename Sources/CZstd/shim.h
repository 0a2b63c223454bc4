
#include <zstd.h>
