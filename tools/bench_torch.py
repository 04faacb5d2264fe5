#!/usr/bin/env python3
"""The PyTorch side of `make bench`: the same BAN configuration in PyTorch eager mode.

    python3 tools/bench_torch.py --preset paper-ban8 --batch 1 --threads 2 [--boxes 100] [--runs N] [--json]

The model is the project's own PyTorch BAN (tools/ban_torch.py, the numerics ban.h matches:
the parity tests check it against the reference's golden vectors) at the paper's size
(hidden 1280, 8 glimpses, 2048-d features, 3,129 answers, two 300-d embeddings, counter), random
weights, eval mode, torch.inference_mode(), the given number of intra-op threads. Reports the
median time of repeated forward passes after two warm-up passes, twice: as the reference runs
(weight normalisation recomputed on every forward pass by its hooks) and with weight
normalisation folded into plain weights (torch.nn.utils.remove_weight_norm), which is what
ban.h runs and the fairer baseline.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
from torch.nn.utils import remove_weight_norm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ban_torch as bt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper-ban8", choices=["paper-ban8"])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--boxes", type=int, default=100)
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, K, P, V = args.batch, args.boxes, 14, 19901
    model = bt.BanVQA(V, 2048, 1280, 8, 3129, op="c", counter_objects=10).eval()
    v = torch.rand(B, K, 2048)
    xy = torch.rand(B, K, 2) * 0.7
    wh = torch.rand(B, K, 2) * 0.2 + 0.05
    b = torch.cat([xy, xy + wh, wh], 2)
    q = torch.randint(0, V, (B, P))
    q[:, 9:] = V
    runs = args.runs or (5 if B >= 16 else 15)

    def timed():
        times = []
        with torch.inference_mode():
            for r in range(runs + 2):
                t0 = time.perf_counter()
                model(v, b, q)
                if r >= 2:
                    times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        return times[len(times) // 2]

    med = timed()
    for module in model.modules():  # fold g * v / ||v|| into plain weights, as ban_export.py does
        for name in ("weight", "h_mat"):
            if hasattr(module, name + "_g"):
                remove_weight_norm(module, name)
    med_folded = timed()
    out = {"preset": args.preset, "framework": "pytorch %s eager" % torch.__version__, "batch": B, "boxes": K,
           "threads": args.threads, "runs": runs, "ms_per_question": round(med / B, 3),
           "questions_per_s": round(1000.0 * B / med, 2), "ms_per_question_folded": round(med_folded / B, 3),
           "questions_per_s_folded": round(1000.0 * B / med_folded, 2),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}
    if args.json:
        print(json.dumps(out))
    else:
        print("pytorch paper-ban8: batch %d, %d threads: %.3f ms per question as trained (weight norm recomputed), "
              "%.3f ms with weight norm folded" % (B, args.threads, out["ms_per_question"],
                                                   out["ms_per_question_folded"]))


if __name__ == "__main__":
    main()
