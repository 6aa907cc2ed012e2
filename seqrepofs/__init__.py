"""seqrepofs: keep and read reference sequences locally, compatible with biocommons.seqrepo."""

from .errors import AliasNotFoundError, AmbiguousAliasError, CorruptFileError, NotASeqRepoError
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
