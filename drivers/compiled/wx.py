"""Is memory that is written and then executed allowed in this process?

numba's JIT, and loading numba's on-disk cache too, goes through LLVM's in-memory linker: it
writes machine code into anonymous memory and then makes it executable. systemd's
``MemoryDenyWriteExecute=yes`` (a seccomp filter) and the kernel's ``PR_SET_MDWE`` refuse that:
``import numba`` then raises PermissionError (llvmlite checks), and where the restriction
arrives after the import, the first compile or cache load kills the process (SIGSEGV inside
LLVM). So the choice of how kernels run asks first, without numba: one page mapped writable
and executable at once is refused by both.
A compiled extension is loaded by the dynamic loader, whose executable pages are mapped from
the file and never writable: it runs under either.
"""

from __future__ import annotations

import mmap


def write_execute_allowed() -> bool:
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except OSError:
        return False
    page.close()
    return True
