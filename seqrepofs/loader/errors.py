"""The one error a load raises for bad input: it names the file, the record and the line."""

from __future__ import annotations

from ..errors import SeqRepoError


class LoadError(SeqRepoError, ValueError):
    """Bad input for a load (a user error: the CLI prints it as one line, exit code 1)."""

    def __init__(
        self,
        message: str,
        path: str | None = None,
        record: int | None = None,
        name: str | None = None,
        line: int | None = None,
    ) -> None:
        where: list[str] = []
        if path is not None:
            where.append(path)
        if line is not None:
            where.append(f"line {line}")
        if record is not None:
            where.append(f"record {record}" + (f" ({name})" if name else ""))
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
        self.path = path
        self.record = record
        self.name = name
        self.line = line
