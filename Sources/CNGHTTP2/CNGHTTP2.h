// The only place nghttp2's header is touched.
#ifndef C_NGHTTP2_H
#define C_NGHTTP2_H
#if __has_include(<nghttp2/nghttp2.h>)
#include <nghttp2/nghttp2.h>
#else
#error "nghttp2/nghttp2.h not found: install libnghttp2-dev (apt-get install libnghttp2-dev)"
#endif
#endif
