#!/usr/bin/python3
"""Benchmark of ban serve (not a test): throughput and latency under 1, 4, 16 and 64 concurrent
clients, against the offline commands on the same inputs, in turn on the same machine.

    /usr/bin/python3 benchmarks/serve.py [--models easyvqa,paper] [--clients 1,4,16,64]
        [--repeats 3] [--seconds 6] [--workers 1] [--max-batch 32] [--batch-wait-ms 2]
        [--easyvqa-images 1000] [--paper-images 200] [--workdir DIR] [--json OUT.json]

Two models, one question an image (offline, ban vqa and ban easyvqa-eval encode an image once
for all its questions, and the server shares an image among the questions of one batch; with
one question an image neither side can, and the figures compare batching alone):
  easyvqa  examples/models/easyvqa.ban (an image encoder: requests upload a base64 PNG of
           easy-VQA's test split); offline: ban easyvqa-eval --batch 32 (and 1) on a split of the
           same images and questions, timed from outside (model loading included, a few ms).
  paper    the paper's configuration with random weights (tools/random_model.py --preset
           paper-ban8: hidden 1280, 8 glimpses, counter, 3,129 answers) and a store of generated
           images of 10-100 boxes of 2048-d features (benchmarks/vqa_pipeline.py's generator);
           requests name an image id; offline: ban vqa --batch 32 (and 1), whose own questions/s
           (the forward passes, without loading) is read.
The clients are connections of one process of their own (one selector loop: the load costs the
2 cores little): each sends its next question when the answer to the last came (a closed loop),
for --seconds after 1.5 s of warm-up; every answer is checked against the offline one. Each
client has its own share of the questions (their count is a multiple of the clients'), so no
two ask about one image at once: the server shares an image among a batch's questions, which
would flatter it. Throughput is the answers completed in that window per second; latency the
clients' wall time from sending to the whole answer, of the questions both sent and answered
within the window (at 64 clients on the paper model a question takes 1-2 s: --seconds must be
well above that). Each repeat runs the offline commands, then the server at every level; the
figures are medians over repeats, and the ratios are taken within a repeat.

Goals (issue 14): at 16 clients and more, >= 80% of offline batch-32 throughput; at 1 client, a
p50 within 1.5x of a lone request (the offline batch-1 time a question).
"""
import argparse
import base64
import json
import multiprocessing
import os
import platform
import re
import select
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from vqa_pipeline import easyvqa_dir  # noqa: E402

BAN = os.path.join(ROOT, "build", "ban")
EASY_MODEL = os.path.join(ROOT, "examples", "models", "easyvqa.ban")


# ---- the workloads: requests, and the offline commands on the same inputs ------------------------

def easyvqa_workload(work, n_images):
    """A split of the first n_images test images, the first question of each: the requests, and
    the offline answers (ban easyvqa-eval --predictions-out)."""
    src = os.path.join(easyvqa_dir(), "test")
    split = os.path.join(work, "easyvqa")
    os.makedirs(os.path.join(split, "images"), exist_ok=True)
    rows, seen = [], set()
    for r in json.load(open(os.path.join(src, "questions.json"))):
        if r[2] < n_images and r[2] not in seen:
            rows.append(r)
            seen.add(r[2])
    for i in seen:
        shutil.copy(os.path.join(src, "images", "%d.png" % i), os.path.join(split, "images", "%d.png" % i))
    json.dump(rows, open(os.path.join(split, "questions.json"), "w"))
    pred = os.path.join(work, "easyvqa_pred.txt")
    run([BAN, "easyvqa-eval", EASY_MODEL, "--data", split, "--predictions-out", pred])
    answers = open(pred).read().split("\n")[:-1]
    images = {i: base64.b64encode(open(os.path.join(split, "images", "%d.png" % i), "rb").read()).decode()
              for i in seen}
    requests = [(json.dumps({"question": q, "image": images[i]}), a) for (q, _, i), a in zip(rows, answers)]

    def offline(batch):
        t = time.monotonic()
        run([BAN, "easyvqa-eval", EASY_MODEL, "--data", split, "--batch", str(batch)])
        return len(rows) / (time.monotonic() - t)

    return {"name": "easyvqa", "model": EASY_MODEL, "serve_args": [], "requests": requests, "offline": offline,
            "questions": len(rows), "what": "examples/models/easyvqa.ban, %d test images, %d questions "
                                            "(base64 PNG uploads)" % (n_images, len(rows))}


