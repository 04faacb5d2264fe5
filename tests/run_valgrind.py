#!/usr/bin/env python3
"""Run the C tests, the fuzz replays and build/ban's main paths under valgrind (make valgrind).

    python3 tests/run_valgrind.py [--build DIR] [--jobs N]

Each program runs under
    valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
with the suppressions of tests/valgrind.supp (none are needed today; the file says why
any would be), and passes when valgrind reports no error (invalid read or write, use of
uninitialised memory, a definite or indirect leak) and the program exits as expected:
0, or 1 with the expected message for a model file `ban` must refuse. valgrind's own
report goes to DIR/valgrind/NAME.log. Prints one line per run, then "N passed, N failed".
"""
import argparse
import concurrent.futures
import glob
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VALGRIND = ["valgrind", "--error-exitcode=1", "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
            "--suppressions=" + os.path.join(HERE, "valgrind.supp")]


def runs(build):
    """(name, argv, expected exit status, text expected on stderr) of every run."""
    fx = os.path.join(build, "fixtures")
    ban = os.path.join(build, "ban")
    out = os.path.join(build, "valgrind")
    f = lambda name: os.path.join(fx, name)  # noqa: E731
    items = []
    for prog in sorted(glob.glob(os.path.join(build, "test_*"))):
        name = os.path.basename(prog)
        if name == "test_fuzz" or not os.access(prog, os.X_OK) or prog.endswith((".o", ".xml")):
            continue  # test_fuzz is libFuzzer's business; its replays run below
        argv = [prog, fx]
        if name == "test_threads":
            argv.append("100")  # 6 threads x 100 calls: valgrind runs one thread at a time
        items.append((name, argv, 0, None))
    for replay in sorted(glob.glob(os.path.join(build, "fuzz", "replay_*"))):
        target = os.path.basename(replay)[len("replay_"):]
        dirs = [d for d in (os.path.join(HERE, "fuzz", sub, target) for sub in ("corpus", "regressions"))
                if os.path.isdir(d)]
        items.append(("fuzz replay " + target, [replay] + dirs, 0, None))
    items += [
        ("ban info", [ban, "info", f("g2.ban")], 0, None),
        ("ban tokenize", [ban, "tokenize", f("g2.ban"), "--pad", "14", "What color is the man's shirt?"], 0, None),
        ("ban run (VQA, questions, every output)",
         [ban, "run", f("g2.ban"), "--features", f("g2_v.npy"), "--spatials", f("g2_b.npy"), "--questions",
          f("g2_questions.txt"), "--logits", os.path.join(out, "logits.npy"), "--attention",
          os.path.join(out, "att.npy"), "--entropy", os.path.join(out, "ent.npy"), "--answers-out",
          os.path.join(out, "answers.txt"), "--batch", "4"], 0, None),
        ("ban run (grounding)",
         [ban, "run", f("flickr.ban"), "--features", f("flickr_v.npy"), "--tokens", f("flickr_q.npy"),
          "--entities", f("flickr_e.npy"), "--entity-counts", f("flickr_entity_counts.npy"), "--logits",
          os.path.join(out, "g_logits.npy")], 0, None),
        ("ban info, a refused hostile file",
         [ban, "info", os.path.join(HERE, "fuzz", "corpus", "model", "cut_directory.ban")], 1,
         "data section offset"),
        ("ban run, a refused hostile file",
         [ban, "run", os.path.join(HERE, "fuzz", "corpus", "model", "cut_data.ban"), "--features", f("g2_v.npy"),
          "--questions", f("g2_questions.txt"), "--logits", os.path.join(out, "x.npy")], 1, "truncated?"),
        ("ban ask --attention-png (a picture: cairo, fontconfig)",
         [ban, "ask", os.path.join(ROOT, "examples", "models", "easyvqa.ban"), "--image",
          os.path.join(HERE, "fuzz", "corpus", "image", "rgb_5x3.png"), "--question", "what shape is in the image?",
          "--attention-png", os.path.join(out, "attention.png")], 0, None),
        ("simple", [os.path.join(build, "simple"), f("g2.ban"), f("g2_v.npy"), f("g2_b.npy"),
                    "What color is the man's shirt?"], 0, None),
    ]
    return items


def check(build, item):
    name, argv, want_rc, want_err = item
    log = os.path.join(build, "valgrind", re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") + ".log")
    start = time.time()
    proc = subprocess.run(VALGRIND + ["--log-file=" + log] + argv, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, errors="replace")
    with open(log, errors="replace") as fh:
        report = fh.read()
    summary = re.findall(r"ERROR SUMMARY: (\d+) errors", report)
    problems = []
    if not summary or summary[-1] != "0":
        problems.append("valgrind: %s errors (see %s)" % (summary[-1] if summary else "no report of",
                                                           os.path.relpath(log, ROOT)))
    if proc.returncode != want_rc:
        problems.append("exit status %d, expected %d" % (proc.returncode, want_rc))
    if want_err and want_err not in proc.stderr:
        problems.append("stderr lacks %r: %s" % (want_err, proc.stderr.strip()[:200]))
    if "not ok" in proc.stdout:
        problems.append("\n".join(line for line in proc.stdout.splitlines() if line.startswith("not ok")))
    return name, problems, time.time() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    os.makedirs(os.path.join(args.build, "valgrind"), exist_ok=True)
    items = runs(args.build)
    passed = failed = 0
    # OpenBLAS's thread pool only slows valgrind down (it runs one thread at a time), and so
    # do its FMA kernels: valgrind emulates each FMA instruction through a helper call, which
    # makes the Haswell kernels 10x slower than the AVX ones of Sandy Bridge (same results to
    # float rounding; ban.h's own code has no FMA unless built with -march)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    os.environ.setdefault("OPENBLAS_CORETYPE", "Sandybridge")
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for name, problems, seconds in pool.map(lambda it: check(args.build, it), items):
            if problems:
                failed += 1
                print("not ok - valgrind %s (%.0f s)\n#   %s" % (name, seconds, "\n#   ".join(problems)), flush=True)
            else:
                passed += 1
                print("ok - valgrind %s (%.0f s)" % (name, seconds), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
