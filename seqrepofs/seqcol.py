"""GA4GH Sequence Collections 1.0 digests and comparison, computed as the ``refget`` package does.

One definition for every place that needs a seqcol digest (assembly views, stored collections,
the REST API). Pure: no I/O, no store.

Attributes (what ``refget`` 0.12 serves and digests)
    level 2 arrays ``names``, ``lengths``, ``sequences`` (``SQ.<sha512t24u>``) and the derived
    ``sorted_sequences`` and ``name_length_pairs`` (``{"length": n, "name": s}`` objects);
    level 1 is the sha512t24u of each array's canonical JSON plus the *transient*
    ``sorted_name_length_pairs`` (digest of the sorted digests of the pairs; it has no level-2
    value); level 0 digests the level-1 digests of the *inherent* attributes ``names`` and
    ``sequences`` only (``lengths`` is not inherent in 1.0).

Canonical JSON is ``json.dumps(sort_keys, no spaces, ensure_ascii=False)`` as ``refget`` writes
it (RFC 8785 for the strings and integers seqcol uses). :class:`ArrayDigest` produces the same
bytes item by item, so a collection of millions of records is digested without holding its
arrays.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from .digests import sha512t24u
from .errors import InvalidInputError

__all__ = [
    "ARRAY_ATTRIBUTES",
    "INHERENT",
    "LEVEL1_ATTRIBUTES",
    "TRANSIENT",
    "ArrayDigest",
    "CollectionDigests",
    "canonical",
    "compare",
    "compare_counts",
    "digest_from_level1",
    "level1",
    "level2",
    "name_length_pair",
    "pair_digest",
    "seqcol_digest",
]

INHERENT = ("names", "sequences")
TRANSIENT = ("sorted_name_length_pairs",)
#: Attributes with a level-2 value (what /collection?level=2 and /attribute serve), sorted.
ARRAY_ATTRIBUTES = ("lengths", "name_length_pairs", "names", "sequences", "sorted_sequences")
LEVEL1_ATTRIBUTES = tuple(sorted(ARRAY_ATTRIBUTES + TRANSIENT))


def canonical(obj: Any) -> bytes:
    """The canonical JSON bytes seqcol digests (arrays/objects of strings and integers)."""
    return json.dumps(
        obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True, allow_nan=False
    ).encode("utf-8")


def name_length_pair(name: str, length: int) -> dict[str, Any]:
    return {"length": length, "name": name}


def pair_digest(name: str, length: int) -> str:
    """Digest of one name-length pair (the elements of ``sorted_name_length_pairs``)."""
    return sha512t24u(canonical(name_length_pair(name, length)))


class ArrayDigest:
    """sha512t24u of ``canonical(list_of_items)``, fed one item at a time."""

    __slots__ = ("_h", "_first", "count")

    def __init__(self) -> None:
        self._h = hashlib.sha512(b"[")
        self._first = True
        self.count = 0

    def add(self, item: Any) -> None:
        self.add_canonical(canonical(item))

    def add_canonical(self, data: bytes) -> None:
        """Add an item given as its canonical JSON bytes."""
        self._h.update(data if self._first else b"," + data)
        self._first = False
        self.count += 1

    def extend(self, items: Iterable[Any]) -> ArrayDigest:
        for item in items:
            self.add(item)
        return self

    def digest(self) -> str:
        h = self._h.copy()
        h.update(b"]")
        return base64.urlsafe_b64encode(h.digest()[:24]).decode("ascii")


#: json.dumps(str, ensure_ascii=False) without the call overhead (the same C encoder).
_json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def digest_from_level1(level1_digests: Mapping[str, str]) -> str:
    """Level-0 digest: the canonical object of the inherent attributes' level-1 digests."""
    return sha512t24u(canonical({k: level1_digests[k] for k in INHERENT}))


