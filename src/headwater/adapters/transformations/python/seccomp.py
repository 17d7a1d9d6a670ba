"""The seccomp filter installed in every Python worker before user code runs.

User code can get ``ctypes`` back (e.g. through ``gc.get_objects()``) and with it
raw system calls.  The filter refuses, with ``EPERM``, the calls that reach beyond
the worker: sockets, tracing and other processes' memory, mounts and namespaces,
signals to any process but the worker itself, kernel keys, modules, BPF, io_uring
(which could make the other calls behind the filter's back) and the like.
Everything the interpreter needs for computing, reading its pipe and writing its
reply stays allowed: this is a deny list over the calls that can do harm, not an
allow list of what CPython happens to use today.

The program is classic BPF, built here (the server's side) for the worker's pid
and architecture and sent to the worker in its configuration; the worker only
hands it to ``prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)`` (after
``PR_SET_NO_NEW_PRIVS``).  We write the BPF ourselves rather than use libseccomp:
its Python bindings are not on PyPI (``pyseccomp`` wraps the system library
through ctypes and finds it by running ``ldconfig``), and the worker imports only
the standard library; the whole filter is this page.  Calls from another ABI than
the worker's own (x86's 32-bit ``int 0x80`` and x32) are refused as a whole, so the
numbers below cannot be dodged.
"""

from __future__ import annotations

import struct

#: System calls refused to user code (with EPERM).
DENIED = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "ptrace",
    "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_open", "pidfd_getfd",
    "pidfd_send_signal", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct",
    "syslog", "quotactl", "settimeofday", "clock_settime", "adjtimex", "clock_adjtime",
    "sethostname", "setdomainname", "iopl", "ioperm", "fanotify_init", "open_by_handle_at",
    "name_to_handle_at",
)  # fmt: skip
#: Signal-sending calls allowed only when their first argument is the worker's pid.
SELF_ONLY = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")

# Syscall numbers (Linux uapi headers: asm/unistd_64.h, asm-generic/unistd.h).
_X86_64 = {
    "socket": 41, "socketpair": 53, "connect": 42, "bind": 49, "listen": 50, "accept": 43,
    "accept4": 288, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
    "kcmp": 312, "pidfd_open": 434, "pidfd_getfd": 438, "pidfd_send_signal": 424,
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272,
    "setns": 308, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "move_mount": 429, "open_tree": 428, "mount_setattr": 442, "bpf": 321,
    "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 250, "add_key": 248,
    "request_key": 249, "init_module": 175, "finit_module": 313, "delete_module": 176,
    "kexec_load": 246, "kexec_file_load": 320, "reboot": 169, "swapon": 167,
    "swapoff": 168, "acct": 163, "syslog": 103, "quotactl": 179, "settimeofday": 164,
    "clock_settime": 227, "adjtimex": 159, "clock_adjtime": 305, "sethostname": 170,
    "setdomainname": 171, "iopl": 172, "ioperm": 173, "fanotify_init": 300,
    "open_by_handle_at": 304, "name_to_handle_at": 303,
    "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
}  # fmt: skip
_AARCH64 = {
    "socket": 198, "socketpair": 199, "connect": 203, "bind": 200, "listen": 201,
    "accept": 202, "accept4": 242, "ptrace": 117, "process_vm_readv": 270,
    "process_vm_writev": 271, "kcmp": 272, "pidfd_open": 434, "pidfd_getfd": 438,
    "pidfd_send_signal": 424, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
    "unshare": 97, "setns": 268, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442, "bpf": 280,
    "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 219, "add_key": 217,
    "request_key": 218, "init_module": 105, "finit_module": 273, "delete_module": 106,
    "kexec_load": 104, "kexec_file_load": 294, "reboot": 142, "swapon": 224,
    "swapoff": 225, "acct": 89, "syslog": 116, "quotactl": 60, "settimeofday": 170,
    "clock_settime": 112, "adjtimex": 171, "clock_adjtime": 266, "sethostname": 161,
    "setdomainname": 162, "fanotify_init": 262, "open_by_handle_at": 265,
    "name_to_handle_at": 264,
    "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
}  # fmt: skip
# machine (os.uname().machine) -> (AUDIT_ARCH_*, numbers, first number of a foreign ABI)
_ARCHES = {
    "x86_64": (0xC000003E, _X86_64, 0x40000000),  # x32 calls have bit 30 set
    "aarch64": (0xC00000B7, _AARCH64, None),
}

# Classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JUMP_EQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JUMP_GE = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_RETURN = 0x06  # BPF_RET | BPF_K
_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_EPERM = 0x00050000 | 1  # SECCOMP_RET_ERRNO | EPERM
# Offsets in struct seccomp_data: nr, arch, then args[0] (its low 32 bits: little-endian).
_NR, _ARCH, _ARG0 = 0, 4, 16

Instruction = tuple[int, int, int, int]


def supported(machine: str) -> bool:
    """Whether a filter can be built for this architecture."""
    return machine in _ARCHES


def filter_program(pid: int, machine: str, allow: tuple[str, ...] = ()) -> bytes:
    """The packed ``struct sock_filter`` array for a worker with process id `pid`;
    `allow` names calls of `DENIED` the worker needs (the JavaScript worker's event loop
    wakes itself through a `socketpair`, which reaches nothing outside it)."""
    arch, numbers, foreign = _ARCHES[machine]
    code: list[Instruction] = [
        (_LOAD_WORD, 0, 0, _ARCH),
        (_JUMP_EQ, 1, 0, arch),
        (_RETURN, 0, 0, _KILL_PROCESS),  # a call through another ABI
        (_LOAD_WORD, 0, 0, _NR),
    ]
    if foreign is not None:
        code += [(_JUMP_GE, 0, 1, foreign), (_RETURN, 0, 0, _KILL_PROCESS)]
    for name in [n for n in DENIED if n in numbers and n not in allow]:  # iopl: x86 only
        code += [(_JUMP_EQ, 0, 1, numbers[name]), (_RETURN, 0, 0, _EPERM)]
    for name in SELF_ONLY:
        code += [
            (_JUMP_EQ, 0, 4, numbers[name]),
            (_LOAD_WORD, 0, 0, _ARG0),
            (_JUMP_EQ, 0, 1, pid),
            (_RETURN, 0, 0, _ALLOW),
            (_RETURN, 0, 0, _EPERM),
        ]
    code.append((_RETURN, 0, 0, _ALLOW))
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in code)
