"""The FUSE view of a SeqRepo: per-alias and whole-assembly FASTA files with their indexes.

Package layout (arrows point down, each module one job):

- ``daemon``         mount() and serve(): the CLI's entry point and the fstab helper
- ``mount_options``  -o option parsing (CLI, mount(8), fstab)
- ``lifecycle``      preflight checks, mount state, unmounting, daemonising, logging, signals
- ``tuning``         process settings that bound the daemon's memory (malloc arenas)
- ``ops``     the ``pyfuse3.Operations`` subclass: async, errno mapping, worker threads
- ``tree``    paths <-> nodes and readdir paging (synchronous, runs in worker threads)
- ``inodes``  nodes and the inode table (hash-derived inode numbers, lookup counts, forget)
- ``content`` bytes and sizes of the virtual files (via ``seqrepofs.fasta_view``)
- ``source``  what is mounted: one instance or a root of snapshots, over the store API

The tree. Mounting an instance shows one directory per namespace with current aliases, under
its stored name (NCBI, VMC, MD5, …) and its API names (refseq, ga4gh, sha512t24u, …); each holds
``<alias>.fa``, ``<alias>.fa.fai``, ``<alias>.dict`` and ``<alias>.fa.dict`` per current alias.
Mounting a root shows one directory per instance (dated snapshots, then ``master``) and
``latest``, a relative symlink resolving inside the mount; the root is re-read on every listing
and lookup, so a snapshot made later appears without remounting.

Assembly files. Next to the namespace directories, the top-level directory of a mounted instance
(and each instance directory of a mounted root) holds the whole-assembly views of
``seqrepofs.assemblies``: for every assembly the repository knows (a bioutils assembly report
whose namespace exists, as ``add-assembly-names`` creates it) and each base name
``B = <assembly>[.<style>][.primary]`` (style ``ucsc`` or ``refseq``; omitted for ncbi names),
the files ``B.fa``, ``B.fa.fai``, ``B.dict``, ``B.fa.dict``, ``B.chrom.sizes``,
``B.seqcol.json`` and ``B.missing.txt``. Their bytes are the catalog's, so ``B.fa`` equals
``seqrepofs export --assembly`` output; the ``.dict`` UR is ``ga4gh:SQ.<id>`` (the same in
mount and export), not the mount path. ``B.fa`` is read like an alias's ``.fa`` (the view's
layout, residues fetched in worker threads); the sidecars are small and built at open. Sizes
are exact, so listing an instance directory resolves every view (once for a snapshot: about
2 s for a repository holding GRCh38.p14 and the names of the 24 assemblies sharing its
sequences). A name clash between
a namespace directory and a view file is resolved for the namespace: the view file is neither
listed nor found. An assembly whose views cannot be built is logged and not listed; a lookup of
its files is EIO. A master's views are rebuilt when its databases change (checked at most once
a second, like everything else of master).

Names. File stem = FASTA header name = ``fasta_view.encode_name(alias)``: printable ASCII
0x21-0x7E passes unchanged except ``%`` and ``/``; everything else (space, tab, non-ASCII) becomes
``%XX``, upper-case hex of its UTF-8 bytes; the aliases ``.`` and ``..`` are escaped whole. So
``I Saccharomyces chromosome`` is served as ``I%20Saccharomyces%20chromosome.fa`` with that
header, which is exactly what samtools indexes (no whitespace). Commas and colons pass; samtools
regions for names with ``:`` can use ``{name}:beg-end``. Directory names are encoded the same
way (``odd ns`` -> ``odd%20ns``). Decoding is strict: a name encode_name would not produce
(``%41``-style escapes of safe characters, lower-case hex, malformed escapes) is ENOENT, so
every file has exactly one name. Aliases that cannot be encoded (empty) are not listed. When both
``X`` and ``X.fa`` are aliases, ``X.fa.dict`` is X's .fa.dict; X.fa's .dict is not listed (its
.fa.fa.dict still is).

Contents. ``.fa``: ``>NAME\\n`` then the residues at the line width (default 60, option
``line_width``), LF, last line shorter, newline-terminated: byte-identical to
``seqrepofs export -n NS --header name``. ``.fa.fai``: what ``samtools faidx`` writes for it.
``.dict``/``.fa.dict``: what ``samtools dict`` writes (``@HD VN:1.0 SO:unsorted`` + ``@SQ`` with
SN, LN, M5 from the stored MD5 alias, UR ``file://<mountpoint>/<path>.fa`` - samtools writes the
resolved path, and so do we; UR reflects the mount point as given at mount time). A zero-length
sequence is served, not hidden: ``.fa`` is the bare header line, ``.fa.fai`` is empty (samtools
writes no row for an empty record, and refuses to index a file whose only record is empty),
``.dict`` has ``LN:0`` and the MD5 of the empty string, as samtools dict writes. Every file of an
instance has one mtime (that of its databases), so index files never look older than their
FASTA. Sizes are exact.

Caching. Snapshots (no write bits, as ``snapshot`` makes them) are immutable: 30-day entry/attr
timeouts, ``keep_cache``, cached alias lookups. A writable instance (``master``) is read live:
1 s timeouts and caches, no ``keep_cache``. ``direct_io`` is never used, so mmap works.

Errno table (the mount is ``ro`` and modes are 0444/0555, so the kernel answers most writes
itself; the daemon answers the same if asked):

    open for writing/truncate/append, create, mknod, mkdir, unlink, rmdir,
    rename, link, symlink, setattr (chmod, chown, utime, truncate),
    setxattr, removexattr, write, access(W_OK)                          EROFS
    unknown namespace/alias/suffix/assembly view, non-canonical or
    undecodable name                                                     ENOENT
    a path through a file, opendir of a file                             ENOTDIR
    open of a directory for writing, read() of a directory (kernel)      EISDIR
    readlink of anything but ``latest``                                  EINVAL
    getxattr/listxattr (not implemented: kernel caches ENOSYS)           EOPNOTSUPP
    an inode the table does not know                                     ESTALE
    damaged sequence file or database (CorruptFileError, any
    SeqRepoError), any internal error                                    EIO, logged
                                                                         with the path
    an instance of a mounted root that cannot be opened: not listed,
    left out of statfs, a lookup of it                                   EIO, logged

mount(8) and fstab. ``/sbin/mount.fuse3`` handles ``mount -t fuse.seqrepofs SRC MNT -o OPTS``
and fstab lines ``SRC MNT fuse.seqrepofs ro,allow_other,nofail 0 0`` by running
``seqrepofs SRC MNT -o OPTS`` with a fixed PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:
/usr/bin:/sbin:/bin), so ``seqrepofs`` must be installed there; the CLI treats a first argument
that is a path as ``mount``. ``mount.fuse.seqrepofs`` (``daemon.fstab_main``) is the direct
helper form, for /sbin. Options only mount(8) understands (defaults, nofail, _netdev, x-*, …)
are ignored; ``line_width=N``, ``threads=N``, ``log_file=PATH`` are ours; the rest go to libfuse.
"""
