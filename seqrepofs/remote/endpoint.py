"""Where snapshots come from: a host name, `HOST::MODULE` or `rsync://HOST[:PORT][/MODULE]`.

Everything that ends up on rsync's command line is validated here, so a value that starts with
`-` or holds spaces can never turn into an rsync option.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import RemoteInputError

DEFAULT_MODULE = "seqrepo"
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9_.~-]+@)?(?:[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\])$")
_MODULE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Endpoint:
    """An rsync daemon module: host, optional port, module name."""

    host: str
    port: int | None
    module: str

    def source(self, path: str = "") -> str:
        """The rsync source for `path` inside the module (`HOST::MODULE/path` or a URL)."""
        if self.port is None:
            return f"{self.host}::{self.module}/{path}"
        return f"rsync://{self.host}:{self.port}/{self.module}/{path}"

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"rsync://{self.host}{port}/{self.module}"


def parse_endpoint(spec: str, module: str | None = None) -> Endpoint:
    """Parse `--remote-host` (and an optional `--remote-module`) into an Endpoint.

    Accepts `HOST`, `HOST:PORT`, `HOST::MODULE`, and `rsync://HOST[:PORT][/MODULE]`; IPv6
    addresses go in brackets. A module given both ways must agree.
    """
    text = spec.strip()
    if not text:
        raise RemoteInputError("--remote-host is empty")
    port: int | None = None
    spec_module: str | None = None
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme != "rsync":
            raise RemoteInputError(
                f"--remote-host {spec!r}: only rsync:// URLs are supported (or a plain host name)"
            )
        if parts.query or parts.fragment:
            raise RemoteInputError(f"--remote-host {spec!r}: unexpected ?query or #fragment")
        try:
            port = parts.port
        except ValueError:
            raise RemoteInputError(f"--remote-host {spec!r}: invalid port") from None
        host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
        path = parts.path.strip("/")
        if "/" in path:
            raise RemoteInputError(f"--remote-host {spec!r}: give at most a module after the port")
        spec_module = path or None
    elif "::" in text and not text.startswith("["):
        host, spec_module = text.split("::", 1)
    elif text.count(":") == 1 and not text.startswith("["):
        host, port_text = text.split(":")
        if not port_text.isdigit():
            raise RemoteInputError(f"--remote-host {spec!r}: invalid port {port_text!r}")
        port = int(port_text)
    else:
        host = text
    if not _HOST_RE.match(host):
        raise RemoteInputError(f"--remote-host {spec!r}: {host!r} is not a host name or address")
    if port is not None and not 0 < port < 65536:
        raise RemoteInputError(f"--remote-host {spec!r}: port must be 1-65535")
    if module and spec_module and module != spec_module:
        raise RemoteInputError(
            f"--remote-module {module!r} conflicts with module {spec_module!r} in --remote-host"
        )
    return Endpoint(host, port, check_module(module or spec_module or DEFAULT_MODULE))


def check_module(name: str) -> str:
    """`name` if it is a plain rsync module name (letters, digits, `._-`), else RemoteInputError."""
    if not _MODULE_RE.match(name):
        raise RemoteInputError(f"rsync module {name!r} is not a valid module name")
    return name
