"""Process set-up helpers."""
import subprocess
import sys

import pytest

# In a fresh process: a 256 MiB block is served by mmap and unmapped on
# free, so allocating it again page-faults every page; once the process
# retains its memory, its heap grows to the peak once (the first round
# after the setting may still fault: a small block allocated between the
# two can keep the second from fitting where the first was) and every
# later allocation reuses those pages.
REFAULTS = '''
import resource, torch
from infopro_mm.utils import retain_host_memory

def refaults():
    n = 256 * 2**20 // 4
    x = torch.empty(n); x.fill_(1.); del x
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    y = torch.empty(n); y.fill_(1.); del y
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

default = refaults()
applied = retain_host_memory()
refaults()
print(default, applied, max(refaults() for _ in range(3)))
'''


def _transparent_huge_pages_always() -> bool:
    try:
        with open('/sys/kernel/mm/transparent_hugepage/enabled') as f:
            return '[always]' in f.read()
    except OSError:
        return False


def test_retained_memory_is_reused_without_page_faults():
    if sys.platform != 'linux':
        pytest.skip('glibc malloc only')
    if _transparent_huge_pages_always():
        pytest.skip('huge pages fault 2 MiB at a time: too few to compare')
    out = subprocess.run([sys.executable, '-c', REFAULTS],
                         capture_output=True, text=True, check=True)
    default, applied, retained = out.stdout.split()
    if applied != 'True':
        pytest.skip('the C library is not glibc')
    assert int(default) > 50_000  # 65,536 pages of 4 KiB
    assert int(retained) < 1_000
