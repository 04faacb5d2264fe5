#!/usr/bin/python3
"""Benchmark of the VQA pipeline (not a test): TSV import MB/s and `ban vqa` questions/s.

    /usr/bin/python3 benchmarks/vqa_pipeline.py [--images 2000] [--questions-per-image 5]
        [--batch 32] [--workdir DIR] [--keep]

Generates, in the real formats, a bottom-up-attention TSV set of N images (10-100 boxes
of 2048-d float32 features each, base64, over two files as the Karpathy split's .tsv.0
and .tsv.1) and an official questions file with about 5 questions per image; writes a
model of the paper's configuration with random weights (tools/random_model.py --preset
paper-ban8: hidden 1280, 8 glimpses, counter, 3,129 answers); then times

    build/ban features import --tsv A.tsv.0 A.tsv.1 --output STORE     (MB of TSV per second)
    build/ban vqa --model ban8.ban --features STORE --questions Q.json --output R.json --batch B

and prints the figures with the machine they ran on. The TSV files are freshly written,
so the import reads them from the page cache (it measures parsing, base64 decoding and
writing the store, fsync included), not from a cold disk.
"""
import argparse
import base64
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import random_model  # noqa: E402

TEMPLATES = ["What color is the {0}?", "How many {0} are there?", "Is there a {0} on the {1}?",
             "Where is the {0}?", "What is the {0} holding?", "Which side of the {1} is the {0} on?",
             "Is the {0} {2}?", "What kind of {0} is shown in this picture?", "Does this {1} have a {0}?"]
NOUNS = "man woman person shirt table dog cat bus car animal room sky water grass tree building street sign " \
        "plate pizza banana umbrella horse train plane boat bird bed chair couch tv window door wall floor".split()
COLOURS = "white black red blue green yellow brown gray orange pink purple".split()


def generate_tsv(paths, n_images, dim, rng):
    """Writes the records over the files in turn; returns (image ids, total bytes)."""
    ids = rng.choice(np.arange(1, 600000), size=n_images, replace=False)
    files = [open(p, "w", newline="") for p in paths]
    for i, image_id in enumerate(ids):
        n = int(rng.integers(10, 101))
        W, H = int(rng.integers(300, 641)), int(rng.integers(300, 641))
        x1 = rng.random(n, dtype=np.float32) * np.float32(W * 0.8)
        y1 = rng.random(n, dtype=np.float32) * np.float32(H * 0.8)
        x2 = x1 + rng.random(n, dtype=np.float32) * (np.float32(W) - x1)
        y2 = y1 + rng.random(n, dtype=np.float32) * (np.float32(H) - y1)
        boxes = np.stack([x1, y1, x2, y2], 1).astype("<f4")
        feats = rng.random((n, dim), dtype=np.float32).astype("<f4")
        files[i % len(files)].write("%d\t%d\t%d\t%d\t%s\t%s\r\n" % (
            image_id, W, H, n, base64.b64encode(boxes.tobytes()).decode(), base64.b64encode(feats.tobytes()).decode()))
    for f in files:
        f.close()
    return ids, sum(os.path.getsize(p) for p in paths)


def generate_questions(path, ids, per_image, rng):
    questions = []
    for image_id in ids:
        for k in range(int(rng.integers(max(1, per_image - 2), per_image + 3))):
            text = TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(
                NOUNS[int(rng.integers(len(NOUNS)))], NOUNS[int(rng.integers(len(NOUNS)))],
                COLOURS[int(rng.integers(len(COLOURS)))])
            questions.append({"image_id": int(image_id), "question": text, "question_id": int(image_id) * 1000 + k})
    rng.shuffle(questions)
    with open(path, "w") as f:
        json.dump({"info": {"description": "benchmark"}, "task_type": "Open-Ended", "data_type": "mscoco",
                   "data_subtype": "val2014", "questions": questions, "license": {}}, f)
    return len(questions)


def timed(cmd):
    """Run cmd; (wall seconds, CPU seconds of the child (user + system), its peak RSS in MB or
    None, the process). The peak RSS comes from /usr/bin/time when there is one: the child's
    own getrusage figure would include this Python process, which it was forked from."""
    gnu_time = os.access("/usr/bin/time", os.X_OK)
    if gnu_time:
        cmd = ["/usr/bin/time", "-f", "BENCH_MAXRSS_KB=%M"] + cmd
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit("benchmark: %s failed (%d):\n%s" % (" ".join(cmd), proc.returncode, proc.stderr))
    m = re.search(r"BENCH_MAXRSS_KB=(\d+)", proc.stderr)
    rss = int(m.group(1)) / 1024 if m else None
    return dt, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), rss, proc


def mb(rss):
    return "%.1f MB" % rss if rss is not None else "unknown (no /usr/bin/time)"