class CollectionDigests:
    """Streaming digests of a collection given record by record (name, length, seq_id).

    The three collated arrays and ``name_length_pairs`` are digested as records arrive; the two
    sorted attributes need every element first, so :meth:`finish` takes them as already sorted
    iterables (a store sorts them on disk; :func:`level1` sorts in memory).
    """

    def __init__(self) -> None:
        self._arrays = {
            k: ArrayDigest() for k in ("lengths", "name_length_pairs", "names", "sequences")
        }
        self.total_length = 0

    @property
    def count(self) -> int:
        return self._arrays["names"].count

    def add(self, name: str, length: int, seq_id: str) -> str:
        """Add one record; returns its name-length pair digest (for the sorted attribute).

        The canonical JSON of each element is written directly (a JSON string and an integer
        each; the pair's keys in sorted order): json.dumps per element costs 4x as much.
        """
        if type(length) is not int or length < 0:
            raise InvalidInputError(
                f"length of {name!r} must be a non-negative integer, not {length!r}"
            )
        a = self._arrays
        name_json = _json_string(name)
        length_json = str(length)
        pair = f'{{"length":{length_json},"name":{name_json}}}'.encode()
        a["names"].add_canonical(name_json.encode())
        a["lengths"].add_canonical(length_json.encode())
        a["sequences"].add_canonical(_json_string("SQ." + seq_id).encode())
        a["name_length_pairs"].add_canonical(pair)
        self.total_length += length
        return base64.urlsafe_b64encode(hashlib.sha512(pair).digest()[:24]).decode("ascii")

    def finish(
        self, sorted_seq_ids: Iterable[str], sorted_pair_digests: Iterable[str]
    ) -> dict[str, str]:
        """Level-1 digests (all six attributes), given ``sorted(seq_ids)`` and
        ``sorted(pair_digest(name, length) for each record)``."""
        out = {k: d.digest() for k, d in self._arrays.items()}
        seqs, pairs = ArrayDigest(), ArrayDigest()
        for s in sorted_seq_ids:
            seqs.add_canonical(_json_string("SQ." + s).encode())
        for d in sorted_pair_digests:
            pairs.add_canonical(_json_string(d).encode())
        out["sorted_sequences"] = seqs.digest()
        out["sorted_name_length_pairs"] = pairs.digest()
        return dict(sorted(out.items()))


def level2(
    names: Sequence[str], lengths: Sequence[int], sequences: Sequence[str]
) -> dict[str, list[Any]]:
    """The level-2 object (five arrays) from the collated arrays; ``sequences`` are ``SQ.`` ids."""
    if not len(names) == len(lengths) == len(sequences):
        raise InvalidInputError(
            f"collated arrays differ in length (names {len(names)}, lengths {len(lengths)},"
            f" sequences {len(sequences)})"
        )
    return {
        "lengths": list(lengths),
        "name_length_pairs": [
            name_length_pair(n, ln) for n, ln in zip(names, lengths, strict=True)
        ],
        "names": list(names),
        "sequences": list(sequences),
        "sorted_sequences": sorted(sequences),
    }


def level1(level2_obj: Mapping[str, Sequence[Any]]) -> dict[str, str]:
    """Level-1 digests of a level-2 object holding at least names, lengths and sequences.

    Every array attribute given is digested; ``sorted_sequences``, ``name_length_pairs`` and the
    transient ``sorted_name_length_pairs`` are derived when absent.
    """
    names, lengths = level2_obj["names"], level2_obj["lengths"]
    full: dict[str, Sequence[Any]] = dict(level2(names, lengths, level2_obj["sequences"]))
    full.update(level2_obj)
    out = {k: sha512t24u(canonical(v)) for k, v in full.items()}
    out["sorted_name_length_pairs"] = sha512t24u(
        canonical(sorted(pair_digest(n, ln) for n, ln in zip(names, lengths, strict=True)))
    )
    return dict(sorted(out.items()))


