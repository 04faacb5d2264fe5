#!/usr/bin/python3
"""`ban vqa` on many machines: a questions file and a feature store to a results file, as a Dask job.

    examples/dask_vqa.py MODEL.ban --features STORE --questions QUESTIONS.json --output RESULTS.json
        [--top-k N] [--batch B] [--skip-missing] [--scheduler tcp://HOST:8786 | --workers N]
        [--threads T] [--partition-size Q]

The results file is the one `ban vqa` writes from the same arguments, to the byte: this
script reads the questions file as ban vqa does (examples/questions.h: the official VQA
questions file, or GQA's, whose predictions file it then writes), tokenises each question
with the model's vocabulary, groups the questions by image in the store's order
and cuts them into ban vqa's own batches (up to B questions spanning as few images as
possible, K = the most boxes among a batch's images, explicit box and token counts); the
batches, whole, make the partitions of about Q questions that Dask hands to its workers.
Each worker opens the model and the store once (a worker plugin: ban.Model maps the file;
the store is mapped too) and runs its partitions through the in-process binding (Python
package `ban`); the answers come back in the order of the questions file and the file is
written atomically (a temporary file beside it, fsync, rename). Batching as ban vqa does
makes every forward pass the same computation as ban vqa's, whatever the weights' layout;
ban.h's thread count changes no bit (ban.h, THREADS).

Without --scheduler a LocalCluster of --workers processes (default: the processors) runs
the job on this machine. With --scheduler, the workers of a running cluster
(`dask scheduler`, `dask worker tcp://HOST:8786` on each machine) need the package `ban`
(make install) and the model and store files at the same paths (a shared file system).
--threads sets each worker context's threads for ban.h's matrix products (default 1: a
Dask worker thread per core); --partition-size the questions per Dask task.
"""
import argparse
import collections
import json
import math
import os
import re
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))  # the source tree's package, if there
import ban  # noqa: E402
from ban.store import FeatureStore, StoreError  # noqa: E402

PLUGIN = "ban-vqa"


class Failure(Exception):
    """An error of the job: printed as 'dask_vqa: error: ...', exit status 1."""


# ---- the questions file, read as ban vqa reads it (examples/questions.h) -------------------------

Question = collections.namedtuple("Question", "key question_id image text")
Question.__doc__ = """key: the question id as text (VQA: its decimal digits; GQA: the member's name);
question_id: VQA's int (None for GQA); image: the image id as the store holds it (text); text:
the question's bytes (raw bytes that are not UTF-8 kept, for the tokenizer to refuse)."""
_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")  # examples/store.h's store_id_check
MAX_TEXT = 65535


class _Pairs(list):
    """A JSON object as its (key, value) pairs, repeats kept (both formats refuse them)."""


def _int64(v):
    return v if type(v) is int and -2 ** 63 <= v < 2 ** 63 else None  # a JSON integer, not 3.0 or true


def _text(v, where, what, path):
    """A question's text as bytes, as questions.h takes it."""
    if not isinstance(v, str):
        raise Failure("%s: %s: \"%s\" is missing or not a string" % (path, where, what))
    try:
        data = v.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise Failure("%s: %s: \"%s\" holds a lone surrogate escape" % (path, where, what))
    if b"\0" in data or len(data) > MAX_TEXT:
        raise Failure("%s: %s: \"%s\" holds a NUL or more than %d bytes" % (path, where, what, MAX_TEXT))
    return data


def _members(pairs, where, path, names):
    """The named members of an object, each at most once."""
    got = {}
    for k, v in pairs:
        if k in names:
            if k in got:
                raise Failure("%s: %s: \"%s\" appears twice" % (path, where, k))
            got[k] = v
    return got


