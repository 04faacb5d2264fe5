#!/usr/bin/env python3
"""`make bench`: ban.h and PyTorch side by side on the paper's BAN configuration and on
OpenVQA's BAN-8, and ban.h's f32, bf16 and int8 weights side by side.

    python3 benchmarks/run.py [--build build] [--threads 2] [--batches 1,32] [--dtypes f32,bf16,int8]
                              [--presets paper-ban8,openvqa-ban8] [--rounds 3] [--no-torch]

For each preset and batch size: `rounds` rounds of `build/ban bench --preset P --dtype D` for
every dtype, one after the other within a round (so that the machine's state is shared by the
dtypes compared), each the median of its own forward passes; a dtype's figure is the median
over the rounds, and its speed-up the median over the rounds of f32's time / its time in the
same round. Then tools/bench_torch.py (PyTorch eager, f32, same configuration and threads:
the reference's module structure for paper-ban8, OpenVQA's for openvqa-ban8).
Prints a table: ms per question, speed-up, the CPU time per question (every thread's, which
other processes on the machine do not inflate) and its speed-up, GFLOP/s (the f32 FLOPs of the
model's products, whatever the dtype), file size, peak RSS, load time, the kernel, and
PyTorch's time.
"""
import argparse
import json
import os
import statistics
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
    ap.add_argument("--dtypes", default="f32,bf16,int8")
    ap.add_argument("--presets", default="paper-ban8,openvqa-ban8")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--boxes", type=int, default=100)
    ap.add_argument("--no-torch", action="store_true", help="ban.h only")
    args = ap.parse_args()
    dtypes = args.dtypes.split(",")
    for preset in args.presets.split(","):
        preset_table(args, preset, dtypes)
        print()


def preset_table(args, preset, dtypes):
    table = []
    for B in [int(x) for x in args.batches.split(",")]:
        rounds = []
        for _ in range(args.rounds):
            rounds.append({d: run([os.path.join(args.build, "ban"), "bench", "--preset", preset, "--batch", str(B),
                                   "--threads", str(args.threads), "--boxes", str(args.boxes), "--dtype", d, "--json"])
                           for d in dtypes})
        t = None if args.no_torch else run([sys.executable, os.path.join(ROOT, "tools", "bench_torch.py"), "--preset",
                                            preset, "--batch", str(B), "--threads", str(args.threads), "--boxes",
                                            str(args.boxes), "--json"])
        for d in dtypes:
            ms = [r[d]["ms_per_question"] for r in rounds]
            med = lambda key: statistics.median(r[d][key] for r in rounds)  # noqa: E731
            speedup = statistics.median(r[dtypes[0]]["ms_per_question"] / r[d]["ms_per_question"] for r in rounds)
            cpu_speedup = statistics.median(r[dtypes[0]]["cpu_ms_per_question"] / r[d]["cpu_ms_per_question"]
                                            for r in rounds)
            table.append((B, d, rounds[0][d]["kernel"], statistics.median(ms), min(ms), max(ms), speedup,
                          med("cpu_ms_per_question"), cpu_speedup, med("gflops"), med("sgemm_gflops"),
                          rounds[0][d]["model_mb"], med("peak_rss_mb"), med("load_ms"), t if d == dtypes[0] else None))
    what = {"paper-ban8": "hidden 1280, 8 glimpses, 2048-d features, %d boxes, 14 tokens, 3,129 answers, counter",
            "openvqa-ban8": "OpenVQA's: hidden 1024, K_TIMES 3 in every glimpse, 8 glimpses, 2048-d features, %d boxes, "
                            "14 tokens, 3,129 answers"}[preset] % args.boxes
    print("%s (%s), %d threads; medians of %d rounds" % (preset, what, args.threads, args.rounds))
    print()
    print("| batch | weights | kernel | ms/question (range over rounds) | speed-up vs %s (same round) | CPU ms/question "
          "| CPU speed-up | GFLOP/s | sgemm GFLOP/s (same products, f32) | file MB | peak RSS MB | load ms | PyTorch "
          "ms/question, weight norm folded (as trained) | speed-up vs PyTorch folded |" % dtypes[0])
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for B, d, kernel, ms, lo, hi, sp, cpu, csp, gf, sg, mb, rss, load, t in table:
        torch = "%.2f (%.2f)" % (t["ms_per_question_folded"], t["ms_per_question"]) if t else ""
        vs = "%.2fx" % (t["ms_per_question_folded"] / ms) if t else ""
        print("| %d | %s | %s | %.2f (%.2f-%.2f) | %.2fx | %.2f | %.2fx | %.1f | %.1f | %.1f | %d | %.1f | %s | %s |" % (
            B, d, kernel, ms, lo, hi, sp, cpu, csp, gf, sg, mb, rss, load, torch, vs))
    print()
    print("GFLOP per question: %.3f (the model's matrix products, as a forward pass records them: ban_ctx_record)"
          % rounds[0][dtypes[0]]["gflop_per_question"])


if __name__ == "__main__":
    main()
