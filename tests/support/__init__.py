"""What the tests share, imported as ``support.<module>`` (pytest puts tests/ on sys.path).

- ``cli``: run the seqrepofs command (or another program) in a subprocess.
- ``fuse``: real mounts: the skip reason, a mounted daemon, errno helpers.
- ``oracles``: expected bytes and names written from the documented rules, independently of
  seqrepofs (FASTA, .fai, .dict, file names, add-assembly-names).
- ``data``: the shipped real data, generated repositories and inputs with known contents.
- ``files``: the state of a directory tree, to show a command changed nothing.
- ``system``: facilities of the machine (tmpfs, ports, process memory).
- ``rest``: `seqrepofs serve` on 127.0.0.1 for the REST tests.
- ``load_reader``: the reader loop of the load test, also run as a reader process.

Each module has one job; conftest.py holds only fixtures.
"""
