// The only place liburing's header is touched; nothing but liburing lives here (general Linux headers are
// in CCourierLinux).
//
// liburing.h defines _GNU_SOURCE/_XOPEN_SOURCE before including glibc, which breaks Swift's Glibc module
// (fd_set loses its fields). So the system headers it includes come first, here, and liburing.h after them.
#ifndef C_URING_H
#define C_URING_H

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/select.h>
#include <signal.h>
#include <time.h>
#include <fcntl.h>
#include <sched.h>

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
// The ring's setup flags: macros (with the fallbacks above), which Swift doesn't import.
static const unsigned CURing_SETUP_SINGLE_ISSUER = IORING_SETUP_SINGLE_ISSUER;
static const unsigned CURing_SETUP_DEFER_TASKRUN = IORING_SETUP_DEFER_TASKRUN;
// "More completions follow" on a multishot operation's CQE: a macro Swift doesn't import.
static const unsigned CURing_CQE_F_MORE = IORING_CQE_F_MORE;

#endif
