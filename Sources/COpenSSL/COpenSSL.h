// The only place OpenSSL's headers are touched. OpenSSL exposes much of its API as macros, which Swift
// can't call; the static inline functions below wrap the ones Courier uses.
#ifndef C_OPENSSL_H
#define C_OPENSSL_H
#if __has_include(<openssl/ssl.h>)
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>
#else
#error "openssl/ssl.h not found: install libssl-dev (apt-get install libssl-dev)"
#endif

static inline int courier_ssl_ctx_set_min_tls12(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}

static inline long courier_ssl_ctx_set_options(SSL_CTX *ctx) {
    // No renegotiation, no compression (CRIME), no session tickets across restarts needed.
    return (long)SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
}

static inline void courier_ssl_ctx_release_buffers(SSL_CTX *ctx) {
    // Idle connections give their record buffers back (an idle connection should cost little).
    (void)SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

static inline int courier_ssl_set_sni(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/// ALPN selection for servers: "h2" or a fatal no_application_protocol alert.
static inline int courier_alpn_select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                         const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen) break;
        if (len == 2 && in[i + 1] == 'h' && in[i + 2] == '2') {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static inline void courier_ssl_ctx_select_h2(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, courier_alpn_select_h2, NULL);
}

static inline int courier_ssl_ctx_offer_h2(SSL_CTX *ctx) {
    static const unsigned char protos[] = { 2, 'h', '2' };
    return SSL_CTX_set_alpn_protos(ctx, protos, sizeof(protos));
}

/// Whether the connection agreed on "h2".
static inline int courier_ssl_negotiated_h2(const SSL *ssl) {
    const unsigned char *data = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &data, &len);
    return len == 2 && data[0] == 'h' && data[1] == '2';
}

static inline long courier_bio_pending(BIO *bio) {
    return (long)BIO_ctrl_pending(bio);
}

static inline void courier_bio_set_mem_eof_return(BIO *bio, int value) {
    (void)BIO_set_mem_eof_return(bio, value);
}

/// The certificate's subject, RFC 2253 style, into buf (NUL-terminated); returns the length or -1.
static inline int courier_x509_subject(X509 *cert, char *buf, int size) {
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) return -1;
    X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    int n = BIO_read(bio, buf, size - 1);
    BIO_free(bio);
    if (n < 0) n = 0;
    buf[n] = 0;
    return n;
}

/// The number of subjectAltName entries of a kind (GEN_DNS, GEN_URI, GEN_IPADD) and, with buf, the
/// index-th entry's bytes (an IP address is its raw 4 or 16 bytes).
static inline int courier_x509_san(X509 *cert, int type, int index, unsigned char *buf, int size) {
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!names) return index < 0 ? 0 : -1;
    int count = 0, result = -1;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != type) continue;
        if (count == index) {
            const ASN1_STRING *value = type == GEN_DNS ? name->d.dNSName
                : type == GEN_URI ? name->d.uniformResourceIdentifier : name->d.iPAddress;
            int len = ASN1_STRING_length(value);
            if (len > size) len = size;
            memcpy(buf, ASN1_STRING_get0_data(value), (size_t)len);
            result = len;
        }
        count++;
    }
    GENERAL_NAMES_free(names);
    return index < 0 ? count : result;
}
#endif
