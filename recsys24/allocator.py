"""Hand freed memory back to the operating system, so a long job's resident size is what it holds.

glibc keeps blocks freed by numpy in per-thread heaps, and raises the size above
which it maps blocks of their own to the largest block freed so far (up to 32
MiB); Arrow keeps what its pool freed. A job that reads a big file piece by
piece then looks, and is killed, as if it still held every piece.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
MMAP_BYTES = 4 << 20


def _glibc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: its allocator settings do not apply
        return None


def large_blocks_by_mmap() -> None:
    """Serve every block over 4 MiB with its own mmap, returned to the OS when freed (on the features of
    the test split, glibc's default kept 0.8 GB of freed pieces)."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)


def release_freed_memory() -> None:
    """Return freed heap memory (glibc's arenas, Arrow's pool) to the OS."""
    libc = _glibc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except (ImportError, AttributeError):
        pass
