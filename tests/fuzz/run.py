#!/usr/bin/env python3
"""Run the fuzz targets of tests/fuzz (standard library only).

    run.py tap  [--build DIR] [--seconds N]      TAP for tests/run_tests.py (make test)
    run.py fuzz [--build DIR] [--seconds N] [TARGET...]   make fuzz: N seconds per target

A target NAME is tests/fuzz/fuzz_NAME.c, with seeds in corpus/NAME/ and the inputs that
once broke it in regressions/NAME/. The Makefile builds, in DIR/fuzz/, replay_NAME (any
compiler, the build's flags) and, when clang's libFuzzer is there, fuzz_NAME. A target
tests/fuzz/fuzz_NAME.py (the Python tools') is its own fuzzer and replayer (`replay DIR...`,
`fuzz --seconds N --runs N --seed S --crashes DIR [--corpus DIR] DIR...`), run the same way.

`tap` prints two lines per target: the seeds and regressions replayed through replay_NAME
(always), and a libFuzzer pass from those seeds: at most 5,000 inputs a target, with a fixed
seed so that every run tries the same ones, within N seconds shared among the targets
(FUZZ_TEST_SECONDS, default 30; a "# SKIP" line when there is no libFuzzer or N is 0).
Invoked as DIR/test_fuzz (a symlink the Makefile makes), it finds DIR by itself.

`fuzz` fuzzes each target for N seconds (FUZZ_SECONDS, default 60), keeping what it
learns in DIR/fuzz/corpus/NAME/ across runs. Crashes land in DIR/fuzz/crashes/NAME/;
replay one with DIR/fuzz/replay_NAME FILE, fix the code, and commit the input to
tests/fuzz/regressions/NAME/ so that every later `make test` replays it.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.realpath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# libFuzzer settings: a slow input (seconds) and a single allocation (MB) beyond these are
# failures; a model file of a few KB has no business asking for more
LIBFUZZER_ARGS = ["-timeout=20", "-rss_limit_mb=2048", "-malloc_limit_mb=512", "-print_final_stats=1"]
TAP_RUNS = 5000  # inputs per target in make test's pass (within its time share)


def targets(ext=".c"):
    return sorted(os.path.basename(p)[len("fuzz_"):-len(ext)] for p in glob.glob(os.path.join(HERE, "fuzz_*" + ext)))


def python_fuzz(name, args):
    """Run the Python target fuzz_NAME.py with the tests' interpreter (make passes PYTHON: run as
    build/test_fuzz, this script has whichever python3 comes first); returns (ok, its last line, output)."""
    python = os.environ.get("PYTHON") or sys.executable
    proc = subprocess.run([python, os.path.join(HERE, "fuzz_%s.py" % name)] + args, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    lines = proc.stdout.strip().splitlines()
    return proc.returncode == 0, lines[-1] if lines else "exit %d" % proc.returncode, proc.stdout


def input_dirs(name):
    """The committed inputs of a target: its seeds and its regressions (those that exist)."""
    dirs = [os.path.join(HERE, sub, name) for sub in ("corpus", "regressions")]
    return [d for d in dirs if os.path.isdir(d)]


def count_files(dirs):
    return sum(len([f for f in os.listdir(d) if not f.startswith(".")]) for d in dirs)


def have_libfuzzer(build):
    try:
        with open(os.path.join(build, "fuzz", "have-libfuzzer")) as f:
            return f.read().strip() == "yes"
    except OSError:
        return False


def tail(text, lines=25):
    return "\n".join("#   " + line for line in text.strip().splitlines()[-lines:])


def libfuzzer(build, name, seconds, corpus, extra=()):
    """Fuzz one target; returns (ok, summary, output)."""
    binary = os.path.join(build, "fuzz", "fuzz_" + name)
    crashes = os.path.join(build, "fuzz", "crashes", name)
    os.makedirs(crashes, exist_ok=True)
    args = [binary, "-max_total_time=%d" % seconds, "-artifact_prefix=%s/" % crashes] + LIBFUZZER_ARGS
    dictionary = os.path.join(HERE, "fuzz_%s.dict" % name)
    if os.path.exists(dictionary):
        args.append("-dict=" + dictionary)
    args += list(extra) + [corpus] + input_dirs(name)
    start = time.time()
    proc = subprocess.run(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace")
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stdout)
    cov = re.findall(r"#\d+\s+\w+\s+cov: (\d+)", proc.stdout)
    summary = "%s runs in %.0f s, coverage %s" % (runs[-1] if runs else "?", time.time() - start,
                                                 cov[-1] if cov else "?")
    if proc.returncode != 0:
        found = re.findall(r"Test unit written to (\S+)", proc.stdout)
        summary = "failed (exit %d)%s" % (proc.returncode, ": input in " + found[-1] if found else "")
    return proc.returncode == 0, summary, proc.stdout


def cmd_tap(args):
    build = args.build
    names, py_names = targets(), targets(".py")
    seconds = args.seconds
    fuzzing = have_libfuzzer(build)
    per_target = max(2, seconds // max(1, len(names) + len(py_names))) if seconds > 0 else 0
    print("1..%d" % (2 * (len(names) + len(py_names))))
    n = failed = 0
    for name in names:
        dirs = input_dirs(name)
        replay = os.path.join(build, "fuzz", "replay_" + name)
        n += 1
        if not os.access(replay, os.X_OK):
            print("not ok %d - fuzz %s: %s is missing (make builds it)" % (n, name, replay))
            failed += 1
        else:
            proc = subprocess.run([replay] + dirs, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, errors="replace")
            what = "%d seeds and regressions replayed" % count_files(dirs)
            if proc.returncode == 0:
                print("ok %d - fuzz %s: %s" % (n, name, what))
            else:
                print("not ok %d - fuzz %s: %s (exit %d)\n%s" % (n, name, what, proc.returncode, tail(proc.stdout)))
                failed += 1
        n += 1
        if not fuzzing:
            print("ok %d - fuzz %s: libFuzzer pass # SKIP no clang with libFuzzer (FUZZ_CC; Debian: "
                  "clang libclang-rt-14-dev)" % (n, name))
            continue
        if per_target == 0:
            print("ok %d - fuzz %s: libFuzzer pass # SKIP FUZZ_TEST_SECONDS=0" % (n, name))
            continue
        if not os.access(os.path.join(build, "fuzz", "fuzz_" + name), os.X_OK):
            print("not ok %d - fuzz %s: %s/fuzz/fuzz_%s is missing" % (n, name, build, name))
            failed += 1
            continue
        work = tempfile.mkdtemp(prefix="ban-fuzz-")
        try:
            # a fixed seed and run count: every make test tries the same inputs (or, on a slower
            # machine, a prefix of them), so CI sees what a passing run here saw; make fuzz explores
            ok, summary, output = libfuzzer(build, name, per_target, work, ["-seed=1", "-runs=%d" % TAP_RUNS])
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if ok:
            print("ok %d - fuzz %s: libFuzzer %s" % (n, name, summary))
        else:
            print("not ok %d - fuzz %s: libFuzzer %s\n%s" % (n, name, summary, tail(output)))
            failed += 1
        sys.stdout.flush()
    for name in py_names:
        dirs = input_dirs(name)
        for what, extra in (("%d seeds and regressions replayed" % count_files(dirs), ["replay"]),
                            ("mutation pass", ["fuzz", "--seconds", str(per_target), "--runs", str(TAP_RUNS),
                                               "--seed", "1", "--crashes",
                                               os.path.join(build, "fuzz", "crashes", name)])):
            n += 1
            if extra[0] == "fuzz" and per_target == 0:
                print("ok %d - fuzz %s: %s # SKIP FUZZ_TEST_SECONDS=0" % (n, name, what))
                continue
            ok, summary, output = python_fuzz(name, extra + dirs)
            if ok:
                print("ok %d - fuzz %s: %s (%s)" % (n, name, what, summary))
            else:
                print("not ok %d - fuzz %s: %s\n%s" % (n, name, what, tail(output)))
                failed += 1
            sys.stdout.flush()
    return 1 if failed else 0


def cmd_fuzz(args):
    build = args.build
    known = targets() + targets(".py")
    names = args.targets or known
    unknown = set(names) - set(known)
    if unknown:
        print("no such fuzz target: %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(known)))
        return 2
    if set(names) & set(targets()) and not have_libfuzzer(build):
        print("make fuzz needs clang's libFuzzer (FUZZ_CC; Debian: apt-get install clang libclang-rt-14-dev)")
        return 1
    bad = []
    for name in names:
        corpus = os.path.join(build, "fuzz", "corpus", name)
        os.makedirs(corpus, exist_ok=True)
        print("== fuzz %s for %d s (corpus %s)" % (name, args.seconds, os.path.relpath(corpus, ROOT)), flush=True)
        if name in targets(".py"):
            ok, summary, output = python_fuzz(name, ["fuzz", "--seconds", str(args.seconds), "--corpus", corpus,
                                                     "--crashes", os.path.join(build, "fuzz", "crashes", name),
                                                     corpus] + input_dirs(name))
        else:
            ok, summary, output = libfuzzer(build, name, args.seconds, corpus)
        print("   %s" % summary)
        if not ok:
            print(tail(output, 40))
            bad.append(name)
    if bad:
        print("crashes in: %s. Replay with %s/fuzz/replay_NAME FILE; after the fix, commit the input to "
              "tests/fuzz/regressions/NAME/." % (", ".join(bad), build))
        return 1
    print("no crashes in %s" % ", ".join(names))
    return 0


def main():
    invoked_as = os.path.abspath(sys.argv[0])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    tap = sub.add_parser("tap", help="TAP lines for make test")
    fuzz = sub.add_parser("fuzz", help="fuzz for longer (make fuzz)")
    for p, env, default in ((tap, "FUZZ_TEST_SECONDS", 30), (fuzz, "FUZZ_SECONDS", 60)):
        p.add_argument("--build", default=None, help="the build folder (default: build)")
        p.add_argument("--seconds", type=int, default=int(os.environ.get(env, default)))
    fuzz.add_argument("targets", nargs="*")
    # as DIR/test_fuzz, run_tests.py calls us without arguments
    if len(sys.argv) == 1 and os.path.basename(invoked_as) == "test_fuzz":
        args = ap.parse_args(["tap", "--build", os.path.dirname(invoked_as)])
    else:
        args = ap.parse_args()
    if not args.cmd:
        ap.print_help()
        return 2
    args.build = os.path.abspath(args.build or os.path.join(ROOT, "build"))
    return cmd_tap(args) if args.cmd == "tap" else cmd_fuzz(args)


if __name__ == "__main__":
    sys.exit(main())
