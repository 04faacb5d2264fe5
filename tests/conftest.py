"""Shared pytest fixtures: where the build is, how to call build/ban, the golden files."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BAN_BUILD", os.path.join(ROOT, "build"))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
sys.path.insert(0, os.path.join(ROOT, "tools"))


def fixture_path(name):
    return os.path.join(FIXTURES, name)


def ban_binary():
    path = os.path.join(BUILD, "ban")
    if not os.access(path, os.X_OK):
        pytest.fail("%s is missing: run make first" % path)
    return path


def run_ban(*args, check=True, stdin=None, timeout=300, env=None):
    """Run build/ban (env: variables to add); with check=True a non-zero exit fails the test
    with its stderr."""
    proc = subprocess.run([ban_binary()] + [str(a) for a in args], input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **env) if env else None)
    if check and proc.returncode != 0:
        pytest.fail("ban %s exited %d:\n%s" % (" ".join(map(str, args)), proc.returncode, proc.stderr))
    return proc


def sanitized(binary):
    """True when binary is built with AddressSanitizer (make asan), whose shadow memory needs terabytes
    of address space: no cap on it can hold."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def run_ban_capped(megabytes, *args, timeout=120):
    """build/ban with its address space capped at megabytes (all of it: the model, OpenBLAS, the
    inputs), so that an allocation a small input does not justify fails the run instead of passing
    slowly; OpenBLAS on one thread (its threads spin when an mmap fails). Under AddressSanitizer
    the run is not capped."""
    import resource
    binary = ban_binary()
    cap = None if sanitized(binary) else (megabytes << 20, megabytes << 20)
    return subprocess.run([binary] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, OPENBLAS_NUM_THREADS="1"),
                          preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_AS, cap)) if cap else None)


def fuzz_report(target, path, **env):
    """The lines build/fuzz/replay_TARGET prints for one file, with env (its FUZZ_*_REPORT switch)
    set; a failed property of the target (it aborts) fails the test."""
    binary = os.path.join(BUILD, "fuzz", "replay_" + target)
    if not os.access(binary, os.X_OK):
        pytest.fail("%s is missing: run make test (or make %s)" % (binary, binary))
    proc = subprocess.run([binary, str(path)], env=dict(os.environ, **env), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """The golden checkpoints exported once per session: {'g2', 'g2_legacy', 'flickr'} -> path, in
    the default layout (panels); 'g2_rows' and 'flickr_rows' in rows."""
    import ban_export
    out = tmp_path_factory.mktemp("exported")
    paths = {}
    for name, ckpt, dic, ans in [("g2", "ban_ref_g2.pth", "ban_ref_g2.dictionary.pkl", "ban_ref_g2.label2ans.pkl"),
                                 ("g2_legacy", "ban_ref_g2.legacy.pth", "ban_ref_g2.dictionary.pkl",
                                  "ban_ref_g2.label2ans.pkl"),
                                 ("flickr", "ban_ref_flickr.pth", "ban_ref_flickr.dictionary.pkl", None)]:
        paths[name] = str(out / (name + ".ban"))
        ban_export.export(fixture_path(ckpt), paths[name], fixture_path(dic), fixture_path(ans) if ans else None)
    for name, ckpt, dic, ans in [("g2_rows", "ban_ref_g2.pth", "ban_ref_g2.dictionary.pkl", "ban_ref_g2.label2ans.pkl"),
                                 ("flickr_rows", "ban_ref_flickr.pth", "ban_ref_flickr.dictionary.pkl", None)]:
        paths[name] = str(out / (name + ".ban"))
        ban_export.export(fixture_path(ckpt), paths[name], fixture_path(dic), fixture_path(ans) if ans else None,
                          layout="rows")
    return paths