def paper_workload(work, n_images):
    import vqa_pipeline
    model = os.path.join(work, "ban8.ban")
    if not os.path.exists(model):
        run([sys.executable, os.path.join(ROOT, "tools", "random_model.py"), "--preset", "paper-ban8", "--output",
             model])
    rng = np.random.default_rng(1)
    tsv = os.path.join(work, "bench.tsv")
    ids, _ = vqa_pipeline.generate_tsv([tsv], n_images, 2048, rng)
    store = os.path.join(work, "bench.store")
    run([BAN, "features", "import", "--tsv", tsv, "--output", store])
    os.remove(tsv)
    qfile = os.path.join(work, "questions.json")
    vqa_pipeline.generate_questions(qfile, ids, 1, rng)
    q = json.load(open(qfile))  # one question an image
    seen = set()
    q["questions"] = [x for x in q["questions"] if not (x["image_id"] in seen or seen.add(x["image_id"]))]
    json.dump(q, open(qfile, "w"))
    res = os.path.join(work, "results.json")
    run([BAN, "vqa", model, "--features", store, "--questions", qfile, "--output", res])
    answers = {r["question_id"]: r["answer"] for r in json.load(open(res))}
    qs = json.load(open(qfile))["questions"]
    requests = [(json.dumps({"question": q["question"], "image_id": q["image_id"]}), answers[q["question_id"]])
                for q in qs]

    def offline(batch):
        err = run([BAN, "vqa", model, "--features", store, "--questions", qfile, "--output", res, "--batch",
                   str(batch)])
        return float(re.search(r"in [0-9.]+ s: ([0-9.]+) questions/s", err).group(1))

    return {"name": "paper", "model": model, "serve_args": ["--features", store], "requests": requests,
            "offline": offline, "questions": len(qs),
            "what": "paper-ban8 (random weights), %d generated images of 10-100 boxes, %d questions" % (n_images,
                                                                                                    len(qs))}


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(cmd), proc.stderr))
    return proc.stderr


# ---- the clients -------------------------------------------------------------------------------

