#!/usr/bin/env python3
"""`make accuracy`: what bf16 and int8 weights change in the answers, measured.

    python3 benchmarks/accuracy.py [--build build] [--questions 2000] [--images 2000] [--work DIR]

1. The paper-size model (`ban bench --preset paper-ban8`'s random model, f32), quantized with
   `ban quantize` to bf16 and int8, on N generated questions (random ReLU-like box features,
   100 boxes, 9 random words padded to 14): the largest logit error relative to each
   question's spread of logits (max - min), the top-1 agreement with f32, and how close
   f32's first two answers were where the answer changed.
2. The golden fixtures (build/fixtures, exported by tests/prepare_fixtures.py in f32, bf16 and
   int8) against the reference's own outputs: the same two figures.
3. The committed easy-VQA model quantized: accuracy on the official test split and on images
   freshly drawn by tools/gen_easyvqa.py (seed 15), and the answers that differ from f32.
Prints a Markdown table of each (benchmarks/README.md records them).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from vqa_pipeline import easyvqa_dir  # noqa: E402

DTYPES = ("bf16", "int8")


def ban(build, *args):
    out = subprocess.run([os.path.join(build, "ban")] + [str(a) for a in args], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit("failed: ban %s\n%s" % (" ".join(map(str, args)), out.stderr))
    return out.stdout


def compare(ref, got, valid=None):
    """(largest error / spread over the rows, fraction of rows whose argmax agrees); rows of
    `ref` (..., A); valid: a mask of the entries that count (grounding's -99 padding)."""
    ref, got = ref.reshape(-1, ref.shape[-1]), got.reshape(-1, got.shape[-1])
    if valid is None:
        valid = np.ones_like(ref, bool)
    valid = valid.reshape(ref.shape)
    keep = valid.sum(1) > 1
    ref, got, valid = ref[keep], got[keep], valid[keep]
    lo = np.where(valid, ref, np.inf).min(1)
    hi = np.where(valid, ref, -np.inf).max(1)
    err = np.where(valid, np.abs(got - ref), 0).max(1)
    top = np.where(valid, ref, -np.inf).argmax(1) == np.where(valid, got, -np.inf).argmax(1)
    two = np.sort(np.where(valid, ref, -np.inf), 1)[:, -2:]
    gap = (two[:, 1] - two[:, 0]) / (hi - lo)  # the reference's margin between its first two answers
    return float((err / (hi - lo)).max()), float(top.mean()), int(len(top)), float(gap[~top].max()) if (~top).any() else 0.0


def paper_model(args, work):
    f32 = os.path.join(work, "paper_f32.ban")
    ban(args.build, "bench", "--preset", "paper-ban8", "--runs", 1, "--boxes", 10, "--threads", args.threads,
        "--json", "--model-out", f32)
    paths = {"f32": f32}
    for d in DTYPES:
        paths[d] = os.path.join(work, "paper_%s.ban" % d)
        ban(args.build, "quantize", f32, "--dtype", d, "--output", paths[d])
    rng = np.random.default_rng(2000)
    logits = {d: [] for d in paths}
    for start in range(0, args.questions, args.chunk):
        n = min(args.chunk, args.questions - start)
        v = np.abs(rng.uniform(-1, 1, (n, 100, 2048))).astype(np.float32)
        xy = rng.uniform(0, 0.7, (n, 100, 2))
        wh = rng.uniform(0.05, 0.3, (n, 100, 2))
        b = np.concatenate([xy, xy + wh, wh], -1).astype(np.float32)
        q = np.full((n, 14), 19901, np.int32)
        q[:, :9] = rng.integers(0, 19901, (n, 9))
        for name, arr in (("v", v), ("b", b), ("q", q)):
            np.save(os.path.join(work, name + ".npy"), arr)
        for d, path in paths.items():
            out = os.path.join(work, "l_%s.npy" % d)
            ban(args.build, "run", path, "--features", os.path.join(work, "v.npy"), "--spatials",
                os.path.join(work, "b.npy"), "--tokens", os.path.join(work, "q.npy"), "--logits", out, "--batch", 32)
            logits[d].append(np.load(out))
    ref = np.concatenate(logits["f32"])
    rows = []
    for d in DTYPES:
        rel, top, n, gap = compare(ref, np.concatenate(logits[d]))
        rows.append(("paper-ban8, random weights, %d generated questions" % n, d, rel, top, gap))
    return rows


def golden(args):
    fx = os.path.join(args.build, "fixtures")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for d in DTYPES:
            out = os.path.join(work, "g2.npy")
            ban(args.build, "run", os.path.join(fx, "g2_%s.ban" % d), "--features", os.path.join(fx, "g2_v.npy"),
                "--spatials", os.path.join(fx, "g2_b.npy"), "--tokens", os.path.join(fx, "g2_q.npy"), "--logits", out)
            rel, top, n, gap = compare(np.load(os.path.join(fx, "g2_logits.npy")), np.load(out))
            rows.append(("golden VQA fixture (reference's logits), %d questions" % n, d, rel, top, gap))
        for d in DTYPES:
            out = os.path.join(work, "fl.npy")
            ban(args.build, "run", os.path.join(fx, "flickr_%s.ban" % d), "--features",
                os.path.join(fx, "flickr_v.npy"), "--spatials", os.path.join(fx, "flickr_b.npy"), "--tokens",
                os.path.join(fx, "flickr_q.npy"), "--entities", os.path.join(fx, "flickr_e.npy"), "--logits", out)
            ref = np.load(os.path.join(fx, "flickr_att_logits.npy"))  # (B, G, K, E): a map over K per entity
            ref_t, got_t = np.moveaxis(ref, 2, 3), np.moveaxis(np.load(out), 2, 3)
            rel, top, n, gap = compare(ref_t, got_t, ref_t > -99)
            rows.append(("golden grounding fixture (reference's logits), %d entities" % n, d, rel, top, gap))
    return rows


def easyvqa(args, work):
    model = os.path.join(ROOT, "examples", "models", "easyvqa.ban")
    data = easyvqa_dir()
    fresh = os.path.join(work, "fresh")
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_easyvqa.py"), "--output", fresh, "--images",
                    str(args.images), "--seed", "15"], check=True, capture_output=True)
    paths = {"f32": model}
    for d in DTYPES:
        paths[d] = os.path.join(work, "easy_%s.ban" % d)
        ban(args.build, "quantize", model, "--dtype", d, "--output", paths[d])
    rows = []
    for split, folder in (("official test split", os.path.join(data, "test")), ("fresh images (gen_easyvqa.py)", fresh)):
        pred, res = {}, {}
        for d, path in paths.items():
            out = os.path.join(work, "pred_%s.txt" % d)
            res[d] = json.loads(ban(args.build, "easyvqa-eval", "--model", path, "--data", folder, "--json",
                                    "--predictions-out", out))
            pred[d] = open(out).read().split("\n")
        for d in paths:
            differ = sum(a != b for a, b in zip(pred[d], pred["f32"]))
            rows.append((split, d, res[d]["questions"], res[d]["accuracy"], differ))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--questions", type=int, default=2000)
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", help="a folder for the models and arrays (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        logit_rows = golden(args) + paper_model(args, work)
        easy_rows = easyvqa(args, work)
    print("| model, inputs | dtype | largest logit error / spread | top-1 agreement | where the answer changed, "
          "f32's margin between its first two answers / spread, at most |")
    print("|---|---|---|---|---|")
    for what, d, rel, top, gap in logit_rows:
        print("| %s | %s | %.4f | %.2f%% | %s |" % (what, d, rel, 100 * top, "%.4f" % gap if top < 1 else "-"))
    print()
    print("| easy-VQA model, questions | dtype | questions | accuracy | answers other than f32's |")
    print("|---|---|---|---|---|")
    for split, d, n, acc, differ in easy_rows:
        print("| %s | %s | %d | %.3f%% | %d |" % (split, d, n, acc, differ))


if __name__ == "__main__":
    main()
