"""Start-up: a command imports only what it needs, and the lazy command table is complete.

Every `seqrepofs` run pays for the imports made before its command starts; `pull` and
`publish` must not wait for numpy, the FUSE stack or the REST stack, and `from seqrepofs import
SeqRepo` must keep working.
"""

from __future__ import annotations

import json
import subprocess
import sys

from seqrepofs.cli import cli
from seqrepofs.commands import COMMAND_MODULES, register_all

HEAVY = ("numpy", "pysam", "boto3", "pyfuse3", "trio", "starlette", "uvicorn", "apsw")


def imported_by(*argv: str) -> set[str]:
    """The heavy modules loaded by the end of `seqrepofs ARGV` run in a fresh interpreter."""
    code = (
        "import json, sys\n"
        "from seqrepofs.cli import main\n"
        f"rc = main({list(argv)!r})\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_command_table_names_every_registered_command() -> None:
    register_all()
    assert set(cli.commands) == set(COMMAND_MODULES)


def test_pull_and_publish_help_import_nothing_heavy() -> None:
    assert imported_by("pull", "--help") == set()
    assert imported_by("publish", "--help") == set()
    assert imported_by("list-remote-instances", "--help") == set()


def test_top_level_help_lists_every_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "seqrepofs", "--help"], capture_output=True, text=True, check=True
    )
    for name in COMMAND_MODULES:
        assert f"  {name} " in proc.stdout or f"  {name}\n" in proc.stdout, name


def test_package_root_still_exports_the_api() -> None:
    code = (
        "import sys, seqrepofs\n"
        "assert 'numpy' not in sys.modules\n"
        "from seqrepofs import SeqRepo, SequenceProxy, AliasNotFoundError\n"
        "assert SeqRepo.__module__ == 'seqrepofs.seqrepo'\n"
        "assert 'SeqRepo' in dir(seqrepofs)\n"
        "try:\n"
        "    seqrepofs.NoSuchThing\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
