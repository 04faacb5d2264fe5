#!/usr/bin/env python3
"""fuzz_torchfile.py - the fuzz target of tools/torchfile.py: a mutation fuzzer in Python
(atheris, libFuzzer for Python, is not available here), run by tests/fuzz/run.py like the C targets.

    fuzz_torchfile.py replay FILE|DIR...            every input must pass the checks below
    fuzz_torchfile.py fuzz [--seconds N] [--runs N] [--seed S] [--crashes DIR] [--corpus DIR] DIR...
    fuzz_torchfile.py seeds                         rewrite corpus/torchfile and regressions/torchfile

An input is any file. torchfile reads it as a checkpoint (load_checkpoint and load_state_dict)
and as a plain pickle (load_pickle); each of these calls must
  * return, or raise CheckpointError: any other exception is a failure;
  * allocate at most its budget: tracemalloc's peak against BUDGET_FACTOR times the input
    plus BUDGET_FLOOR, which this process lowers to FUZZ_FLOOR so that every charge the
    loader makes is tested against what Python really allocates, not hidden under 32 MB;
  * hand back plain data only (dicts, lists, tuples, sets, strings, bytes, numbers, arrays).
The whole process runs with its address space capped (what it uses after start-up plus
HEADROOM), so that an amplification the budget misses is a MemoryError, a failure, and an
input taking more than TIMEOUT seconds is one too.

`fuzz` mutates the inputs of the folders given (bits, bytes, interesting integers, insertions,
deletions, repeats, splices; a zip archive also member by member, re-zipped with valid CRCs so
that the pickle inside is what changes), keeps each mutant whose outcome is new (an error
message not seen before, numbers left out) as material for more, and stops at the first failing
input, written to --crashes (default build/fuzz/crashes/torchfile). A fixed --seed and --runs
try the same inputs on every run. Replay one with `fuzz_torchfile.py replay FILE`; once fixed,
commit it to regressions/torchfile/ so that every `make test` replays it.
"""
import argparse
import collections
import hashlib
import io
import os
import random
import re
import resource
import signal
import sys
import tempfile
import time
import tracemalloc
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import numpy as np  # noqa: E402
import torchfile  # noqa: E402

FUZZ_FLOOR = 4 << 20  # the budget's floor in this process (torchfile's own is 32 MB)
HEADROOM = 1 << 30    # address space beyond what the process uses after start-up
TIMEOUT = 20          # seconds an input may take (a few KB take milliseconds)
LOADERS = (torchfile.load_checkpoint, torchfile.load_state_dict, torchfile.load_pickle)
PLAIN = (dict, collections.OrderedDict, list, tuple, set, frozenset, str, bytes, bytearray, int, float, bool,
         type(None), np.ndarray)


class Failure(Exception):
    """An input that breaks a property."""


