"""Under make asan: the binding's tests (tests/test_python.py) again, in a Python with
AddressSanitizer's runtime preloaded, since build-asan/libban.so loads into no other; every
pointer and size the binding hands to ban.h is checked there. Skipped for a build without it."""
import os
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT

LIBRARY = os.environ.get("BAN_LIBRARY") or os.path.join(BUILD, "libban.so")


def needs_asan(path):
    """A library built with AddressSanitizer loads only into a process that has its runtime first."""
    if not os.path.exists(path):
        return False
    with open(path, "rb") as f:
        built_with = b"libasan.so" in f.read()
    with open("/proc/self/maps") as f:
        return built_with and "libasan" not in f.read()


pytestmark = pytest.mark.skipif(not needs_asan(LIBRARY), reason="%s is not built with AddressSanitizer" % LIBRARY)


def test_the_binding_under_addresssanitizer():
    runtime = subprocess.run(["cc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, LD_PRELOAD=runtime, BAN_LIBRARY=LIBRARY,
               ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1")  # Python itself leaks at exit
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           os.path.join(ROOT, "tests", "test_python.py")], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)
    assert proc.returncode == 0 and " passed" in proc.stdout and "skipped" not in proc.stdout, \
        proc.stdout[-3000:] + proc.stderr[-3000:]
