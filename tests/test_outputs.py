"""What build/ban writes goes through one writer (examples/util.h): a temporary beside the
destination, created exclusively under an unpredictable name, never through a link, fsynced
and renamed; a destination that is not a regular file is written in place; messages name the
user's path and the system's reason; a signal leaves no temporary behind."""
import os
import signal
import stat
import subprocess
import time

import numpy as np
import pytest

from conftest import ROOT, ban_binary, fixture_path, run_ban
from vqa_files import GOLDEN_IDS, golden_fields, golden_store, leftovers, questions_json, write_json, write_tsv

G2 = np.load(fixture_path("ban_ref_g2.npz"))
EASYVQA = os.path.join(ROOT, "examples", "models", "easyvqa.ban")


def save(folder, name, arr):
    path = folder / (name + ".npy")
    np.save(path, arr)
    return str(path)


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    return {"v": save(d, "v", G2["v"]), "b": save(d, "b", G2["b"]), "q": save(d, "q", G2["q"])}


def run(exported, inputs, *outputs, check=False, env=None, **kw):
    args = ["run", exported["g2"], "--features", inputs["v"], "--spatials", inputs["b"], "--tokens", inputs["q"]]
    return run_ban(*args, *outputs, check=check, env=env, **kw)


def test_logits_written_whole_and_temporaries_gone(tmp_path, exported, inputs):
    out = tmp_path / "o"
    out.mkdir()
    proc = run(exported, inputs, "--logits", out / "l.npy", "--attention", out / "a.npy", "--entropy", out / "e.npy",
               "--answers-out", out / "answers.txt", check=True)
    assert proc.stderr == ""
    assert np.abs(np.load(out / "l.npy") - G2["logits"]).max() <= 1e-4
    assert sorted(os.listdir(out)) == ["a.npy", "answers.txt", "e.npy", "l.npy"]