def plain(obj, depth=0):
    """Raise Failure unless obj is plain data, nested at most MAX_DEPTH (+1 for load_state_dict's pair)."""
    if type(obj) not in PLAIN:
        raise Failure("returned a %s" % type(obj).__name__)
    if depth > torchfile.MAX_DEPTH + 1:
        raise Failure("returned containers nested %d deep" % depth)
    if isinstance(obj, dict):
        for v in obj.values():
            plain(v, depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            plain(v, depth + 1)


def _timed_out(signum, frame):
    raise TimeoutError("took more than %d s" % TIMEOUT)


def check(path):
    """Run every loader on the file at path; returns the outcome (for the fuzzer's feedback), or
    raises Failure."""
    limit = torchfile.BUDGET_FACTOR * os.path.getsize(path) + torchfile.BUDGET_FLOOR
    outcomes = []
    for load in LOADERS:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        signal.alarm(TIMEOUT)
        try:
            obj = load(path)
            outcomes.append("ok")
        except torchfile.CheckpointError as e:
            obj = None
            outcomes.append(re.sub(r"\d+|'[^']*'", "#", str(e).replace(path, "FILE")))
        except Exception as e:
            raise Failure("%s raised %s: %s" % (load.__name__, type(e).__name__, str(e)[:300])) from None
        finally:
            signal.alarm(0)
        peak = tracemalloc.get_traced_memory()[1] - base
        if peak > limit:
            raise Failure("%s allocated %d bytes, beyond its budget of %d" % (load.__name__, peak, limit))
        if obj is not None:
            plain(obj)
            del obj
    return " | ".join(outcomes)


def inputs(paths):
    for p in paths:
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                if not name.startswith(".") and not name.endswith(".md"):
                    yield os.path.join(p, name)
        else:
            yield p


def setup():
    """Cap the address space, lower the budget's floor, start tracing allocations."""
    with open("/proc/self/status") as f:
        size = int(re.search(r"VmSize:\s*(\d+) kB", f.read()).group(1)) << 10
    resource.setrlimit(resource.RLIMIT_AS, (size + HEADROOM, resource.getrlimit(resource.RLIMIT_AS)[1]))
    torchfile.BUDGET_FLOOR = FUZZ_FLOOR
    signal.signal(signal.SIGALRM, _timed_out)
    tracemalloc.start()


# ---- mutations --------------------------------------------------------------------------------------

INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x20000000, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1,
               2 ** 60, 2 ** 63 - 1, 2 ** 64 - 1]
OPCODES = sorted(set(b"(.0125FIJKLMNPQRSTUVXabcdeghijlopqrstu}]),GBC") | set(range(0x80, 0x99)))


def mutate_bytes(rng, data, pool):
    data = bytearray(data)
    for _ in range(1 + min(7, int(rng.expovariate(0.7)))):
        n = len(data)
        kind = rng.randrange(9)
        pos = rng.randrange(n) if n else 0
        if kind == 0 and n:
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == 1 and n:
            data[pos] = rng.choice((0, 1, 0x7f, 0x80, 0xff, rng.randrange(256)))
        elif kind == 2 and n:
            width = rng.choice((1, 2, 4, 8))
            value = rng.choice(INTERESTING) % (1 << 8 * width)
            data[pos:pos + width] = value.to_bytes(width, rng.choice(("little", "big")))
        elif kind == 3:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 4:
            data[pos:pos] = bytes([rng.choice(OPCODES)])
        elif kind == 5 and n:
            del data[pos:pos + rng.randint(1, 64)]
        elif kind == 6 and n:
            chunk = data[pos:pos + rng.randint(1, 256)]
            data[pos:pos] = chunk * rng.randint(1, 64)  # repetition: nesting, many items
        elif kind == 7 and pool:
            other = rng.choice(pool)
            cut = rng.randrange(len(other) + 1)
            data[pos:] = other[cut:cut + rng.randint(1, 4096)]
        elif kind == 8 and n:
            del data[rng.randrange(n):]
    return bytes(data)


