"""seqrepofs: keep and read reference sequences locally, compatible with biocommons.seqrepo.

`SeqRepo` and `SequenceProxy` are imported on first use (PEP 562 `__getattr__`): the store
they need brings numpy, which commands such as `pull` and `publish` never touch, and every
`seqrepofs` command pays for whatever this package imports before it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import AliasNotFoundError, AmbiguousAliasError, CorruptFileError, NotASeqRepoError

if TYPE_CHECKING:
    from .seqrepo import SeqRepo, SequenceProxy

__version__ = "0.1.0"

__all__ = [
    "AliasNotFoundError",
    "AmbiguousAliasError",
    "CorruptFileError",
    "NotASeqRepoError",
    "SeqRepo",
    "SequenceProxy",
    "__version__",
]

_LAZY = frozenset({"SeqRepo", "SequenceProxy"})


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import seqrepo

        value = getattr(seqrepo, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