def read_questions(path):
    """(format "vqa" or "gqa", [Question] in file order): the official VQA questions file (an
    object with a "questions" array) or GQA's (an object of questions by question id)."""
    try:
        raw = open(path, "rb").read()
    except OSError as e:
        raise Failure("%s: cannot read: %s" % (path, e.strerror))

    def refuse(name):
        raise ValueError("%s is not JSON" % name)
    try:
        root = json.loads(raw.decode("utf-8", "surrogateescape"), object_pairs_hook=_Pairs, parse_constant=refuse)
    except ValueError as e:
        raise Failure("%s: malformed JSON: %s" % (path, e))
    if not isinstance(root, _Pairs):
        raise Failure("%s: expected a JSON object (a VQA or a GQA questions file)" % path)
    listed = [v for k, v in root if k == "questions" and isinstance(v, list)]
    out, seen = [], {}
    if listed:  # VQA
        if len(listed) > 1:
            raise Failure("%s: \"questions\" appears twice" % path)
        for i, q in enumerate(listed[0]):
            if not isinstance(q, _Pairs):
                raise Failure("%s: questions[%d] is not an object" % (path, i))
            got = _members(q, "questions[%d]" % i, path, ("question_id", "image_id", "question"))
            qid, img = _int64(got.get("question_id")), _int64(got.get("image_id"))
            if qid is None:
                raise Failure("%s: questions[%d]: \"question_id\" is missing or not a whole number (a JSON integer "
                              "of 64 bits)" % (path, i))
            if img is None:
                raise Failure("%s: questions[%d] (question %d): \"image_id\" is missing or not a whole number (a "
                              "JSON integer of 64 bits)" % (path, i, qid))
            text = _text(got.get("question"), "questions[%d] (question %d)" % (i, qid), "question", path)
            if str(qid) in seen:
                raise Failure("%s: question_id %d appears twice (questions[%d] and questions[%d]); a results file "
                              "holds each question once" % (path, qid, seen[str(qid)], i))
            seen[str(qid)] = i
            out.append(Question(str(qid), qid, str(img), text))
        fmt = "vqa"
    else:  # GQA: {"<questionId>": {"imageId": "...", "question": "...", ...}}
        for i, (key, q) in enumerate(root):
            if not _ID.match(key):
                raise Failure("%s: question %r: not an id (1..64 letters, digits, '_', '-', '.')" % (path, key))
            if not isinstance(q, _Pairs):
                raise Failure("%s: question %s is not an object" % (path, key))
            got = _members(q, "question %s" % key, path, ("imageId", "question"))
            img = got.get("imageId")
            if not isinstance(img, str) or not _ID.match(img):
                raise Failure("%s: question %s: \"imageId\" is missing or not an image id" % (path, key))
            text = _text(got.get("question"), "question %s" % key, "question", path)
            if key in seen:
                raise Failure("%s: question %s appears twice (members %d and %d)" % (path, key, seen[key], i))
            seen[key] = i
            out.append(Question(key, None, img, text))
        fmt = "gqa"
    if not out:
        raise Failure("%s: the file holds no question" % path)
    return fmt, out


# ---- the plan: ban vqa's order and batches ------------------------------------------------------

