"""Sequence digests exactly as SeqRepo (bioutils.digests) computes them.

Every digest is taken over the *normalised* sequence: whitespace and ``*`` removed, upper-cased,
and only the letters A-Z allowed. The internal seq_id of a SeqRepo is the sha512t24u digest.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InvalidInputError

_WHITESPACE_AND_STOP = b" \t\n\r\v\f*"
_UPPER = bytes(range(ord("A"), ord("Z") + 1))


class InvalidSequenceError(InvalidInputError):
    """A sequence holds a character that is not a letter; says which and where."""

    def __init__(self, char: str, position: int, context: str = "") -> None:
        where = f" in {context}" if context else ""
        super().__init__(
            f"invalid residue {char!r} at position {position}{where}: "
            "sequences may contain only letters A-Z (and '*' or whitespace, which are ignored)"
        )
        self.char = char
        self.position = position


def normalise(seq: str | bytes, context: str = "") -> bytes:
    """Return the normalised ASCII bytes of `seq`, raising InvalidSequenceError on a non-letter.

    Positions in the error are 0-based offsets into the sequence as given.
    """
    raw = seq.encode("latin-1", errors="replace") if isinstance(seq, str) else bytes(seq)
    up = raw.upper().translate(None, _WHITESPACE_AND_STOP)
    if up.translate(None, _UPPER):
        return _raise_invalid(raw, context)
    return up


def _raise_invalid(raw: bytes, context: str) -> bytes:
    for pos, byte in enumerate(raw.upper()):
        if byte in _WHITESPACE_AND_STOP or byte in _UPPER:
            continue
        raise InvalidSequenceError(chr(byte), pos, context)
    raise AssertionError("unreachable: no invalid residue found")  # pragma: no cover


def sha512t24u(data: bytes) -> str:
    """The GA4GH truncated digest: SHA-512, first 24 bytes, base64url without padding."""
    return base64.urlsafe_b64encode(hashlib.sha512(data).digest()[:24]).decode("ascii")


def trunc512_hex(seq_id: str) -> str:
    """The deprecated refget TRUNC512 form (hex of the same 24 bytes) of a sha512t24u id."""
    return base64.urlsafe_b64decode(seq_id.encode("ascii")).hex()


def seq_id_from_trunc512(hexdigest: str) -> str:
    """Inverse of :func:`trunc512_hex`."""
    return base64.urlsafe_b64encode(bytes.fromhex(hexdigest)).decode("ascii")


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def seguid(data: bytes) -> str:
    """SEGUID: SHA-1 in standard base64 with the trailing '=' removed."""
    return base64.b64encode(hashlib.sha1(data).digest()).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class Digests:
    """All digests SeqRepo stores for one sequence."""

    sha512t24u: str
    md5: str
    sha1: str
    seguid: str

    @property
    def seq_id(self) -> str:
        return self.sha512t24u

    @property
    def vmc(self) -> str:
        return "GS_" + self.sha512t24u

    @property
    def ga4gh(self) -> str:
        return "SQ." + self.sha512t24u

    def digest_aliases(self) -> list[tuple[str, str]]:
        """(namespace, alias) pairs in the order the reference inserts them."""
        return [("VMC", self.vmc), ("SHA1", self.sha1), ("MD5", self.md5), ("SEGUID", self.seguid)]


class StreamingDigester:
    """Digests fed in chunks of already-normalised bytes, so a chromosome need not be joined."""

    def __init__(self) -> None:
        self._sha512 = hashlib.sha512()
        self._md5 = hashlib.md5()
        self._sha1 = hashlib.sha1()
        self.length = 0

    def update(self, chunk: bytes) -> None:
        self._sha512.update(chunk)
        self._md5.update(chunk)
        self._sha1.update(chunk)
        self.length += len(chunk)

    def finish(self) -> Digests:
        sha1 = self._sha1.digest()
        return Digests(
            sha512t24u=base64.urlsafe_b64encode(self._sha512.digest()[:24]).decode("ascii"),
            md5=self._md5.hexdigest(),
            sha1=sha1.hex(),
            seguid=base64.b64encode(sha1).decode("ascii").rstrip("="),
        )


def digests_of_pieces(pieces: Iterable[bytes]) -> Digests:
    """Digests of a sequence given in consecutive pieces (a stored sequence read in windows),
    each normalised as `normalise` does; an InvalidSequenceError gives the position in the
    whole sequence."""
    d = StreamingDigester()
    offset = 0
    for piece in pieces:
        try:
            d.update(normalise(piece))
        except InvalidSequenceError as exc:
            raise InvalidSequenceError(exc.char, offset + exc.position) from None
        offset += len(piece)
    return d.finish()


_NOT_SAM_PRINTABLE = bytes(range(0x21)) + bytes(range(0x7F, 0x100))


def sam_m5_of_pieces(pieces: Iterable[bytes]) -> str:
    """SAM's @SQ M5 of a sequence given in consecutive pieces: the lowercase hex MD5 of it
    upper-cased, bytes outside '!'..'~' removed (unlike the MD5 alias, it keeps `*`)."""
    h = hashlib.md5()
    for piece in pieces:
        h.update(piece.upper().translate(None, _NOT_SAM_PRINTABLE))
    return h.hexdigest()


def digests(normalised: bytes) -> Digests:
    """All digests of an already-normalised sequence."""
    d = StreamingDigester()
    d.update(normalised)
    return d.finish()


def seq_id_of(seq: str | bytes) -> str:
    """The SeqRepo seq_id of a (not necessarily normalised) sequence."""
    return sha512t24u(normalise(seq))
