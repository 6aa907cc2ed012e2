"""A reader of the load test (tests/test_reliability_load.py): random ranges of random aliases of
random instances, over a mount or the API, each compared with the input sequence.

Used as a module (threads of the test process) and run as one (reader processes):
``python3 -m support.load_reader '{"mode": "mount"|"api", "mnt": ..., "root": ..., "expected":
<pickle of alias -> bytes>, "seed": N, "deadline": <time.time()>}'`` prints one JSON line.

An alias of the inputs loaded during the test may be absent (not loaded yet, or not in an older
snapshot): that is counted, not an error. Everything else that fails is an error, and any byte
that differs from the input is a wrong read.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

from support.data import NS
from support.oracles import naive_fasta_record

SNAPSHOT_RE = re.compile(r"^20\d\d-\d\d-\d\d$")
BASE_INSTANCES = ("2020-01-01", "latest", "master")  # hold every alias of input A


def _instances(listing: list[str]) -> list[str]:
    return [n for n in listing if n in BASE_INSTANCES or SNAPSHOT_RE.match(n)]


def read_loop(
    mode: str, mnt: Path, root: Path, expected: dict[str, bytes], seed: int, deadline: float
) -> dict:
    from seqrepofs.errors import AliasNotFoundError
    from seqrepofs.seqrepo import SeqRepo

    rng = random.Random(seed)
    names = sorted(expected)
    base = [n for n in names if n.startswith("A")]
    files: dict[str, bytes] = {}
    repos: dict[str, SeqRepo] = {}
    out: dict[str, Any] = {
        "mode": mode,
        "reads": 0,
        "bytes": 0,
        "absent": 0,
        "wrong": [],
        "errors": [],
    }
    try:
        while time.time() < deadline and len(out["errors"]) < 20:
            where = mnt if mode == "mount" else root
            inst = rng.choice(_instances(os.listdir(where)))
            alias = rng.choice(base if rng.random() < 0.75 else names)
            may_lack = not alias.startswith("A")  # input A is in every instance
            seq = expected[alias]
            what = f"{mode} {inst}/{alias}"
            try:
                if mode == "mount":
                    data = files.get(alias)
                    if data is None:
                        data = files[alias] = naive_fasta_record(alias, seq.decode())
                    off = rng.randrange(0, len(data) + 10)
                    size = rng.choice((1, 60, 61, 4096, 65536, 300_000))
                    try:
                        fd = os.open(mnt / inst / NS / f"{alias}.fa", os.O_RDONLY)
                    except FileNotFoundError:
                        if may_lack:
                            out["absent"] += 1
                            continue
                        raise
                    try:
                        if os.fstat(fd).st_size != len(data):
                            out["wrong"].append(f"{what}: size {os.fstat(fd).st_size}")
                        got = os.pread(fd, size, off)
                    finally:
                        os.close(fd)
                    want = data[off : off + size]
                else:
                    sr = repos.get(inst)
                    if sr is None:
                        sr = repos[inst] = SeqRepo(root / inst)
                    start = rng.randrange(0, len(seq) + 1)
                    end = min(len(seq), start + rng.choice((1, 100, 5000, 200_000)))
                    try:
                        got = sr.fetch(alias, start, end, namespace=NS).encode()
                    except AliasNotFoundError:
                        if may_lack:
                            out["absent"] += 1
                            continue
                        raise
                    want, off, size = seq[start:end], start, end - start
                out["reads"] += 1
                out["bytes"] += len(got)
                if got != want:
                    out["wrong"].append(f"{what} [{off}+{size}]: {len(got)} bytes differ")
            except OSError as exc:
                name = errno.errorcode.get(exc.errno or 0, "?")
                out["errors"].append(f"{what}: {name} {exc}")
            except Exception as exc:  # noqa: BLE001 - every failure is reported
                out["errors"].append(f"{what}: {type(exc).__name__}: {exc}")
    finally:
        for sr in repos.values():
            sr.close()
    return out


def main() -> None:
    spec = json.loads(sys.argv[1])
    with open(spec["expected"], "rb") as fh:
        expected = pickle.load(fh)
    res = read_loop(
        spec["mode"],
        Path(spec["mnt"]),
        Path(spec["root"]),
        expected,
        spec["seed"],
        spec["deadline"],
    )
    print(json.dumps(res))


if __name__ == "__main__":
    main()
