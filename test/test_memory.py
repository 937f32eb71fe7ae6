"""csmvanet.base.memory: segments reuse freed memory instead of faulting it in from the kernel each time."""
import json
import os
import subprocess
import sys

import pytest

# A small CSM-VANet whose attention maps over a 4 s segment (51 bins x 2 heads x 401 x 401 frames,
# 66 MB each) are above glibc's largest mmap threshold, as the paper config's are on 8 s segments.
_CHILD = r"""
import json, sys
import numpy as np, torch
torch.set_num_threads(1)
from csmvanet.base.memory import cpu_usage
from csmvanet.infer.enhancer import Enhancer
from csmvanet.nets import build_model
torch.manual_seed(0)
cfg = {"model": {"channels": [8, 16], "num_conformers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 7}}
enh = Enhancer(build_model(cfg), cfg, segment_seconds=4, overlap_seconds=1, retain_memory=sys.argv[1] == "1")
x = (np.random.default_rng(0).standard_normal(16000 * 13) * 0.1).astype(np.float32)
enh.enhance(x[:16000 * 4], 16000)                  # warm-up: one segment
before = cpu_usage()
enh.enhance(x, 16000)                              # 4 segments
after = cpu_usage()
print(json.dumps({k: after[k] - before[k] for k in ("minor_faults", "sys_s", "user_s")}))
"""


def _usage(retain: bool) -> dict:
    p = subprocess.run([sys.executable, "-c", _CHILD, "1" if retain else "0"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt: Linux only")
def test_retained_memory_is_not_faulted_in_again_per_segment():
    plain, retained = _usage(False), _usage(True)
    assert plain["minor_faults"] > 4 * 16384          # > 4 x 64 MiB faulted in: every segment anew
    assert retained["minor_faults"] < plain["minor_faults"] / 4, (plain, retained)


def test_streaming_keeps_nothing_per_block_in_the_heap():
    """What a long stream accumulates (the VAD) goes to one off-heap store, not one small array per
    block: small arrays kept per block pinned the holes the network's temporary tensors left in the
    malloc heap, and peak RSS grew with the file length (issue 30 item 6). Python-visible heap
    memory (tracemalloc: Python objects and numpy data) must not grow by a block's worth per block
    (torch itself keeps about 90 bytes per chunk of Python objects: 1 chunk per 15 blocks here)."""
    import gc
    import tracemalloc

    import numpy as np
    import torch

    from csmvanet.infer.enhancer import Enhancer, StreamResult
    from csmvanet.nets import build_model

    torch.manual_seed(0)
    cfg = {"model": {"channels": [8, 16], "num_conformers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 7}}
    enh = Enhancer(build_model(cfg), cfg, segment_seconds=0.5, overlap_seconds=0.125)
    x = (np.random.default_rng(0).standard_normal(16000 * 60) * 0.1).astype(np.float32)
    used = {}

    def blocks():                                                         # 2400 blocks of 25 ms
        for k, i in enumerate(range(0, len(x), 400)):
            if k in (400, 2200):
                gc.collect()
                used[k] = tracemalloc.get_traced_memory()[0]
            yield x[i:i + 400, None]

    res = StreamResult()
    tracemalloc.start()
    try:
        for _ in enh.enhance_stream(blocks(), 16000, result=res):
            pass
    finally:
        tracemalloc.stop()
    assert res.vad.shape == (len(x) // 100 + 1, 1)                       # the VAD of the whole stream is all there
    assert used[2200] - used[400] < 64 * 1024, used                      # 1800 blocks: under 37 bytes each


_GUARD_CHILD = r"""
import json
import numpy as np
from csmvanet.base.memory import HeapGuard
g = HeapGuard(settle=1, margin=0.05)
g.check()                                          # the baseline
base = g.rss()
x = np.ones(64 << 18, np.float32)                  # 64 MiB from the heap, touched, then freed: kept
del x
kept = g.rss()
g.check()
print(json.dumps({"base": base, "kept": kept, "after": g.rss(), "trims": g.trims}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim: Linux only")
def test_heap_guard_returns_freed_memory_once_rss_grows_past_the_baseline():
    """Fragmentation made RSS rise in steps over a long file (issue 30 item 6): the guard trims the
    heap when RSS exceeds its baseline by 5 %, so growth does not add up."""
    p = subprocess.run([sys.executable, "-c", _GUARD_CHILD], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    page = os.sysconf("SC_PAGE_SIZE")
    assert (r["kept"] - r["base"]) * page > 60 << 20, r          # retained: freed memory still resident
    assert r["trims"] == 1 and (r["kept"] - r["after"]) * page > 60 << 20, r
