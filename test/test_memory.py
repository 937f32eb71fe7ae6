"""csmvanet.memory: freed memory is reused instead of being faulted in from the kernel per segment."""
import json
import subprocess
import sys

import pytest

_CHILD = r"""
import json, sys
import torch
from csmvanet.memory import cpu_usage
if sys.argv[1] == "enhancer":
    from csmvanet.enhance import Enhancer
    from csmvanet.nets import build_model
    Enhancer(build_model({"model": {"channels": [8], "num_conformers": 1, "heads": 1}}), {}, retain_memory=True)
elif sys.argv[1] == "retain":
    from csmvanet.memory import retain_freed_memory
    assert retain_freed_memory()
before = cpu_usage()["minor_faults"]
for _ in range(20):                    # what every segment does: large buffers allocated, filled, freed
    a = torch.ones(16 * 2 ** 20)                   # 64 MiB, above glibc's largest mmap threshold
    del a
print(json.dumps({"faults": cpu_usage()["minor_faults"] - before}))
"""


def _faults(mode: str) -> int:
    p = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])["faults"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt: Linux only")
def test_retained_memory_is_faulted_in_once_not_per_segment():
    pages = 64 * 2 ** 20 // 4096
    plain = _faults("plain")
    assert plain > 10 * pages                       # every allocation faults its pages in again
    assert _faults("retain") < 3 * pages            # the same pages serve every allocation
    assert _faults("enhancer") < 3 * pages          # Enhancer(retain_memory=True) turns it on