def load():
    try:
        return open("/proc/loadavg").read().split()[0]
    except OSError:
        return "?"


def easyvqa_dir():
    """The easy-VQA dataset: $EASYVQA_DIR, or ../shared/data/easy-vqa beside the project; the
    benchmark exits saying so when neither holds test/questions.json."""
    for d in (os.environ.get("EASYVQA_DIR"), os.path.join(ROOT, "..", "shared", "data", "easy-vqa"),
              "/work/shared/data/easy-vqa"):
        if d and os.path.isfile(os.path.join(d, "test", "questions.json")):
            return d
    sys.exit("easy-VQA data not found: set EASYVQA_DIR")


def machine():
    cpu = platform.processor() or "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return "%s, %d cores (os.cpu_count), %s, Python %s, OPENBLAS_NUM_THREADS=%s" % (
        cpu, os.cpu_count(), platform.platform(), platform.python_version(), os.environ.get("OPENBLAS_NUM_THREADS",
                                                                                             "unset"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--questions-per-image", type=int, default=5)
    ap.add_argument("--feature-dim", type=int, default=2048)
    ap.add_argument("--batch", type=int, action="append", help="ban vqa --batch (repeat to compare; default 32)")
    ap.add_argument("--ban", default=os.path.join(ROOT, "build", "ban"))
    ap.add_argument("--workdir", help="where the files go (default: a temporary folder, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", choices=["panels", "rows"], default="panels",
                    help="the model's big weights in panels (ban.h's product, the exporter's default) or rows (CBLAS)")
    args = ap.parse_args()
    batches = args.batch or [32]
    work = args.workdir or tempfile.mkdtemp(prefix="ban-bench-")
    os.makedirs(work, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    try:
        print("machine: %s" % machine(), flush=True)
        t0 = time.perf_counter()
        tsv = [os.path.join(work, "bench_resnet101_faster_rcnn_genome.tsv.%d" % i) for i in range(2)]
        ids, tsv_bytes = generate_tsv(tsv, args.images, args.feature_dim, rng)
        questions = os.path.join(work, "v2_OpenEnded_mscoco_bench_questions.json")
        n_questions = generate_questions(questions, ids, args.questions_per_image, rng)
        model = os.path.join(work, "ban8.ban")
        cfg = random_model.config_for("paper-ban8", feature_dim=args.feature_dim)
        meta, tensors = random_model.build(cfg, args.seed)
        random_model.banfile.write_ban(model, meta, random_model.banfile.with_layout(tensors, args.layout))
        del tensors
        print("generated %d images, %.1f MB of TSV, %d questions, the paper-ban8 model (%.0f MB, weights in %s) "
              "in %.1f s" % (args.images, tsv_bytes / 1e6, n_questions, os.path.getsize(model) / 1e6, args.layout,
                             time.perf_counter() - t0),
              flush=True)

        store = os.path.join(work, "bench.store")
        load0 = load()
        dt, cpu, rss, proc = timed([args.ban, "features", "import", "--tsv"] + tsv + ["--output", store])
        print("import:  %.1f MB of TSV in %.2f s = %.1f MB/s (wall, fsync included; %.2f s of CPU = %.1f MB per "
              "CPU-second); store %.1f MB; peak RSS %s; load average %s before, %s after"
              % (tsv_bytes / 1e6, dt, tsv_bytes / 1e6 / dt, cpu, tsv_bytes / 1e6 / cpu, os.path.getsize(store) / 1e6,
                 mb(rss), load0, load()), flush=True)
        info = subprocess.run([args.ban, "features", "info", store], capture_output=True, text=True).stdout
        print("         " + [l for l in info.splitlines() if l.startswith("boxes:")][0], flush=True)

        for b in batches:
            out = os.path.join(work, "results_b%d.json" % b)
            load0 = load()
            dt, cpu, rss, proc = timed([args.ban, "vqa", "--model", model, "--features", store, "--questions", questions,
                                        "--output", out, "--batch", str(b)])
            m = re.search(r"in ([\d.]+) s: ([\d.]+) questions/s", proc.stderr)
            answered = len(json.load(open(out)))
            assert answered == n_questions, (answered, n_questions)
            print("vqa:     %d questions over %d images, --batch %d: %.2f s wall = %.1f questions/s (%s questions/s "
                  "in the batches alone, without loading and writing; %.1f s of CPU = %.2f questions per "
                  "CPU-second); peak RSS %s (the mapped model and store pages included); load average %s "
                  "before, %s after"
                  % (n_questions, args.images, b, dt, n_questions / dt, m.group(2) if m else "?", cpu,
                     n_questions / cpu, mb(rss), load0, load()), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print("files kept in %s" % work)


if __name__ == "__main__":
    main()
