#!/usr/bin/python3
"""The PyTorch side of `make bench`: the same BAN configuration in PyTorch eager mode.

    python3 tools/bench_torch.py --preset paper-ban8|openvqa-ban8 --batch 1 --threads 2 [--boxes 100] [--runs N] [--json]

The model is the project's own PyTorch BAN (tools/ban_torch.py, the numerics ban.h matches:
the parity tests check it against the reference's golden vectors) at the paper's size
(hidden 1280, 8 glimpses, 2048-d features, 3,129 answers, two 300-d embeddings, counter), random
weights, eval mode, torch.inference_mode(), the given number of intra-op threads. Reports the
median time of repeated forward passes after two warm-up passes, twice: as the reference runs
(weight normalisation recomputed on every forward pass by its hooks) and with weight
normalisation folded into plain weights (torch.nn.utils.remove_weight_norm), which is what
ban.h runs and the fairer baseline.

--preset openvqa-ban8 times OpenVQA's BAN-8 for VQA-v2 instead, in OpenVQA's own module structure
(tools/openvqa_torch.py, checked against OpenVQA's golden vectors): hidden 1024, K_TIMES 3 (every
glimpse network projects to 3 * 1024 and sum-pools), 8 glimpses, 2048-d features, 3,129 answers,
FLAT_OUT 2048, one 300-d embedding, no counter; questions of 14 tokens, PAD (0) after the ninth.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ban_torch as bt  # noqa: E402
import openvqa_torch as ot  # noqa: E402

PRESETS = ["paper-ban8", "openvqa-ban8"]
VOCABULARY = 19901  # the reference's; the size does not change the time (one row looked up per token)


def build(preset, B, K):
    """(model in eval mode, its forward pass on random inputs of batch B and K boxes)."""
    v = torch.rand(B, K, 2048)
    if preset == "openvqa-ban8":
        cfg = ot.Cfg("vqa", hidden=1024, glimpses=8, k_times=3, feat_dim=2048, flat_out=2048)
        model = ot.Net(cfg, VOCABULARY, 3129).eval()
        q = torch.randint(0, VOCABULARY, (B, 14))
        q[:, 9:] = 0  # OpenVQA pads with PAD = 0 and runs the GRU over it
        return model, lambda: model(v, None, None, q)
    model = bt.BanVQA(VOCABULARY, 2048, 1280, 8, 3129, op="c", counter_objects=10).eval()
    xy = torch.rand(B, K, 2) * 0.7
    wh = torch.rand(B, K, 2) * 0.2 + 0.05
    b = torch.cat([xy, xy + wh, wh], 2)
    q = torch.randint(0, VOCABULARY, (B, 14))
    q[:, 9:] = VOCABULARY  # the reference's padding id
    return model, lambda: model(v, b, q)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper-ban8", choices=PRESETS)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--boxes", type=int, default=100)
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    B, K = args.batch, args.boxes
    model, forward = build(args.preset, B, K)
    runs = args.runs or (5 if B >= 16 else 15)

    def timed():
        times = []
        with torch.inference_mode():
            for r in range(runs + 2):
                t0 = time.perf_counter()
                forward()
                if r >= 2:
                    times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        return times[len(times) // 2]

    med = timed()
    ot.fold_weight_norm(model)  # g * v / ||v|| into plain weights, as ban_export.py does
    med_folded = timed()
    out = {"preset": args.preset, "framework": "pytorch %s eager" % torch.__version__, "batch": B, "boxes": K,
           "threads": args.threads, "runs": runs, "ms_per_question": round(med / B, 3),
           "questions_per_s": round(1000.0 * B / med, 2), "ms_per_question_folded": round(med_folded / B, 3),
           "questions_per_s_folded": round(1000.0 * B / med_folded, 2),
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}
    if args.json:
        print(json.dumps(out))
    else:
        print("pytorch %s: batch %d, %d threads: %.3f ms per question as trained (weight norm recomputed), "
              "%.3f ms with weight norm folded" % (args.preset, B, args.threads, out["ms_per_question"],
                                                   out["ms_per_question_folded"]))


if __name__ == "__main__":
    main()
