// The only place liburing's header is touched.
//
// liburing.h defines _GNU_SOURCE/_XOPEN_SOURCE before including glibc, which breaks Swift's Glibc module
// (fd_set loses its fields). So the system headers come first, here, and liburing.h after them.
#ifndef C_URING_H
#define C_URING_H

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/select.h>
#include <signal.h>
#include <time.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/un.h>
#include <netdb.h>
#include <unistd.h>
#include <errno.h>

#if __has_include(<liburing.h>)
#include <liburing.h>
#else
#error "liburing.h not found: install liburing-dev (apt-get install liburing-dev)"
#endif

// Ring setup flags newer than some headers: the loop probes them at run time, never assumes them.
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
// Swift doesn't import these macros; constants carry them.
static const unsigned CURing_SETUP_SINGLE_ISSUER = IORING_SETUP_SINGLE_ISSUER;
static const unsigned CURing_SETUP_DEFER_TASKRUN = IORING_SETUP_DEFER_TASKRUN;
static const unsigned CURing_CQE_F_MORE = IORING_CQE_F_MORE;
// SOCK_NONBLOCK | SOCK_CLOEXEC and EFD_* are enum values or macros that don't import cleanly.
static const int CURing_SOCK_STREAM_CLOEXEC = SOCK_STREAM | SOCK_CLOEXEC;
static const int CURing_EFD_CLOEXEC = EFD_CLOEXEC;

#endif
