/* The cold-start harness's floor: a trivial HTTP/2 responder with canned gRPC bytes (Benchmarks/ColdStart).
 *
 *   cc -O2 -o /tmp/floor-responder Benchmarks/ColdStart/floor_responder.c
 *   PORT=50051 /tmp/floor-responder
 *
 * Listens on 127.0.0.1:$PORT, serves one connection at a time, checks the client preface, acks the client's
 * SETTINGS and PINGs, and answers every stream that sent HEADERS, once the client has ended it, with
 * HEADERS (:status 200, content-type application/grpc), DATA (one length-prefixed message 08 01, a
 * HealthCheckResponse with status SERVING) and trailers (grpc-status 0, END_STREAM). It never looks at the
 * header block (no HPACK decoding), so any method gets the same answer. No TLS, no flow control (the answer
 * is far below the default windows), no CONTINUATION of the response. Everything it does before listen() is
 * what any server must do, so exec -> first answer here is what the harness itself costs.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FRAME_DATA 0x0
#define FRAME_HEADERS 0x1
#define FRAME_SETTINGS 0x4
#define FRAME_PING 0x6
#define FRAME_GOAWAY 0x7
#define FRAME_CONTINUATION 0x9
#define FLAG_END_STREAM 0x1
#define FLAG_ACK 0x1
#define FLAG_END_HEADERS 0x4

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"; /* 24 bytes */

/* HPACK, no Huffman, nothing added to the dynamic table. */
static const unsigned char response_headers[] = {
    0x88,                                    /* :status 200 (static index 8) */
    0x0f, 0x10, 16,                          /* content-type (static 31), literal without indexing */
    'a', 'p', 'p', 'l', 'i', 'c', 'a', 't', 'i', 'o', 'n', '/', 'g', 'r', 'p', 'c',
};
static const unsigned char response_message[] = {0, 0, 0, 0, 2, 0x08, 0x01}; /* uncompressed, 2 bytes */
static const unsigned char response_trailers[] = {
    0x00, 11, 'g', 'r', 'p', 'c', '-', 's', 't', 'a', 't', 'u', 's', 1, '0', /* new name, no indexing */
};

#define MAX_STREAMS 64
#define BUFFER_SIZE (1 << 17) /* > the client's largest frame (16 KiB default max frame size) */

struct output {
    unsigned char bytes[4096];
    size_t length;
};

static void frame(struct output *out, int type, int flags, uint32_t stream, const void *payload, size_t length) {
    if (out->length + 9 + length > sizeof out->bytes) return; /* cannot happen with the canned frames */
    unsigned char *p = out->bytes + out->length;
    p[0] = (unsigned char)(length >> 16); p[1] = (unsigned char)(length >> 8); p[2] = (unsigned char)length;
    p[3] = (unsigned char)type; p[4] = (unsigned char)flags;
    p[5] = (unsigned char)((stream >> 24) & 0x7f); p[6] = (unsigned char)(stream >> 16);
    p[7] = (unsigned char)(stream >> 8); p[8] = (unsigned char)stream;
    if (length) memcpy(p + 9, payload, length);
    out->length += 9 + length;
}

static int write_all(int fd, const unsigned char *bytes, size_t length) {
    while (length) {
        ssize_t n = write(fd, bytes, length);
        if (n <= 0) return -1;
        bytes += n;
        length -= (size_t)n;
    }
    return 0;
}

static void answer(struct output *out, uint32_t stream) {
    frame(out, FRAME_HEADERS, FLAG_END_HEADERS, stream, response_headers, sizeof response_headers);
    frame(out, FRAME_DATA, 0, stream, response_message, sizeof response_message);
    frame(out, FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, stream, response_trailers, sizeof response_trailers);
}

/* Streams that sent HEADERS and have not ended yet. */
struct streams {
    uint32_t open[MAX_STREAMS];
    int count;
};

