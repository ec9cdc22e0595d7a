// The Linux headers CourierHTTP2 needs beyond Swift's Glibc module, and constants for the macros and
// enum combinations Swift can't import. No logic: every symbol here is a prefixed name for a C one.
#ifndef C_COURIER_LINUX_H
#define C_COURIER_LINUX_H

#include <sys/socket.h>
// Not in Swift's Glibc module: epoll (the fallback backend), eventfd (cross-thread wake-ups), TCP options.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
// mallopt(3) (MallocTuning) and mallinfo2(3), not in Swift's Glibc module.
#include <malloc.h>

// socket(2)'s type argument: SOCK_STREAM and SOCK_CLOEXEC import as values of an enum type, not an int.
static const int CCourierLinux_SOCK_STREAM_CLOEXEC = SOCK_STREAM | SOCK_CLOEXEC;
// eventfd(2)'s flags: EFD_CLOEXEC is a macro over an anonymous enum that Swift doesn't import.
static const int CCourierLinux_EFD_CLOEXEC = EFD_CLOEXEC;
// mallopt(3)'s parameters, prefixed like the rest.
static const int CCourierLinux_M_MMAP_THRESHOLD = M_MMAP_THRESHOLD;
static const int CCourierLinux_M_TRIM_THRESHOLD = M_TRIM_THRESHOLD;

#endif
