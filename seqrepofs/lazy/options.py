"""How a published snapshot is read in place: the cache and the timeout (the commands'
`--cache-dir`, `--cache-size`, `--http-timeout`; None: the environment's or the default)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LazyOptions:
    cache_dir: str | None = None
    cache_size: int | None = None
    http_timeout: float | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of SeqRepo(URL, …) and open_snapshot."""
        return {
            "cache_dir": self.cache_dir,
            "cache_size": self.cache_size,
            "http_timeout": self.http_timeout,
        }