def seqcol_digest(level2_obj: Mapping[str, Sequence[Any]]) -> str:
    """Level-0 digest of a collection (what ``refget.seqcol_digest`` returns)."""
    return sha512t24u(canonical({k: sha512t24u(canonical(level2_obj[k])) for k in INHERENT}))


# ---- comparison ------------------------------------------------------------------------------


def _key(item: Any) -> Hashable:
    """A hashable stand-in equal exactly when the JSON values are (objects: by their items)."""
    if isinstance(item, dict):
        return ("{}", tuple(sorted((k, _key(v)) for k, v in item.items())))
    if isinstance(item, list):
        return ("[]", tuple(_key(v) for v in item))
    return item


def _compare_arrays(a: Sequence[Any], b: Sequence[Any]) -> tuple[int, bool | None]:
    """(a_and_b count, a_and_b_same_order) for one attribute, as the seqcol spec defines them.

    Elements of each array found in the other, duplicates kept; the count is the smaller of the
    two; the order is compared only when both sides match the same number of elements (and at
    least one), otherwise it is undefined (None). Linear time (set look-ups).
    """
    ka = [_key(x) for x in a]
    kb = [_key(x) for x in b]
    sa, sb = set(ka), set(kb)
    fa = [x for x in ka if x in sb]
    fb = [x for x in kb if x in sa]
    overlap = min(len(fa), len(fb))
    if not fa and not fb:
        return overlap, None
    if len(fa) != len(fb):
        return overlap, None
    return overlap, fa == fb


def compare_counts(a_count: Mapping[str, int], b_count: Mapping[str, int]) -> dict[str, Any]:
    """The comparison's skeleton from each side's attribute lengths: ``attributes`` and the
    counts; the caller fills ``a_and_b_count`` and ``a_and_b_same_order`` of ``a_and_b``."""
    attributes: dict[str, list[str]] = {"a_only": [], "b_only": [], "a_and_b": []}
    for k in sorted(set(a_count) | set(b_count)):
        side = (
            "a_and_b" if k in a_count and k in b_count else "a_only" if k in a_count else "b_only"
        )
        attributes[side].append(k)
    return {
        "attributes": attributes,
        "array_elements": {
            "a_count": {k: a_count[k] for k in sorted(a_count)},
            "b_count": {k: b_count[k] for k in sorted(b_count)},
            "a_and_b_count": {},
            "a_and_b_same_order": {},
        },
    }


def compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The seqcol comparison of two level-2 objects (``attributes`` and ``array_elements``).

    The caller adds ``digests``; the result equals ``refget.utils.compare_seqcols`` for the
    same inputs (keys in sorted order, every key of each side counted).
    """
    result = compare_counts({k: len(v) for k, v in a.items()}, {k: len(v) for k, v in b.items()})
    elements = result["array_elements"]
    for k in result["attributes"]["a_and_b"]:
        count, order = _compare_arrays(a[k], b[k])
        elements["a_and_b_count"][k] = count
        elements["a_and_b_same_order"][k] = order
    return result


def json_bytes(obj: object) -> bytes:
    """JSON as the seqcol API serves it: ASCII (non-ASCII escaped), no spaces."""
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def json_array(pages: Iterable[Sequence[Any]]) -> Iterator[bytes]:
    """One JSON array from its values a page at a time (a collection may have millions)."""
    yield b"["
    first = True
    for page in pages:
        chunk = json_bytes(page)[1:-1]
        if chunk:
            yield chunk if first else b"," + chunk
            first = False
    yield b"]"


def level2_json(
    attributes: Sequence[str], pages: Callable[[str], Iterable[Sequence[Any]]]
) -> Iterator[bytes]:
    """Level 2, streamed: `GET /collection/{digest}?level=2` and a mount's `.seqcol.json` are
    both these bytes. `pages(attribute)` gives that attribute's values a page at a time."""
    for i, attribute in enumerate(attributes):
        yield (b"{" if i == 0 else b",") + json_bytes(attribute) + b":"
        yield from json_array(pages(attribute))
    yield b"}"