def read_response(sock, buf):
    """(status, body, what is left) of one response with a Content-Length."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-response")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = int(re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I).group(1))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-body")
        rest += chunk
    return int(head[9:12]), rest[:length], rest[length:]


class Client:
    """One connection of the load: sends a request, reads its whole answer, sends the next."""

    def __init__(self, port, requests, first, step):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.requests, self.i, self.step, self.buf = requests, first, step, b""

    def send(self):
        body, self.answer = self.requests[self.i % len(self.requests)]
        self.i += self.step
        data = body.encode()
        self.t0 = time.monotonic()
        self.sock.setblocking(True)  # a request fits the socket's buffer; blocking only if it does not
        self.sock.sendall(b"POST /v1/answer HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
        self.sock.setblocking(False)

    def received(self):
        """(status, body) once the whole answer is in, else None"""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-response")
        self.buf += chunk
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return None
        length = int(re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I).group(1))
        if len(rest) < length:
            return None
        self.buf = rest[length:]
        return int(head[9:12]), rest[:length]


def client_process(port, requests, clients, t_warm, t_end, out):
    """`clients` connections in one loop (a selector; cheaper than threads, which would share the
    interpreter's lock): how many answers came between t_warm and t_end, the latencies of those
    also sent after t_warm, and any wrong answer or error."""
    lat, bad, done, sel = [], [], 0, selectors.DefaultSelector()
    try:
        conns = [Client(port, requests, k, clients) for k in range(clients)]
        for c in conns:
            c.send()
            sel.register(c.sock, selectors.EVENT_READ, c)
        open_ = len(conns)
        while open_:
            for key, _ in sel.select(timeout=120):
                c = key.data
                got = c.received()
                if got is None:
                    continue
                t1 = time.monotonic()
                status, reply = got
                answer = json.loads(reply).get("answer") if status == 200 else reply[:200]
                if c.answer is not None and answer != c.answer:
                    bad.append((status, answer, c.answer))
                if t_warm <= t1 <= t_end:  # the throughput: every answer of the window
                    done += 1
                    if c.t0 >= t_warm:  # the latency: those asked within it too
                        lat.append(t1 - c.t0)
                if t1 < t_end:
                    c.send()
                else:
                    sel.unregister(c.sock)
                    c.sock.close()
                    open_ -= 1
    except Exception as e:
        bad.append(repr(e))
    out.put((done, lat, bad))


def load(port, requests, clients, seconds):
    """clients closed-loop clients for a second of warm-up and `seconds`: (answers/s, p50 ms, p99 ms).
    Client k asks requests k, k + clients, ...: with as many requests as a multiple of the clients,
    each has a share of its own, and no two ask at once about one image (which the server would
    share in a batch)."""
    if len(requests) % clients:
        sys.exit("%d questions: not a multiple of %d clients (see --easyvqa-images, --paper-images)" % (
            len(requests), clients))
    t_warm = time.monotonic() + 1.5  # the process starts meanwhile
    t_end = t_warm + seconds
    out = multiprocessing.Queue()
    p = multiprocessing.Process(target=client_process, args=(port, requests, clients, t_warm, t_end, out))
    p.start()
    done, lat, bad = out.get()
    p.join()
    if bad:
        sys.exit("wrong answers or errors under %d clients: %s" % (clients, bad[:3]))
    if not lat:
        sys.exit("no answer under %d clients was both asked and answered within %g s: raise --seconds" % (
            clients, seconds))
    lat.sort()
    return done / seconds, 1e3 * lat[len(lat) // 2], 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))]


def serve(workload, args):
    cmd = [BAN, "serve", workload["model"], "--port", "0", "--workers", str(args.workers), "--max-batch",
           str(args.max_batch), "--batch-wait-ms", str(args.batch_wait_ms), "--max-queue", "4096"]
    proc = subprocess.Popen(cmd + workload["serve_args"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline() if ready else ""
    m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        sys.exit("ban serve did not start: %r" % line)
    return proc, int(m.group(1))


def metrics(port):
    """(questions, batches, images of the batches) so far"""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        _, body, _ = read_response(s, b"")
    text = body.decode()
    return tuple(int(re.search(name + r" (\d+)", text).group(1))
                 for name in ("ban_batch_questions_sum", "ban_batch_questions_count", "ban_batch_images_total"))


def bench(workload, args):
    levels = [int(c) for c in args.clients.split(",")]
    reps = []
    for r in range(args.repeats):
        rep = {"offline_32": workload["offline"](32), "offline_1": workload["offline"](1), "levels": {}}
        proc, port = serve(workload, args)
        try:
            for c in levels:
                before = metrics(port)
                qps, p50, p99 = load(port, workload["requests"], c, args.seconds)
                after = metrics(port)
                batch = (after[0] - before[0]) / max(1, after[1] - before[1])
                shared = (after[0] - before[0]) / max(1, after[2] - before[2])  # questions an image
                rep["levels"][c] = {"qps": qps, "p50": p50, "p99": p99, "batch": batch, "shared": shared}
        finally:
            proc.terminate()
            proc.wait(60)
        reps.append(rep)
        print("  repeat %d: offline %.1f q/s at batch 32, %.2f ms a question at batch 1; server %s" % (
            r + 1, rep["offline_32"], 1e3 / rep["offline_1"],
            ", ".join("%d: %.1f q/s p50 %.1f ms" % (c, v["qps"], v["p50"]) for c, v in rep["levels"].items())),
            flush=True)
    return reps


def summarize(name, what, reps, levels):
    med = statistics.median
    lone = [1e3 / r["offline_1"] for r in reps]
    print("\n%s: %s" % (name, what))
    print("offline batch 32: %.1f questions/s; batch 1: %.2f ms a question (medians of %d)" % (
        med(r["offline_32"] for r in reps), med(lone), len(reps)))
    print("| clients | answers/s | of offline batch 32 | p50 ms | p99 ms | p50 / lone request | questions a batch | "
          "questions an image |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for c in levels:
        qps = med(r["levels"][c]["qps"] for r in reps)
        frac = med(r["levels"][c]["qps"] / r["offline_32"] for r in reps)
        p50 = med(r["levels"][c]["p50"] for r in reps)
        p99 = med(r["levels"][c]["p99"] for r in reps)
        ratio = med(r["levels"][c]["p50"] / (1e3 / r["offline_1"]) for r in reps)
        batch = med(r["levels"][c]["batch"] for r in reps)
        shared = med(r["levels"][c]["shared"] for r in reps)
        print("| %d | %.1f | %.0f%% | %.2f | %.2f | %.2fx | %.1f | %.2f |" % (c, qps, 100 * frac, p50, p99, ratio, batch,
                                                                           shared))
        rows.append({"clients": c, "answers_per_s": qps, "of_offline": frac, "p50_ms": p50, "p99_ms": p99,
                     "p50_over_lone": ratio, "batch_mean": batch, "questions_per_image": shared})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="easyvqa,paper")
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0, help="measured seconds a level (after 1 s of warm-up)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--batch-wait-ms", type=int, default=2)
    ap.add_argument("--easyvqa-images", type=int, default=960, help="easy-VQA test images, a question each")
    ap.add_argument("--paper-images", type=int, default=192, help="generated images, a question each")
    ap.add_argument("--workdir", help="keep the files here (default: a temporary folder, removed)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    if not os.access(BAN, os.X_OK):
        sys.exit("%s is missing: run make first" % BAN)
    work = args.workdir or tempfile.mkdtemp(prefix="ban-serve-bench-")
    os.makedirs(work, exist_ok=True)
    print("ban serve benchmark: %s, %d processors, load average %.2f at the start; server --workers %d "
          "--max-batch %d --batch-wait-ms %d" % (platform.processor() or platform.machine(), os.cpu_count(),
                                                  os.getloadavg()[0], args.workers, args.max_batch,
                                                  args.batch_wait_ms), flush=True)
    report, levels = {}, [int(c) for c in args.clients.split(",")]
    try:
        for name in args.models.split(","):
            make, n = {"easyvqa": (easyvqa_workload, args.easyvqa_images),
                       "paper": (paper_workload, args.paper_images)}[name]
            workload = make(work, n)
            print("%s: %s" % (name, workload["what"]), flush=True)
            reps = bench(workload, args)
            report[name] = {"what": workload["what"], "repeats": reps,
                            "table": summarize(name, workload["what"], reps, levels)}
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print("load average at the end: %.2f" % os.getloadavg()[0])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)


if __name__ == "__main__":
    main()
