"""The state of a directory tree, to show that a command changed nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def tree_state(top: Path) -> dict[str, tuple[str, int, str]]:
    """Every entry under `top`: relative path -> (kind, mode, md5 of a file / link target)."""
    out: dict[str, tuple[str, int, str]] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            st = os.lstat(path)
            if os.path.islink(path):
                out[rel] = ("link", st.st_mode, os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", st.st_mode, "")
            else:
                digest = hashlib.md5()
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
                out[rel] = ("file", st.st_mode, digest.hexdigest())
    return out


def remove_tree(top: Path) -> None:
    """Remove a tree that holds read-only snapshots (whose directories have no write bits)."""
    for dirpath, _dirs, _files in os.walk(top):
        os.chmod(dirpath, 0o755)
    shutil.rmtree(top)
