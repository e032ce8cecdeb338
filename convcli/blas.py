"""How many threads BLAS runs for the calling thread: one, when threads already share the cores.

numpy's matrix products run on OpenBLAS, which by default spreads each call over
every core. When convcli itself runs several calls at once (a streamed image's
bands, one per thread), each call's BLAS threads compete with the others' and
OpenBLAS's busy-waiting threads slow all of them down. `limit_this_thread`
sets the BLAS threads of the calling thread alone, through OpenBLAS's
``openblas_set_num_threads_local`` (OpenBLAS 0.3.27 and later, as numpy 2's
wheels bundle); other BLAS libraries are left as they are. Standard library
only; the library is found among those the process has loaded.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

_SYMBOL = "openblas_set_num_threads_local"


@functools.cache
def _setter() -> Callable[[int], int] | None:
    """Return OpenBLAS's per-thread setter from the loaded libraries, or None."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {
                line.split()[-1]
                for line in maps
                if "openblas" in line.lower() and ".so" in line
            }
    except OSError:  # not Linux: no /proc
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            fn = getattr(lib, _SYMBOL)
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn  # type: ignore[no-any-return]
    return None


def limit_this_thread(threads: int = 1) -> bool:
    """Make BLAS calls from the calling thread use ``threads`` threads; return whether it could.

    numpy must be imported first (it loads OpenBLAS).
    """
    fn = _setter()
    if fn is None:
        return False
    fn(threads)
    return True
