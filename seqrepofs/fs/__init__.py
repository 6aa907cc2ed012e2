"""The FUSE view of a SeqRepo: per-alias and whole-assembly FASTA files with their indexes.

What the mount shows (names, files, caching, errors, lifecycle, memory bounds) is specified once,
in docs/mount.md. Where a request is served is docs/design.md, "The read path": `ops` answers
on the trio thread (where a snapshot's file reads run too) and hands SQLite work to worker
threads; `tree` maps paths to nodes and contents over `source`, the mounted instance or root.
"""
