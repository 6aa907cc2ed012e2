"""A new ASCII ``str`` whose characters are filled in place, as C extensions do.

Why: the API returns sequences as ``str``. Building one from bytes means a second whole-length
buffer and a copy; for a 24 Mb chromosome that costs about 20 ms here, most of it the kernel
handing out fresh pages, i.e. as much as inflating it on two cores. ``PyUnicode_New`` gives an
uninitialised compact ASCII string whose characters follow its header, which readers may fill
before anyone else sees the string. The header size is taken from the running interpreter
and the whole arrangement is checked once at import; where that check fails (another Python
implementation or layout), :func:`new_ascii` returns None and callers decode bytes instead.

Callers must write every position, and only bytes < 128.
"""

from __future__ import annotations

import ctypes
import sys

import numpy as np

_HEADER = sys.getsizeof("") - 1  # a compact ASCII str: header, characters, then a NUL


def _bind():  # noqa: ANN202 - a ctypes function or None
    try:
        new = ctypes.pythonapi.PyUnicode_New
    except AttributeError:
        return None
    new.restype = ctypes.py_object
    new.argtypes = (ctypes.c_ssize_t, ctypes.c_uint32)
    return new


_PyUnicode_New = _bind()


def _characters(s: str, n: int) -> np.ndarray:
    chars = (ctypes.c_char * n).from_address(id(s) + _HEADER)
    return np.frombuffer(chars, dtype=np.uint8)  # type: ignore[call-overload]  # a buffer


def new_ascii(n: int) -> tuple[str, np.ndarray] | None:
    """A fresh str of length `n` and a writable array over its characters, or None.

    The array does not keep the str alive: hold the str for as long as the array is used.
    """
    if not _WORKS or n <= 0:
        return None
    s = _PyUnicode_New(n, 127)
    return s, _characters(s, n)


def _self_test() -> bool:
    if _PyUnicode_New is None or sys.implementation.name != "cpython":
        return False
    try:
        s = _PyUnicode_New(7, 127)
        _characters(s, 7)[:] = np.frombuffer(b"ACGTNac", dtype=np.uint8)
        return (
            s == "ACGTNac"
            and s.isascii()
            and len(s) == 7
            and hash(s) == hash("ACGTNac")
            and s.encode("ascii") == b"ACGTNac"
        )
    except Exception:  # noqa: BLE001 - any surprise means: do not use it
        return False


_WORKS = _self_test()