def plan(model, store, questions, questions_path, batch, skip_missing):
    """Tokens, the questions run (in ban vqa's order: by the image's place in the store, then
    file order) and the bounds of ban vqa's batches over them."""
    c = model.config
    keep = 1024 if c["question_masking"] else c["question_length"]
    tokens, unknown = [], 0
    for q in questions:
        try:  # a question without a word the vocabulary knows is refused (ban_tokenize_info's policy)
            info = model.tokenize(q.text, info=True)[:keep]
        except ban.Error as e:
            raise Failure("%s: question %s: %s" % (questions_path, q.key, e))
        tokens.append([i for i, _, _ in info])
        words = [w for _, w, known in info if not known]  # read as the unknown word: said, as ban vqa says it
        if words and unknown < 5:
            print("dask_vqa: warning: question %s: %s not in the vocabulary" % (q.key, ", ".join(map(repr, words))),
                  file=sys.stderr)
        unknown += bool(words)
    if unknown > 5:
        print("dask_vqa: warning: %d questions in all hold words not in the vocabulary" % unknown, file=sys.stderr)
    where = np.array([store.index_of(q.image) for q in questions], np.int64)
    missing = np.nonzero(where < 0)[0]
    if len(missing) and not skip_missing:
        q = questions[missing[0]]
        raise Failure("question %s: its image %s has no features in %s (--skip-missing leaves such questions out)"
                      % (q.key, q.image, store.path))
    for i in missing[:5]:
        print("dask_vqa: warning: question %s: image %s has no features; question skipped" % (
            questions[i].key, questions[i].image), file=sys.stderr)
    run = np.nonzero(where >= 0)[0]
    if not len(run):
        raise Failure("none of the %d questions has its image in %s" % (len(questions), store.path))
    offsets = store.entries["offset"][np.maximum(where, 0)]
    run = run[np.lexsort((run, offsets[run]))]
    # batches: whole images while they fit; an image with more than B questions is split
    img = offsets[run]
    starts = np.concatenate([[0], np.nonzero(img[1:] != img[:-1])[0] + 1, [len(run)]])  # runs of one image
    bounds, at, g = [], 0, 0
    while at < len(run):
        end = at
        while g + 1 < len(starts) and starts[g + 1] - end <= batch - (end - at):
            end = starts[g + 1]
            g += 1
        if end == at:  # the next image alone has more questions than a batch
            end = at + batch
            while g + 1 < len(starts) and starts[g + 1] <= end:
                g += 1
        bounds.append((at, end))
        at = end
    return tokens, run, bounds, len(missing)


def partitions(tokens, run, bounds, questions, padding_id, size):
    """Consecutive whole batches of about `size` questions each, as the arrays a worker needs."""
    parts, first = [], 0
    for j, (s, e) in enumerate(bounds):
        if e - bounds[first][0] >= size or j == len(bounds) - 1:
            lo, hi = bounds[first][0], e
            q = run[lo:hi]
            L = max([1] + [len(tokens[i]) for i in q])
            tok = np.full((len(q), L), padding_id, np.int32)
            for r, i in enumerate(q):
                tok[r, :len(tokens[i])] = tokens[i]
            parts.append({"rows": (lo, hi), "images": [questions[i].image for i in q], "tokens": tok,
                          "n_tok": np.array([len(tokens[i]) for i in q], np.int32),
                          "bounds": [(a - lo, b - lo) for a, b in bounds[first:j + 1]]})
            first = j + 1
    return parts


# ---- on the workers ------------------------------------------------------------------------------

try:
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # the job needs Dask; --help does not
    WorkerPlugin = object


class BanWorker(WorkerPlugin):
    """Opens the model and the store once per worker process (ban.Model maps the file; each
    of the worker's threads gets its own context from it)."""

    name = PLUGIN

    def __init__(self, model_path, store_path, threads):
        self.model_path, self.store_path, self.threads = model_path, store_path, threads

    def setup(self, worker):
        self.model = ban.Model(self.model_path, threads=self.threads)
        self.store = FeatureStore(self.store_path)

    def teardown(self, worker):
        self.model.close()