def mutate_zip(rng, data, pool):
    """A mutation of one member of a zip archive, rezipped (stored, CRCs right); None if the
    input is no readable zip."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = [(i.filename, z.read(i)) for i in z.infolist()]
    except Exception:
        return None
    if not members:
        return None
    pick = rng.randrange(len(members))
    if rng.random() < 0.1:
        del members[pick]
    else:
        members[pick] = (members[pick][0], mutate_bytes(rng, members[pick][1], pool))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, member in members:
            z.writestr(name, member)
    return out.getvalue()


def mutate(rng, data, pool):
    if data[:2] == b"PK" and rng.random() < 0.7:
        mutant = mutate_zip(rng, data, pool)
        if mutant is not None:
            return mutant
    return mutate_bytes(rng, data, pool)


# ---- commands ---------------------------------------------------------------------------------------

def cmd_replay(args):
    setup()
    failed = n = 0
    for path in inputs(args.paths):
        n += 1
        try:
            check(path)
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (os.path.relpath(path, ROOT), e))
    print("%d inputs replayed, %d failed" % (n, failed))
    return 1 if failed else 0


def cmd_fuzz(args):
    setup()
    rng = random.Random(args.seed)
    pool = []
    for path in inputs(args.paths):
        with open(path, "rb") as f:
            pool.append(f.read())
    if not pool:
        print("no inputs in %s" % ", ".join(args.paths))
        return 2
    seen = set()
    work = tempfile.mkdtemp(prefix="ban-fuzz-torchfile-")
    target = os.path.join(work, "input")
    start, runs = time.time(), 0
    try:
        while runs < args.runs and time.time() - start < args.seconds:
            data = mutate(rng, rng.choice(pool), pool)
            runs += 1
            with open(target, "wb") as f:
                f.write(data)
            try:
                outcome = check(target)
            except Failure as e:
                os.makedirs(args.crashes, exist_ok=True)
                crash = os.path.join(args.crashes, "crash-" + hashlib.sha1(data).hexdigest())
                with open(crash, "wb") as f:
                    f.write(data)
                print("failure after %d runs: %s\ninput written to %s" % (runs, e, crash))
                return 1
            if outcome not in seen:
                seen.add(outcome)
                if len(pool) < 2000:
                    pool.append(data)
                if args.corpus:
                    os.makedirs(args.corpus, exist_ok=True)
                    with open(os.path.join(args.corpus, hashlib.sha1(data).hexdigest()), "wb") as f:
                        f.write(data)
    finally:
        for name in os.listdir(work):
            os.unlink(os.path.join(work, name))
        os.rmdir(work)
    print("%d runs in %.0f s, %d outcomes" % (runs, time.time() - start, len(seen)))
    return 0


def cmd_seeds(args):
    """The seeds (made with PyTorch, as real files are) and the regressions (built by hand, as
    tests/test_torchfile.py builds them: the hostile inputs of issue 17, kept small)."""
    import pickle
    import torch
    sys.path.insert(0, os.path.dirname(HERE))
    import test_torchfile as T

    def write(folder, name, data):
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)

    def saved(obj, legacy):
        out = io.BytesIO()
        torch.save(obj, out, _use_new_zipfile_serialization=not legacy)
        return out.getvalue()

    seeds = os.path.join(HERE, "corpus", "torchfile")
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    state = collections.OrderedDict([
        ("module.w", base), ("module.t", base.t()), ("module.narrow", base[1:, 1:3]), ("module.half", base.half()[0]),
        ("module.bf16", base.bfloat16()[:, 0]), ("module.long", torch.arange(3)), ("module.expanded",
                                                                                  torch.ones(1).expand(5)),
        ("module.scalar", torch.tensor(2.5))])
    for legacy in (False, True):
        kind = "legacy" if legacy else "zip"
        write(seeds, "ref_%s.pth" % kind, saved({"epoch": 3, "model_state": state}, legacy))
        torch.manual_seed(0)
        write(seeds, "openvqa_%s.pkl" % kind, saved(T.openvqa_like(torch, not legacy, "module." * legacy), legacy))
    write(seeds, "dictionary.pkl", pickle.dumps([{"what": 0, "is": 1, "caf\u00e9": 2}, ["what", "is", "caf\u00e9"]], 4))
    write(seeds, "label2ans.pkl", pickle.dumps(["yes", "no", "2"], 4))
    plain_obj = {"i": [0, -1, 255, 65535, 2 ** 31, 2 ** 70], "f": 1.5, "s": "text", "t": (1, (2,)), "n": None,
                 "b": [True, False], 3: {}}
    write(seeds, "protocol0.pkl", pickle.dumps(plain_obj, 0))
    write(seeds, "protocol5.pkl", pickle.dumps(dict(plain_obj, set={1, "a"}, fs=frozenset({2}), by=b"x",
                                                    ba=bytearray(b"y"), od=collections.OrderedDict(k=[1])), 5))
    # a legacy storage view, which torch no longer writes
    write(seeds, "legacy_view.pth", T.legacy_bytes(
        T.checkpoint_pickle([(T.text("w"), T.tensor((2,), (1,), numel=4, legacy=True, view=("v", 1, 2)))]),
        [("0", 4, np.arange(4, dtype="<f4").tobytes())]))

    regressions = os.path.join(HERE, "regressions", "torchfile")
    one = T.tensor((1,), (1,))

    def zipped(pkl, storages=T.FLOAT1, entries=None):
        return T.raw_zip(entries or [T.stored("archive/data.pkl", pkl)]
                         + [T.stored("archive/data/" + k, v) for k, v in storages.items()])

    write(regressions, "deep-tuple-key.pkl", T.deep_tuple_key(1000))
    write(regressions, "deep-marks.pkl", b"\x80\x02" + b"(" * 1000 + b".")
    write(regressions, "list-appended-to-itself.pkl", b"\x80\x02]q\x00h\x00a.")
    write(regressions, "memo-index-2-to-the-29.pkl", b"\x80\x02K\x01r\x00\x00\x00\x20.")
    write(regressions, "zero-strides-60000x20000.pth",
          zipped(T.checkpoint_pickle([(T.text("w"), T.tensor((60000, 20000), (0, 0)))])))
    write(regressions, "view-one-past-the-end.pth", zipped(T.checkpoint_pickle([(T.text("w"), T.tensor((2,), (1,)))])))
    pkl = T.checkpoint_pickle([(T.text("w"), one)])
    write(regressions, "entry-declares-4-gib.pth", zipped(pkl, {}, [T.stored("archive/data.pkl", pkl),
                                                                    ("archive/data/0", b"\x03\0", 8, 0, 0, 4095 << 20)]))
    write(regressions, "entry-encrypted.pth", zipped(pkl, {}, [T.stored("archive/data.pkl", pkl),
                                                               ("archive/data/0", b"\0\0\x80\x3f", 0, 1, None, None)]))
    write(regressions, "entry-method-99.pth", zipped(pkl, {}, [T.stored("archive/data.pkl", pkl),
                                                               ("archive/data/0", b"\0\0\x80\x3f", 99, 0, None, None)]))
    write(regressions, "legacy-count-10-to-the-5000.pth", T.legacy_bytes(
        T.checkpoint_pickle([(T.text("w"), T.tensor((1,), (1,), numel=10 ** 5000, legacy=True))]),
        [("0", 1, T.FLOAT1["0"])]))
    write(regressions, "surrogate-in-a-word.pkl", b"\x80\x02(" + T.dictionary((T.text("\ud800"), T.integer(0)))
          + b"]l.")
    write(regressions, "build-on-a-storage-type.pth",
          zipped(b"\x80\x02" + T.name("torch", "FloatStorage") + T.dictionary((T.text("dtype"), T.integer(1)))
                 + b"b."))
    print("wrote %s and %s" % (os.path.relpath(seeds, ROOT), os.path.relpath(regressions, ROOT)))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    replay = sub.add_parser("replay", help="check every input given")
    replay.add_argument("paths", nargs="+")
    fuzz = sub.add_parser("fuzz", help="mutate the inputs of the folders given")
    fuzz.add_argument("paths", nargs="+")
    fuzz.add_argument("--seconds", type=float, default=60)
    fuzz.add_argument("--runs", type=int, default=10 ** 9)
    fuzz.add_argument("--seed", type=int, default=None)
    fuzz.add_argument("--crashes", default=os.path.join(ROOT, "build", "fuzz", "crashes", "torchfile"))
    fuzz.add_argument("--corpus", help="a folder to keep the inputs with new outcomes in")
    sub.add_parser("seeds", help="rewrite the seeds and regressions")
    args = ap.parse_args()
    return {"replay": cmd_replay, "fuzz": cmd_fuzz, "seeds": cmd_seeds}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
