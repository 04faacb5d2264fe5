"""examples/dask_vqa.py: ban vqa's job as a Dask computation, against ban vqa itself.

A generated set in the real formats (a random model of tools/random_model.py, box features
imported through ban features import, an official questions file): the results file the
Dask job writes on two worker processes is ban vqa's, byte for byte, with the model's
weights in panels (ban.h's own product) and in rows (CBLAS), on a LocalCluster and on a
cluster reached through --scheduler."""
import base64
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, run_ban
from vqa_files import questions_json, tsv_fields, write_json, write_store, write_tsv

pytest.importorskip("distributed")
import banfile  # noqa: E402
from test_python_asan import LIBRARY, needs_asan  # noqa: E402

if needs_asan(LIBRARY):
    pytest.skip("%s is built with AddressSanitizer (see tests/test_python_asan.py)" % LIBRARY,
                allow_module_level=True)
import random_model  # noqa: E402

SCRIPT = os.path.join(ROOT, "examples", "dask_vqa.py")
DIM = 24


def env():
    """The subprocesses' environment: the source tree's package and library, no make jobserver."""
    e = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    e["PYTHONPATH"] = os.path.join(ROOT, "python")
    e["BAN_LIBRARY"] = LIBRARY
    return e


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A small model in both layouts, 40 images of 1-36 boxes and 170 questions (one image
    with more questions than a batch, one question whose image is not in the store)."""
    tmp = tmp_path_factory.mktemp("dask")
    rng = np.random.default_rng(11)
    cfg = random_model.config_for(None, feature_dim=DIM, hidden=32, answers=60, vocab=300)
    meta, tensors = random_model.build(cfg, seed=5)
    # answers that need escaping in JSON, and UTF-8
    meta["answers.labels"] = ['say "%d"' % i if i % 4 == 0 else "back\\slash %d" % i if i % 4 == 1 else
                              "tab\there %d" % i if i % 4 == 2 else "caf\u00e9 %d" % i for i in range(60)]
    models = {}
    for layout in ("panels", "rows"):
        models[layout] = str(tmp / ("m_%s.ban" % layout))
        banfile.write_ban(models[layout], meta, banfile.with_layout(tensors, layout))
    ids = [int(x) for x in rng.choice(np.arange(1, 10 ** 6), 40, replace=False)]
    records = []
    for image_id in ids:
        n = int(rng.integers(1, 37))
        x1, y1 = rng.random(n, dtype=np.float32) * 300, rng.random(n, dtype=np.float32) * 200
        boxes = np.stack([x1, y1, x1 + 1 + rng.random(n, dtype=np.float32) * 300,
                          y1 + 1 + rng.random(n, dtype=np.float32) * 200], 1).astype(np.float32)
        records.append(tsv_fields(image_id, 640, 480, boxes, rng.standard_normal((n, DIM), dtype=np.float32)))
    store = str(tmp / "val.store")
    run_ban("features", "import", "--tsv", write_tsv(tmp / "set.tsv", records), "--output", store)
    words = random_model.vocabulary(cfg["vocab"])[:120] + ["zebra", "quokka"]  # the last two are unknown
    questions, qid = [], 1
    for i, image_id in enumerate(ids):
        for _ in range(13 if i == 7 else int(rng.integers(1, 7))):
            n = int(rng.integers(1, 20))  # more than the 14 positions, sometimes
            text = " ".join(words[int(j)] for j in rng.integers(0, len(words), n)).capitalize() + "?"
            questions.append((qid * 7 + 3, image_id, text.replace(" the ", ", the ")))
            qid += 1
    questions.append((5, 10 ** 7, "What is not in the store?"))
    questions = [questions[int(j)] for j in rng.permutation(len(questions))]
    qfile = write_json(tmp / "questions.json", questions_json(questions))
    # GQA: string image ids (a version-2 store written from docs/STORE.md) and its questions file
    gqa_records = [("n%d" % image_id if i % 2 else str(image_id), 640, 480, np.frombuffer(base64.b64decode(r[4]), "<f4")
                    .reshape(-1, 4), np.frombuffer(base64.b64decode(r[5]), "<f4").reshape(-1, DIM))
                   for i, (image_id, r) in enumerate(zip(ids, records))]
    gqa_store = write_store(tmp / "gqa.store", gqa_records, DIM)
    by_image = {image_id: name for (name, *_), image_id in zip(gqa_records, ids)}
    gqa = {"%08d" % qid: {"imageId": by_image[image_id], "question": text, "answer": "yes", "types": {"x": "y"}}
           for qid, image_id, text in questions if image_id in by_image}
    gqa_file = write_json(tmp / "testdev_balanced_questions.json", gqa)
    return {"tmp": tmp, "models": models, "store": store, "questions": qfile, "n": len(questions),
            "gqa_store": gqa_store, "gqa_questions": gqa_file}


def ban_vqa(job, layout, out, *extra, env=None, gqa=False):
    run_ban("vqa", "--model", job["models"][layout], "--features", job["gqa_store" if gqa else "store"], "--questions",
            job["gqa_questions" if gqa else "questions"], "--output", out, "--skip-missing", *extra, env=env)
    return out.read_bytes()


def dask_vqa(job, layout, out, *extra, check=True, gqa=False):
    proc = subprocess.run([sys.executable, SCRIPT, job["models"][layout], "--features",
                           job["gqa_store" if gqa else "store"], "--questions",
                           job["gqa_questions" if gqa else "questions"], "--output", str(out), *map(str, extra)],
                          capture_output=True, text=True, env=env(), timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_local_cluster_writes_ban_vqas_results_file(job):
    out = job["tmp"] / "dask_local.json"
    want = ban_vqa(job, "panels", job["tmp"] / "ban_panels.json", "--top-k", 4, "--batch", 8)
    proc = dask_vqa(job, "panels", out, "--workers", 2, "--skip-missing", "--top-k", 4, "--batch", 8,
                    "--partition-size", 20)
    assert "2 workers" in proc.stderr and "skipped 1 question" in proc.stderr, proc.stderr
    assert "not in the vocabulary" in proc.stderr  # zebra, quokka: read as the unknown word, and said
    got = out.read_bytes()
    assert got == want
    results = json.loads(got)
    assert len(results) == job["n"] - 1 and len({r["answer"] for r in results}) > 1
    assert not [f for f in os.listdir(job["tmp"]) if f.startswith(".")]  # no temporary file left


def start(cmd, log):
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env())


def test_scheduler_address_rows_and_gqa(job):
    """A cluster started apart (dask scheduler, two dask worker processes), reached with
    --scheduler as a real one would be, the model's weights in rows (CBLAS), then a GQA
    questions file over a store of string ids. OpenBLAS's own
    thread count changes bits of its products (ban vqa's results differ between
    OPENBLAS_NUM_THREADS=1 and 2 here), and Dask's workers run it with one thread
    (distributed's default environment for worker processes): so does ban vqa here."""
    tmp = job["tmp"]
    sched_file = tmp / "scheduler.json"
    log = open(tmp / "cluster.log", "w")
    procs = [start([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                    "--no-dashboard", "--scheduler-file", str(sched_file)], log)]
    try:
        for _ in range(600):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            assert procs[0].poll() is None, (tmp / "cluster.log").read_text()
            time.sleep(0.05)
        address = json.loads(sched_file.read_text())["address"]
        procs += [start([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                         "--no-dashboard", "--local-directory", str(tmp / ("w%d" % i))], log) for i in range(2)]
        from distributed import Client
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        out = tmp / "dask_rows.json"
        proc = dask_vqa(job, "rows", out, "--scheduler", address, "--skip-missing", "--top-k", 3, "--batch", 5,
                        "--partition-size", 11)
        assert "2 workers" in proc.stderr, proc.stderr
        assert out.read_bytes() == ban_vqa(job, "rows", tmp / "ban_rows.json", "--top-k", 3, "--batch", 5,
                                           env={"OPENBLAS_NUM_THREADS": "1"})
        # a GQA questions file and a store of string ids: GQA's predictions file
        out = tmp / "dask_gqa.json"
        dask_vqa(job, "panels", out, "--scheduler", address, "--top-k", 2, "--batch", 7, gqa=True)
        got = out.read_bytes()
        assert got == ban_vqa(job, "panels", tmp / "ban_gqa.json", "--top-k", 2, "--batch", 7, gqa=True)
        assert json.loads(got)[0]["questionId"] == next(iter(json.load(open(job["gqa_questions"]))))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        log.close()


@pytest.mark.parametrize("case,message", [
    ("missing", "has no features in"),
    ("grounding", "is a grounding model, not a VQA model"),
    ("top_k", "--top-k 61: the model has 60 answers"),
    ("unknown", "questions.json: question 9: no word of the question is in the model's vocabulary (2 unknown)"),
    ("duplicate", "question_id 9 appears twice (questions[0] and questions[1])"),
])
def test_errors_before_any_work(job, exported, case, message):
    out = job["tmp"] / ("err_%s.json" % case)
    questions = job["questions"]
    if case in ("unknown", "duplicate"):
        text = "zebra quokka?" if case == "unknown" else "what is it?"
        (job["tmp"] / case).mkdir()
        questions = write_json(job["tmp"] / case / "questions.json",
                               questions_json([(9, 1, text), (9 if case == "duplicate" else 10, 1, "what is it?")]))
    extra = {"top_k": ["--top-k", 61, "--skip-missing"]}.get(case, [])
    args = [sys.executable, SCRIPT, "--model", exported["flickr"] if case == "grounding" else job["models"]["panels"],
            "--features", job["store"], "--questions", questions, "--output", str(out), *map(str, extra)]
    proc = subprocess.run(args, capture_output=True, text=True, env=env(), timeout=120)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert not out.exists()
