#!/usr/bin/env python3
"""`make bench`: ban.h and PyTorch side by side on the paper's BAN configuration.

    python3 benchmarks/run.py [--build build] [--threads 2] [--batches 1,32] [--markdown]

Runs `build/ban bench --preset paper-ban8` (ban.h, with the machine's sgemm on the same
products measured in the same run) and tools/bench_torch.py (PyTorch eager, same
configuration and threads) for each batch size, one after the other, and prints a table.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), out.stderr))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--boxes", type=int, default=100)
    ap.add_argument("--no-torch", action="store_true", help="ban.h only")
    args = ap.parse_args()
    rows = []
    for B in [int(x) for x in args.batches.split(",")]:
        c = run([os.path.join(args.build, "ban"), "bench", "--preset", "paper-ban8", "--batch", str(B), "--threads",
                 str(args.threads), "--boxes", str(args.boxes), "--json"])
        t = None if args.no_torch else run([sys.executable, os.path.join(ROOT, "tools", "bench_torch.py"), "--batch",
                                            str(B), "--threads", str(args.threads), "--boxes", str(args.boxes),
                                            "--json"])
        rows.append((c, t))
    print("paper-ban8 (hidden 1280, 8 glimpses, 2048-d features, %d boxes, 14 tokens, 3,129 answers, counter), "
          "%d threads, fp32" % (args.boxes, args.threads))
    print()
    print("| batch | ban.h ms/question | PyTorch ms/question, weight norm folded (as trained) | speed-up vs folded "
          "(vs as trained) | ban.h GFLOP/s | sgemm GFLOP/s (same products) | efficiency | peak RSS MB | model load ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c, t in rows:
        print("| %d | %.2f | %s | %s | %.1f | %.1f | %.1f%% | %d | %.2f |" % (
            c["batch"], c["ms_per_question"],
            "%.2f (%.2f)" % (t["ms_per_question_folded"], t["ms_per_question"]) if t else "-",
            "%.2fx (%.2fx)" % (t["ms_per_question_folded"] / c["ms_per_question"],
                               t["ms_per_question"] / c["ms_per_question"]) if t else "-",
            c["gflops"], c["sgemm_gflops"], 100 * c["efficiency"], c["peak_rss_mb"], c["load_ms"]))
    print()
    print("GFLOP per question: %.3f (the model's matrix products, counted from the configuration)"
          % rows[0][0]["gflop_per_question"])


if __name__ == "__main__":
    main()