static int find(struct streams *s, uint32_t id) {
    for (int i = 0; i < s->count; i++) if (s->open[i] == id) return i;
    return -1;
}

static void end_stream(struct streams *s, struct output *out, uint32_t id) {
    int i = find(s, id);
    if (i < 0) return;
    s->open[i] = s->open[--s->count];
    answer(out, id);
}

static void serve(int fd) {
    static unsigned char buffer[BUFFER_SIZE];
    size_t used = 0;
    int preface_seen = 0;
    struct streams streams = {.count = 0};
    uint32_t continuing = 0; /* a stream whose HEADERS lacked END_HEADERS */
    int continuing_ends = 0;

    struct output out = {.length = 0};
    frame(&out, FRAME_SETTINGS, 0, 0, NULL, 0); /* server preface: empty SETTINGS */
    if (write_all(fd, out.bytes, out.length) < 0) return;

    for (;;) {
        ssize_t n = read(fd, buffer + used, sizeof buffer - used);
        if (n <= 0) return;
        used += (size_t)n;
        size_t at = 0;
        out.length = 0;
        if (!preface_seen) {
            if (used < 24) continue;
            if (memcmp(buffer, preface, 24) != 0) return;
            preface_seen = 1;
            at = 24;
        }
        while (used - at >= 9) {
            const unsigned char *h = buffer + at;
            size_t length = ((size_t)h[0] << 16) | ((size_t)h[1] << 8) | h[2];
            int type = h[3], flags = h[4];
            uint32_t stream = ((uint32_t)(h[5] & 0x7f) << 24) | ((uint32_t)h[6] << 16) | ((uint32_t)h[7] << 8) | h[8];
            if (9 + length > sizeof buffer) return; /* larger than we allow: give up on this connection */
            if (used - at < 9 + length) break;
            const unsigned char *payload = h + 9;
            switch (type) {
            case FRAME_SETTINGS:
                if (!(flags & FLAG_ACK)) frame(&out, FRAME_SETTINGS, FLAG_ACK, 0, NULL, 0);
                break;
            case FRAME_PING:
                if (!(flags & FLAG_ACK) && length == 8) frame(&out, FRAME_PING, FLAG_ACK, 0, payload, 8);
                break;
            case FRAME_HEADERS:
                if (stream == 0) return;
                if (find(&streams, stream) < 0) {
                    if (streams.count == MAX_STREAMS) return;
                    streams.open[streams.count++] = stream;
                    if (!(flags & FLAG_END_HEADERS)) { continuing = stream; continuing_ends = flags & FLAG_END_STREAM; }
                    else if (flags & FLAG_END_STREAM) end_stream(&streams, &out, stream);
                } else if (flags & FLAG_END_STREAM) {
                    end_stream(&streams, &out, stream); /* client trailers */
                }
                break;
            case FRAME_CONTINUATION:
                if (stream == continuing && (flags & FLAG_END_HEADERS)) {
                    continuing = 0;
                    if (continuing_ends) end_stream(&streams, &out, stream);
                }
                break;
            case FRAME_DATA:
                if (flags & FLAG_END_STREAM) end_stream(&streams, &out, stream);
                break;
            case FRAME_GOAWAY:
                if (out.length) write_all(fd, out.bytes, out.length);
                return;
            default: /* WINDOW_UPDATE, PRIORITY, RST_STREAM, unknown: nothing to do */
                break;
            }
            at += 9 + length;
        }
        memmove(buffer, buffer + at, used - at);
        used -= at;
        if (out.length && write_all(fd, out.bytes, out.length) < 0) return;
    }
}

int main(void) {
    const char *port = getenv("PORT");
    int number = port ? atoi(port) : 0;
    if (number <= 0 || number > 65535) {
        fprintf(stderr, "floor-responder: set PORT\n");
        return 2;
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)number)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 128) < 0) {
        perror("floor-responder");
        return 1;
    }
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        serve(fd);
        close(fd);
    }
}
