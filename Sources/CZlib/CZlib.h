// The only place zlib's header is touched.
#ifndef C_ZLIB_H
#define C_ZLIB_H
#include <zlib.h>

// deflateInit2/inflateInit2 are macros that pass the version and struct size; Swift can't call macros.
static inline int CZlib_deflateInit2(z_streamp stream, int level, int windowBits) {
    return deflateInit2(stream, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY);
}
static inline int CZlib_inflateInit2(z_streamp stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}
#endif
