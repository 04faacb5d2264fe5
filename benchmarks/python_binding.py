#!/usr/bin/python3
"""Benchmark of the Python package `ban` (not a test): what the binding adds to a call, and
how Python threads sharing one Model scale.

    /usr/bin/python3 benchmarks/python_binding.py [--rounds 9] [--calls 20] [--skip-paper]

Both models are written as the exporter writes them, weights in panels (no CBLAS call in a
forward pass: threads=1 is then all the work there is).

1. Per-call overhead, on a small random model (tools/random_model.py defaults: hidden 64,
   2 glimpses, 64-d features, 10 boxes) where it is not lost in the forward pass: the median
   time of Model.vqa(features, spatials, tokens=...) against the C API doing the same
   ban_forward on the same context and arrays, called through a bare ctypes call with its
   structures built beforehand. That bare call still costs the ctypes crossing itself, which
   is measured on a function that does nothing (ban_question_positions) and taken off, so the
   C figure is ban_forward's own time. Also Model.vqa(questions=[...]) (the tokenizer's calls
   added) and top_k=5. Batch 1 and 32; each round times every variant once, interleaved.
   Timed in the thread's CPU time (time.thread_time, threads=1 so that all the work is the
   calling thread's): on a shared machine the wall clock also counts the time other processes
   held the core, which swamps microseconds.
2. Throughput on the paper-size model (tools/random_model.py --preset paper-ban8: hidden 1280,
   8 glimpses, 2048-d features, 3,129 answers; 100 boxes, batch 1) of 1 and 2 Python threads
   calling one Model(threads=1) (a ThreadPoolExecutor; each thread its own context), in
   questions/s of wall time, next to the C API on one thread, with the process's CPU time per
   question and its CPU time over wall time (above 1 only when the threads run at once: the
   GIL is not held during the calls); medians over rounds, interleaved, in the same run.

Prints the machine and the figures; the load average before and after says how busy the
machine was (wall-time figures are not comparable across busy and idle runs).
"""
import argparse
import concurrent.futures
import ctypes
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import ban  # noqa: E402
import ban._native as native  # noqa: E402
import random_model  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vqa_pipeline import load, machine  # noqa: E402


def inputs(m, B, K, rng):
    c = m.config
    v = rng.random((B, K, c["feature_dim"]), dtype=np.float32)
    x1, y1 = rng.random((B, K), dtype=np.float32) * 0.5, rng.random((B, K), dtype=np.float32) * 0.5
    w, h = rng.random((B, K), dtype=np.float32) * 0.5, rng.random((B, K), dtype=np.float32) * 0.5
    b = np.stack([x1, y1, x1 + w, y1 + h, w, h], 2).astype(np.float32)
    words = [w for w in m.words[:200] if w.isalpha()]
    questions = [" ".join(words[int(j)] for j in rng.integers(0, len(words), 8)) + "?" for _ in range(B)]
    tokens, _ = m._question_tokens(questions)
    return v, b, tokens, questions


def bare_call(m, v, b, tokens):
    """ban_forward on the calling thread's context, with every structure built beforehand: what
    a C program pays, plus one ctypes crossing."""
    B, K = v.shape[:2]
    ctx = m._context(batch=B, boxes=K, tokens=tokens.shape[1])
    logits = np.empty((B, m.config["num_answers"]), np.float32)
    inp = native.Input(B, K, 0, None, v.ctypes.data, b.ctypes.data, None, None, tokens.shape[1], tokens.ctypes.data,
                       None, 0, None, None, 0)
    out = native.Output(logits.ctypes.data, None, None)
    fn, pi, po, pc = native.lib.ban_forward, ctypes.byref(inp), ctypes.byref(out), ctx.ptr

    def call():
        if fn(pc, pi, po) != 0:
            raise ban.Error(0, native.text(native.lib.ban_ctx_error(pc)))
    call.arrays = (v, b, tokens, logits, inp, out, ctx)  # the structures hold bare addresses: keep them alive
    return call, logits


def per_call(fn, n, clock=time.thread_time):
    t0 = clock()
    for _ in range(n):
        fn()
    return (clock() - t0) / n


