"""hub package."""

import ctypes
import os

# Memory (issue 2: a hub's peak RSS under 300 MB whatever the upload's size). polars allocates
# through its own jemalloc, which reads _RJEM_MALLOC_CONF once, when polars is first imported;
# importing any hub module (the `hub` command, the API app, the linker) runs this first.
# - muzzy_decay_ms:0: freed pages are returned to the system at once. polars' default keeps
#   them as MADV_FREE pages, which stay in RSS until the kernel runs short of memory: ~70 MB
#   of an ingest's peak, at no measurable CPU cost.
# - narenas:1: one arena instead of four per core, so memory freed by one pipeline thread
#   (reader, keyer, writer) is reused by the next instead of idling in another arena: ~20 MB.
# (dirty_decay_ms:0 as well would save ~40 MB more but costs ~40% more CPU per row.)
# A value the operator has set is kept.
os.environ.setdefault("_RJEM_MALLOC_CONF", "narenas:1,muzzy_decay_ms:0")

# The same for the C library's malloc (Python objects, numpy, SQLite): glibc gives each thread
# that allocates its own arena, and the pipeline's threads each keep freed memory in theirs
# (~10 MB of an ingest's peak). Python code holds the GIL when it allocates, so one arena costs
# no contention worth measuring. mallopt(M_ARENA_MAX) affects threads that start later; an
# operator's MALLOC_ARENA_MAX is kept, and C libraries without mallopt are left alone.
_M_ARENA_MAX = -8
if "MALLOC_ARENA_MAX" not in os.environ:
    _mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if _mallopt is not None:
        _mallopt(_M_ARENA_MAX, 1)