def answer_partition(part, top_k):
    """Run one partition's batches exactly as ban vqa runs them: (answer ids, top-k ids, top-k
    probabilities) of its questions, in the partition's order."""
    from distributed import get_worker
    w = get_worker().plugins[PLUGIN]
    m, store, D = w.model, w.store, w.store.feature_dim
    n = len(part["images"])
    ids, top, prob = np.empty(n, np.int32), np.empty((n, top_k), np.int32), np.empty((n, top_k), np.float32)
    for s, e in part["bounds"]:
        img = part["images"][s:e]
        first = [b == 0 or img[b] != img[b - 1] for b in range(len(img))]  # each image once, as it comes
        index = np.cumsum(first) - 1
        recs = [store.find(i) for i, f in zip(img, first) if f]
        K = max(r.n_boxes for r in recs)
        f = np.zeros((len(recs), K, D), np.float32)
        sp = np.zeros((len(recs), K, 6), np.float32)
        for j, r in enumerate(recs):
            f[j, :r.n_boxes], sp[j, :r.n_boxes] = r.features, r.spatials
        L = max(1, int(part["n_tok"][s:e].max()))
        r = m.vqa(f, sp, tokens=part["tokens"][s:e, :L], token_counts=part["n_tok"][s:e],
                  box_counts=[x.n_boxes for x in recs], image_index=index, top_k=top_k)
        ids[s:e], top[s:e], prob[s:e] = r.answer_ids, r.top_k_ids, r.top_k_probabilities
    return ids, top, prob


# ---- the results file ------------------------------------------------------------------------------

def json_string(b):
    """bytes as ban vqa writes a JSON string (cli_json_string): '"' and '\\' escaped, bytes below
    0x20 as \\u00XX, everything else as it is."""
    out = bytearray(b'"')
    for c in b:
        out += b"\\" + bytes([c]) if c in b'"\\' else b"\\u%04x" % c if c < 0x20 else bytes([c])
    return bytes(out + b'"')


def results_json(fmt, questions, answered, ids, top, prob, answers):
    """The results file's bytes, in file order: VQA's [{"question_id", "answer"[, "top_k"]}] or
    GQA's [{"questionId", "prediction"[, "top_k"]}], as ban vqa writes them."""
    names = [json_string(a.encode("utf-8", "surrogateescape")) for a in answers]
    parts, first = [b"["], True
    for i in np.nonzero(answered)[0]:
        q = questions[i]
        head = b'{"questionId": %s, "prediction": ' % json_string(q.key.encode()) if fmt == "gqa" else \
            b'{"question_id": %d, "answer": ' % q.question_id
        rec = b"%s\n%s%s" % (b"" if first else b",", head, names[ids[i]])
        if top.shape[1]:
            rec += b', "top_k": [' + b", ".join(
                b'{"answer": %s, "probability": %s}' % (names[a], (b"%.6g" % (p if math.isfinite(p) else 0.0)))
                for a, p in zip(top[i], prob[i].astype(float))) + b"]"
        parts.append(rec + b"}")
        first = False
    parts.append(b"\n]\n")
    return b"".join(parts)


def write_atomically(path, data):
    """A temporary file beside path (.NAME.XXXXXX, mode 0666 less the umask, as ban vqa's), fsync,
    rename over path, fsync of the folder: readers see the old file or the new one."""
    folder, name = os.path.split(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".", dir=folder)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException as e:
        os.unlink(tmp)
        raise Failure("%s: cannot write: %s" % (path, e))
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


# ---- the job ------------------------------------------------------------------------------------

def cluster_client(args):
    from distributed import Client, LocalCluster
    if args.scheduler:
        return Client(args.scheduler), None
    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster


