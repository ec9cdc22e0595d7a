// The only place OpenSSL's headers are touched. Swift calls OpenSSL's functions directly; this header wraps
// only what Swift cannot import: macros over SSL_CTX_ctrl, SSL_ctrl and BIO_ctrl, and constants whose macros
// Swift doesn't evaluate (it takes a literal, a name or one operator). One line each, named after what it
// wraps with the module's prefix; the logic that uses them (ALPN, certificate names) is Swift.
#ifndef C_OPENSSL_H
#define C_OPENSSL_H
#if __has_include(<openssl/ssl.h>)
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#else
#error "openssl/ssl.h not found: install libssl-dev (apt-get install libssl-dev)"
#endif

// SSL_CTX_set_min_proto_version is a macro over SSL_CTX_ctrl.
static inline long COpenSSL_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}

// SSL_CTX_set_mode is a macro over SSL_CTX_ctrl.
static inline long COpenSSL_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

// SSL_set_tlsext_host_name is a macro over SSL_ctrl.
static inline long COpenSSL_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

// BIO_set_mem_eof_return is a macro over BIO_ctrl.
static inline long COpenSSL_BIO_set_mem_eof_return(BIO *bio, int value) {
    return BIO_set_mem_eof_return(bio, value);
}

// SSL_OP_NO_COMPRESSION is SSL_OP_BIT(17), a function-like macro.
static const uint64_t COpenSSL_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;

// SSL_OP_NO_RENEGOTIATION is SSL_OP_BIT(30), a function-like macro.
static const uint64_t COpenSSL_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;

// XN_FLAG_RFC2253 ORs five flags, one of them an OR of six.
static const unsigned long COpenSSL_XN_FLAG_RFC2253 = XN_FLAG_RFC2253;
#endif
