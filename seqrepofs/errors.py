"""Exceptions of seqrepofs, each a subclass of the builtin a caller would already catch."""

from __future__ import annotations


class SeqRepoError(Exception):
    """Base class of every seqrepofs error a user can cause or meet (bad input, a damaged or
    missing file, a busy or read-only instance): the CLI prints these as one line.

    Each subclass also derives from the builtin a Python caller would already catch
    (KeyError, ValueError, OSError, RuntimeError), so the API stays compatible.
    """


class InvalidInputError(SeqRepoError, ValueError):
    """A value a user gave (an argument, an option, a name, a setting) is not acceptable."""


class NotASeqRepoError(SeqRepoError, OSError):
    """The directory is missing or does not hold a SeqRepo instance."""


class SchemaVersionError(SeqRepoError, RuntimeError):
    """A database has a schema version this code does not read."""


class ReadOnlyError(SeqRepoError, RuntimeError):
    """A write was attempted on an instance opened read-only."""


class CorruptFileError(SeqRepoError, OSError):
    """A sequence file or its index is damaged; the message names the file."""


class WriterBusyError(SeqRepoError, RuntimeError):
    """Another process is writing to the same instance."""


class NotFoundError(SeqRepoError, KeyError):
    """Nothing is stored under a name. A KeyError so existing callers keep working."""

    def __str__(self) -> str:  # KeyError's str() would add quotes around the message
        return str(self.args[0]) if self.args else ""


class AliasNotFoundError(NotFoundError):
    """No current alias matches."""


class SequenceNotFoundError(NotFoundError):
    """No sequence is stored with this seq_id (an alias naming one is damage `check` reports)."""

    def __init__(self, seq_id: str) -> None:
        super().__init__(f"sequence {seq_id} is not stored")
        self.seq_id = seq_id


class AmbiguousAliasError(AliasNotFoundError):
    """An unqualified alias matches more than one sequence.

    The message starts like the reference's ("Alias X (namespace: None): not unique") so code that
    matches on it keeps working, and then lists the namespaces that hold the alias.
    """

    def __init__(self, alias: str, namespace: str | None, namespaces: list[str]) -> None:
        msg = f"Alias {alias} (namespace: {namespace}): not unique"
        if namespaces:
            msg += f"; it names different sequences in namespaces {', '.join(namespaces)}"
            msg += f" - qualify it, e.g. {namespaces[0]}:{alias}"
        super().__init__(msg)
        self.alias = alias
        self.namespace = namespace
        self.namespaces = namespaces
