"""The loader: FASTA in (plain, gzip, BGZF, bzip2, stdin), sequences and aliases stored.

`load()` is the entry point the CLI uses; the modules each do one job: `sources` (open by magic
bytes), `fasta` (chunked parsing, validation, digests), `deflines` (the reference's alias
rules), `pipeline` (reader thread with a memory budget), `load` (storing, batches, rollback).
"""

from .deflines import check_namespace, parse_defline, validate_aliases
from .errors import LoadError
from .fasta import FastaRecord, read_records
from .load import LoadStats, load, remove_orphan_files
from .sources import open_source

__all__ = [
    "FastaRecord",
    "LoadError",
    "LoadStats",
    "check_namespace",
    "load",
    "open_source",
    "parse_defline",
    "read_records",
    "remove_orphan_files",
    "validate_aliases",
]
