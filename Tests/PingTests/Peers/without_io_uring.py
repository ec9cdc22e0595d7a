"""Runs a program under a seccomp filter that makes io_uring_setup, io_uring_enter and io_uring_register fail
with EPERM, as Docker's default seccomp profile (and many managed Kubernetes nodes) do.

Usage: python3 without_io_uring.py PROGRAM [ARGS...]
"""
import ctypes
import os
import struct
import sys

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
AUDIT_ARCH_X86_64 = 0xC000003E
RET_ALLOW = 0x7FFF0000
RET_EPERM = 0x00050000 | 1  # SECCOMP_RET_ERRNO | EPERM
IO_URING_SYSCALLS = (425, 426, 427)  # x86_64: io_uring_setup, io_uring_enter, io_uring_register


def statement(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


program = [
    statement(0x20, 0, 0, 4),                      # A = seccomp_data.arch
    statement(0x15, 1, 0, AUDIT_ARCH_X86_64),      # if A == x86_64 skip the next
    statement(0x06, 0, 0, RET_ALLOW),              # other architectures: allow (not filtered here)
    statement(0x20, 0, 0, 0),                      # A = seccomp_data.nr
]
for number in IO_URING_SYSCALLS:
    program += [statement(0x15, 0, 1, number), statement(0x06, 0, 0, RET_EPERM)]
program.append(statement(0x06, 0, 0, RET_ALLOW))

code = b"".join(program)
buffer = ctypes.create_string_buffer(code)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


libc = ctypes.CDLL(None, use_errno=True)
prog = SockFprog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
    sys.exit(f"prctl(NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")
if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
    sys.exit(f"prctl(SECCOMP): {os.strerror(ctypes.get_errno())}")
os.execv(sys.argv[1], sys.argv[1:])