def run(args):
    t0 = time.perf_counter()
    try:
        model = ban.Model(args.model, threads=1)
    except ban.Error as e:
        raise Failure(str(e))
    c = model.config
    if c["task"] != ban.TASK_VQA:
        raise Failure("%s is a grounding model, not a VQA model" % args.model)
    if not c["has_vocabulary"] or not c["has_answers"]:
        raise Failure("%s carries no %s (export it with %s)" % (args.model, "answer strings" if c["has_vocabulary"]
                      else "vocabulary", "--answers" if c["has_vocabulary"] else "--dictionary"))
    if args.top_k > c["num_answers"]:
        raise Failure("--top-k %d: the model has %d answers" % (args.top_k, c["num_answers"]))
    try:
        store = FeatureStore(args.features)
    except (OSError, StoreError) as e:
        raise Failure(str(e) if isinstance(e, StoreError) else "%s: cannot open: %s" % (args.features, e.strerror))
    if store.feature_dim != c["feature_dim"]:
        raise Failure("%s holds %d-d box features, but %s expects %d-d features" % (
            args.features, store.feature_dim, args.model, c["feature_dim"]))
    fmt, questions = read_questions(args.questions)
    tokens, run_order, bounds, missing = plan(model, store, questions, args.questions, args.batch, args.skip_missing)
    parts = partitions(tokens, run_order, bounds, questions, c["padding_id"], args.partition_size)

    client, cluster = cluster_client(args)
    try:
        replies = client.register_worker_plugin(BanWorker(os.path.abspath(args.model),
                                                          os.path.abspath(args.features), args.threads), name=PLUGIN)
        for worker, reply in replies.items():
            if reply.get("status") != "OK":
                raise Failure("worker %s cannot open the model or the store: %s" % (worker, reply.get("text", reply)))
        workers = len(client.scheduler_info()["workers"])
        t_run = time.perf_counter()
        futures = client.map(answer_partition, parts, top_k=args.top_k, pure=False)
        done = client.gather(futures)  # in the order of parts, whichever worker answered
        t_done = time.perf_counter()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    n = len(questions)
    ids = np.zeros(n, np.int32)
    top = np.zeros((n, args.top_k), np.int32)
    prob = np.zeros((n, args.top_k), np.float32)
    answered = np.zeros(n, bool)
    for part, (a, t, p) in zip(parts, done):
        q = run_order[part["rows"][0]:part["rows"][1]]
        ids[q], top[q], prob[q], answered[q] = a, t, p, True
    write_atomically(args.output, results_json(fmt, questions, answered, ids, top, prob, model.answers))
    secs = max(t_done - t_run, 1e-9)
    print("dask_vqa: answered %d questions (%d batches of up to %d, %d partitions, %d workers) in %.2f s: %.1f "
          "questions/s; %.2f s in all; wrote %s" % (len(run_order), len(bounds), args.batch, len(parts), workers, secs,
                                                    len(run_order) / secs, time.perf_counter() - t0, args.output),
          file=sys.stderr)
    if missing:
        print("dask_vqa: skipped %d question%s whose image has no features in %s" % (
            missing, "" if missing == 1 else "s", args.features), file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_path", nargs="?", metavar="MODEL.ban", help="the model (or --model MODEL.ban)")
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--features", required=True, help="the feature store (ban features import)")
    ap.add_argument("--questions", required=True, help="the official questions file")
    ap.add_argument("--output", required=True, help="the results file")
    ap.add_argument("--top-k", type=int, default=0, help="add each question's N best answers (as ban vqa --top-k)")
    ap.add_argument("--batch", type=int, default=32, help="questions per forward pass (as ban vqa --batch)")
    ap.add_argument("--skip-missing", action="store_true", help="leave out questions whose image is not in the store")
    ap.add_argument("--scheduler", help="a running cluster's scheduler, tcp://HOST:8786 (default: a LocalCluster)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="LocalCluster worker processes")
    ap.add_argument("--threads", type=int, default=1, help="threads of each worker context's matrix products")
    ap.add_argument("--partition-size", type=int, default=2048, help="questions per Dask task (whole batches)")
    args = ap.parse_args(argv)
    if (args.model_path is None) == (args.model is None):
        ap.error("a model is required: dask_vqa.py MODEL.ban ..., or --model MODEL.ban (not both)")
    args.model = args.model or args.model_path
    for name, lo, hi in [("top_k", 0, 1000000), ("batch", 1, 4096), ("workers", 1, 4096), ("threads", 1, 256),
                         ("partition_size", 1, 1 << 40)]:
        if not lo <= getattr(args, name) <= hi:
            ap.error("--%s must be a whole number in %d..%d" % (name.replace("_", "-"), lo, hi))
    try:
        run(args)
    except Failure as e:
        print("dask_vqa: error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