def overhead(rounds, rng):
    work = tempfile.mkdtemp(prefix="ban-pybench-")
    try:
        path = os.path.join(work, "small.ban")
        meta, tensors = random_model.build(random_model.config_for(None), 0)
        random_model.banfile.write_ban(path, meta, random_model.banfile.with_layout(tensors, "panels"))
        m = ban.Model(path, threads=1)
        noop = native.lib.ban_question_positions
        handle = m._handle.ptr
        crossing = [per_call(lambda: noop(handle, 14), 20000) for _ in range(rounds)]
        cross = statistics.median(crossing)
        print("\nper-call overhead: small random model (hidden 64, 2 glimpses, 64-d features, 10 boxes), threads=1; "
              "a ctypes crossing (ban_question_positions) costs %.2f us" % (cross * 1e6))
        print("| batch | C API: ban_forward (us) | Model.vqa(tokens=) (us) | overhead (us) | overhead / C | "
              "vqa(questions=) (us) | vqa(tokens=, top_k=5) (us) |")
        print("|---|---|---|---|---|---|---|")
        for B in (1, 32):
            v, b, tokens, questions = inputs(m, B, 10, rng)
            bare, logits = bare_call(m, v, b, tokens)
            bare()
            assert np.array_equal(logits, m.vqa(v, b, tokens=tokens).logits)  # the same computation
            variants = {"c": bare, "tokens": lambda: m.vqa(v, b, tokens=tokens),
                        "questions": lambda: m.vqa(v, b, questions=questions),
                        "top5": lambda: m.vqa(v, b, tokens=tokens, top_k=5)}
            n = 2000 if B == 1 else 200
            times = {k: [] for k in variants}
            for k in variants:
                per_call(variants[k], n // 10)  # warm up
            for _ in range(rounds):
                for k, fn in variants.items():
                    times[k].append(per_call(fn, n))
            med = {k: statistics.median(t) for k, t in times.items()}
            c = med["c"] - cross
            print("| %d | %.1f | %.1f | %.1f | %.0f%% | %.1f | %.1f |" % (
                B, c * 1e6, med["tokens"] * 1e6, (med["tokens"] - c) * 1e6, 100 * (med["tokens"] - c) / c,
                med["questions"] * 1e6, med["top5"] * 1e6))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def throughput(rounds, calls, rng, model_threads=1):
    work = tempfile.mkdtemp(prefix="ban-pybench-")
    try:
        path = os.path.join(work, "ban8.ban")
        t0 = time.perf_counter()
        meta, tensors = random_model.build(random_model.config_for("paper-ban8"), 0)
        random_model.banfile.write_ban(path, meta, random_model.banfile.with_layout(tensors, "panels"))
        del tensors
        print("\nthroughput: paper-ban8 (%.0f MB, written in %.1f s), 100 boxes, batch 1, Model(threads=%d)" % (
            os.path.getsize(path) / 1e6, time.perf_counter() - t0, model_threads))
        m = ban.Model(path, threads=model_threads)
        work_items = [inputs(m, 1, 100, rng) for _ in range(8)]

        def one(i):
            v, b, tokens, _ = work_items[i % len(work_items)]
            return m.vqa(v, b, tokens=tokens).answer_ids[0]
        bare = bare_call(m, *work_items[0][:3])[0]
        pools = {t: concurrent.futures.ThreadPoolExecutor(t) for t in (1, 2)}
        for t, pool in pools.items():  # every thread's context made, the pages of the model read
            list(pool.map(one, range(2 * t)))
        res = {k: [] for k in ("c", 1, 2)}  # (questions/s of wall time, CPU s per question, CPU / wall)
        load0 = load()
        for _ in range(rounds):
            for k in res:
                t0, c0 = time.perf_counter(), time.process_time()
                if k == "c":
                    per_call(bare, calls)
                else:
                    list(pools[k].map(one, range(calls * k)))
                wall, cpu, n = time.perf_counter() - t0, time.process_time() - c0, calls * (1 if k == "c" else k)
                res[k].append((n / wall, cpu / n, cpu / wall))
        for pool in pools.values():
            pool.shutdown()
        med = {k: [statistics.median(r[i] for r in v) for i in range(3)] for k, v in res.items()}
        print("| | questions/s (wall) | vs C API | CPU ms/question | CPU time / wall time |")
        print("|---|---|---|---|---|")
        for k, name in [("c", "C API (ban_forward), 1 thread"), (1, "Model.vqa, 1 Python thread"),
                        (2, "Model.vqa, 2 Python threads")]:
            print("| %s | %.2f | %.2f | %.1f | %.2f |" % (name, med[k][0], med[k][0] / med["c"][0], 1e3 * med[k][1],
                                                        med[k][2]))
        print("medians of %d rounds of %d calls a thread; 2 threads / 1 thread: %.2fx (wall); spread of questions/s "
              "over rounds: 1 thread %.2f..%.2f, 2 threads %.2f..%.2f; load average %s before, %s after" % (
                  rounds, calls, med[2][0] / med[1][0], min(r[0] for r in res[1]), max(r[0] for r in res[1]),
                  min(r[0] for r in res[2]), max(r[0] for r in res[2]), load0, load()))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=9, help="rounds of every variant (medians over them)")
    ap.add_argument("--calls", type=int, default=20, help="paper-size calls per thread per round")
    ap.add_argument("--skip-paper", action="store_true", help="only the per-call overhead")
    ap.add_argument("--model-threads", type=int, default=1,
                    help="Model(threads=N) of the throughput part (default 1; 0: every context uses every processor, "
                         "more threads than cores once two Python threads call)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("machine: %s; NumPy %s; %s; load average %s" % (machine(), np.__version__, ban.library(), load()))
    overhead(args.rounds, rng)
    if not args.skip_paper:
        throughput(args.rounds, args.calls, rng, args.model_threads)


if __name__ == "__main__":
    main()