def test_device_is_written_in_place_never_replaced(tmp_path, exported, inputs):
    before = os.stat("/dev/null")
    proc = run(exported, inputs, "--logits", "/dev/null", "--answers-out", "/dev/null", check=True)
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    assert not [n for n in os.listdir("/dev") if n.startswith(".null.")]
    # the other writers too: a feature store, a results file
    tsv = write_tsv(tmp_path / "a.tsv", [golden_fields(0)])
    run_ban("features", "import", "--tsv", tsv, "--output", "/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.stat("/dev/null").st_ino == before.st_ino
    proc = run(exported, inputs, "--logits", "/dev/full", check=False)
    assert proc.returncode == 1 and proc.stderr == "ban: error: /dev/full: cannot write: No space left on device\n"


def test_stdout_and_fifo_are_written_in_place(tmp_path, exported, inputs):
    proc = run(exported, inputs, "--logits", tmp_path / "l.npy", "--answers-out", "-", check=True)
    assert len(proc.stdout.split("\n")) == 7
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    run(exported, inputs, "--logits", fifo, check=True)
    data = reader.communicate(timeout=60)[0]
    assert data.startswith(b"\x93NUMPY") and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert data == open(tmp_path / "l.npy", "rb").read()


def test_a_link_at_the_destination_is_replaced_not_followed(tmp_path, exported, inputs):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    link = tmp_path / "l.npy"
    os.symlink(victim, link)
    run(exported, inputs, "--logits", link, check=True)
    assert victim.read_text() == "keep me\n"
    assert not os.path.islink(link) and np.abs(np.load(link) - G2["logits"]).max() <= 1e-4


PRELOAD = r"""
#include <stddef.h>
#include <sys/types.h>
/* getrandom returning the same byte FILL_ALL times, then the next byte: predictable names */
static unsigned calls;
ssize_t getrandom(void *buf, size_t n, unsigned flags)
{
    unsigned char *b = buf;
    (void)flags;
    for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(calls < FILL_ALL ? 0 : calls);
    calls++;
    return (ssize_t)n;
}
"""


def predictable_names(tmp_path, repeat):
    """An LD_PRELOAD library that makes the writer's first `repeat` names '.NAME.aaaaaaaaaaaa'."""
    src, lib = tmp_path / "preload.c", tmp_path / ("preload%d.so" % repeat)
    src.write_text(PRELOAD)
    proc = subprocess.run(["cc", "-shared", "-fPIC", "-DFILL_ALL=%d" % repeat, "-o", str(lib), str(src)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip("no C compiler for the preload library: " + proc.stderr)
    return str(lib)


def preloading(lib):
    """The environment that preloads lib (under AddressSanitizer too, which wants to be first)."""
    return {"LD_PRELOAD": lib, "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}


def test_a_planted_link_at_the_temporary_is_never_followed(tmp_path, exported, inputs):
    """An attacker who guesses the temporary's name and plants a link there: the writer's
    exclusive create refuses the name (it never writes through the link) and takes another."""
    out = tmp_path / "o"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    planted = out / ".l.npy.aaaaaaaaaaaa"
    os.symlink(victim, planted)
    run(exported, inputs, "--logits", out / "l.npy", check=True, env=preloading(predictable_names(tmp_path, 1)))
    assert victim.read_text() == "keep me\n" and os.path.islink(planted)
    assert np.abs(np.load(out / "l.npy") - G2["logits"]).max() <= 1e-4
    # every name taken: an error naming the destination, never the temporary; the victim intact
    dangling = out / ".m.npy.aaaaaaaaaaaa"
    os.symlink(tmp_path / "nothing-here", dangling)
    proc = run(exported, inputs, "--logits", out / "m.npy", env=preloading(predictable_names(tmp_path, 1000)))
    assert proc.returncode == 1
    assert proc.stderr == "ban: error: %s: cannot create: File exists\n" % (out / "m.npy")
    assert not os.path.exists(tmp_path / "nothing-here") and not os.path.exists(out / "m.npy")
    assert victim.read_text() == "keep me\n"


def test_names_are_unpredictable(tmp_path, exported, inputs):
    """The temporaries of two runs (each held open while it waits for its questions) have
    different random names."""
    names = set()
    for _ in range(2):
        proc = subprocess.Popen([ban_binary(), "run", exported["g2"], "--features", inputs["v"], "--spatials",
                                 inputs["b"], "--logits", str(tmp_path / "l.npy"), "--questions", "/dev/stdin"],
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        tmp = wait_for_temporary(tmp_path, ".l.npy.", proc)
        names.add(tmp)
        proc.kill()
        proc.wait()
        os.unlink(tmp_path / tmp)
    assert len(names) == 2 and all(len(n) == len(".l.npy.") + 12 for n in names)


def test_mode_follows_the_umask(tmp_path, exported, inputs):
    for mask, mode in ((0o022, 0o644), (0o027, 0o640), (0o002, 0o664)):
        path = tmp_path / ("l%o.npy" % mask)
        proc = subprocess.run([ban_binary(), "run", exported["g2"], "--features", inputs["v"], "--spatials",
                               inputs["b"], "--tokens", inputs["q"], "--logits", str(path)],
                              preexec_fn=lambda m=mask: os.umask(m), capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert stat.S_IMODE(os.stat(path).st_mode) == mode, (oct(mask), oct(os.stat(path).st_mode))


def unwritable_folder(tmp_path):
    """A folder this process cannot create files in: /sys for root (mode bits do not stop root)."""
    if os.geteuid() == 0:
        try:
            os.close(os.open("/sys/.ban-probe", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except PermissionError:
            return "/sys"
        except OSError:
            pass
        pytest.skip("no folder root cannot write in")
    d = tmp_path / "ro"
    d.mkdir()
    os.chmod(d, 0o555)
    return str(d)


@pytest.mark.parametrize("where,reason", [("unwritable", "Permission denied"),
                                          ("missing", "No such file or directory")])
def test_errors_name_the_path_and_the_reason(tmp_path, exported, inputs, where, reason):
    folder = unwritable_folder(tmp_path) if where == "unwritable" else str(tmp_path / "no" / "such")
    path = os.path.join(folder, "x.npy")
    proc = run(exported, inputs, "--logits", path)
    assert proc.returncode == 1
    assert proc.stderr == "ban: error: %s: cannot create: %s\n" % (path, reason)
    # the same message from every writer: a store, a results file, a picture, a predictions file
    tsv = write_tsv(tmp_path / "a.tsv", [golden_fields(0)])
    store = os.path.join(folder, "x.store")
    proc = run_ban("features", "import", "--tsv", tsv, "--output", store, check=False)
    assert proc.returncode == 1 and "ban: error: %s: cannot create: %s\n" % (store, reason) in proc.stderr
    png = os.path.join(folder, "att.png")
    image = tmp_path / "img"
    run_ban("demo", "--out", image)
    proc = run_ban("ask", EASYVQA, "--image", image / "shape0.png", "--question", "what shape is in the image?",
                   "--attention-png", png, check=False)
    # checked before any work: no answer printed
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == "ban: error: %s: cannot create: %s\n" % (png, reason)
    proc = run_ban("vqa", exported["g2"], "--features", "nowhere.store", "--questions", "nowhere.json", "--output",
                   os.path.join(folder, "r.json"), check=False)
    assert proc.returncode == 1 and proc.stderr == "ban: error: %s/r.json: cannot create: %s\n" % (folder, reason)


def test_a_folder_as_destination(tmp_path, exported, inputs):
    proc = run(exported, inputs, "--logits", tmp_path)
    assert proc.returncode == 1 and proc.stderr == "ban: error: %s: cannot write: Is a directory\n" % tmp_path


# ---- signals ----------------------------------------------------------------------------------------

def wait_for_temporary(folder, prefix, proc):
    """The name of the temporary the process has open in folder (polled until it appears)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [n for n in os.listdir(folder) if n.startswith(prefix)]
        if found:
            return found[0]
        if proc.poll() is not None:
            pytest.fail("ban exited (%s) before its temporary was seen: %s" % (proc.returncode, proc.stderr.read()))
        time.sleep(0.001)
    pytest.fail("no temporary %s* in %s" % (prefix, folder))


@pytest.fixture(scope="module")
def many_questions(tmp_path_factory):
    """A store of the six golden images and 30,000 questions about them: a run of some seconds."""
    tmp = tmp_path_factory.mktemp("signals")
    store = golden_store(tmp)
    items = [(i, GOLDEN_IDS[i % 6], "what color is the shirt the man is wearing?") for i in range(30000)]
    return {"store": str(store), "questions": str(write_json(tmp / "q.json", questions_json(items)))}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_during_vqa_leaves_no_temporary(tmp_path, exported, many_questions, sig):
    out = tmp_path / "results"
    out.mkdir()
    (out / "results.json").write_text("old results\n")
    proc = subprocess.Popen([ban_binary(), "vqa", exported["g2"], "--features", many_questions["store"],
                             "--questions", many_questions["questions"], "--output", str(out / "results.json"),
                             "--attention", str(out / "att")], stderr=subprocess.PIPE, text=True)
    wait_for_temporary(out, ".results.json.", proc)
    while not os.path.isdir(out / "att") or not os.listdir(out / "att"):  # into the batches, attention files too
        if proc.poll() is not None:
            pytest.fail("ban vqa ended before it was signalled: " + proc.stderr.read())
        time.sleep(0.001)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    proc.stderr.close()
    assert proc.returncode == -sig
    assert leftovers(out) == ["att", "results.json"] and (out / "results.json").read_text() == "old results\n"
    assert not [n for n in os.listdir(out / "att") if n.startswith(".")]


def test_a_signal_during_run_leaves_no_temporary(tmp_path, exported, inputs):
    """ban run with its outputs open (created before any work) and its questions still coming."""
    out = tmp_path / "o"
    out.mkdir()
    proc = subprocess.Popen([ban_binary(), "run", exported["g2"], "--features", inputs["v"], "--spatials",
                             inputs["b"], "--questions", "/dev/stdin", "--logits", str(out / "l.npy"), "--attention",
                             str(out / "a.npy"), "--answers-out", str(out / "answers.txt")],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(b"what color is the shirt?\n")
    proc.stdin.flush()
    for name in ("l.npy", "a.npy", "answers.txt"):
        wait_for_temporary(out, "." + name + ".", proc)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGTERM and os.listdir(out) == []


def test_an_ignored_signal_stays_ignored(tmp_path, exported, inputs):
    """nohup's SIGHUP: the writer's handler does not take it over."""
    out = tmp_path / "o"
    out.mkdir()
    proc = subprocess.Popen([ban_binary(), "run", exported["g2"], "--features", inputs["v"], "--spatials",
                             inputs["b"], "--questions", "/dev/stdin", "--logits", str(out / "l.npy")],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    wait_for_temporary(out, ".l.npy.", proc)
    proc.send_signal(signal.SIGHUP)
    time.sleep(0.2)
    assert proc.poll() is None  # still running, waiting for its questions
    proc.stdin.write(b"\n".join([b"what color is the shirt?"] * 6) + b"\n")
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    assert os.listdir(out) == ["l.npy"]
