"""VQA 2.0 end to end: TSV -> feature store -> build/ban vqa -> results.json -> tools/vqa_score.py.

The files are made in exactly the real formats (tests/vqa_files.py); the model is the
reference's golden one, so the answers, probabilities and attention maps are checked
against the fixture's (its predictions, logits and maps), and the score against a value
worked out by hand."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, run_ban
from vqa_files import (G2, G2_JSON, GOLDEN_IDS, golden_fields, leftovers, questions_json, read_store, write_json,
                       write_tsv, annotations_json)

PREDICTED = G2_JSON["predicted_answers"]  # left, pizza, no, left, left, pizza
QIDS = [image_id * 1000 + 7 for image_id in GOLDEN_IDS]


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The six golden images over two TSV files, imported once."""
    tmp = tmp_path_factory.mktemp("vqa")
    a = write_tsv(tmp / "karpathy_train.tsv.0", [golden_fields(i) for i in (0, 1, 2)])
    b = write_tsv(tmp / "karpathy_train.tsv.1", [golden_fields(i) for i in (3, 4, 5)])
    out = tmp / "val.store"
    run_ban("features", "import", "--tsv", a, b, "--output", out)
    return str(out)


def golden_questions():
    return [(QIDS[i], GOLDEN_IDS[i], q) for i, q in enumerate(G2_JSON["questions"])]


def run_vqa(model, store, questions, out, *extra, check=True):
    return run_ban("vqa", "--model", model, "--features", store, "--questions", questions, "--output", out,
                   *extra, check=check)


def score(questions, annotations, results):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "vqa_score.py"), "--questions", questions,
                           "--annotations", annotations, "--results", results], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_golden_end_to_end(exported, store, tmp_path):
    questions = write_json(tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json", questions_json(golden_questions()))
    out, att_dir = tmp_path / "results.json", tmp_path / "att"
    proc = run_vqa(exported["g2"], store, questions, out, "--top-k", 3, "--attention", att_dir)
    assert "answered 6 questions (6 images, 1 batches of up to 32)" in proc.stderr
    assert "questions/s" in proc.stderr
    results = json.loads(out.read_text())
    assert [r["question_id"] for r in results] == QIDS  # the questions file's order, each once
    assert [r["answer"] for r in results] == PREDICTED
    answers = pickle_answers()
    for i, r in enumerate(results):
        logits = G2["logits"][i]
        top = np.argsort(-logits, kind="stable")[:3]
        assert [t["answer"] for t in r["top_k"]] == [answers[j] for j in top]
        assert r["top_k"][0]["answer"] == r["answer"]
        got = np.array([t["probability"] for t in r["top_k"]])
        assert np.abs(got - sigmoid(logits[top])).max() <= 1e-5
        att = np.load(att_dir / ("%d.npy" % QIDS[i]))
        n = G2_JSON["box_counts"][i]
        assert att.dtype == np.float32 and att.shape == (2, n, 14)
        assert np.abs(att - G2["att"][i, :, :n, :]).max() <= 1e-5

    # the official score, worked out by hand for these answers (predictions as above):
    #   q0 10 x "left"                     -> 1.0   (all identical: exact match)
    #   q1 2 x "pizza", 8 x "two"          -> 0.6   (k = 2)
    #   q2 10 x "yes"                      -> 0.0
    #   q3 3 x "left", 7 x "right"         -> 0.9   (k = 3)
    #   q4 1 x "left", 9 x "on the couch"  -> 0.3   (k = 1)
    #   q5 5 x "Pizza!", 5 x "dog"         -> 1.0   (normalised to "pizza", k = 5)
    # overall 3.8 / 6 = 63.33; other (q0, q3, q4, q5) 3.2 / 4 = 80.00; number 60.00; yes/no 0.00
    gt = [("what color is the", "other", ["left"] * 10),
          ("how many", "number", ["pizza"] * 2 + ["two"] * 8),
          ("does this", "yes/no", ["yes"] * 10),
          ("which", "other", ["left"] * 3 + ["right"] * 7),
          ("where is the", "other", ["left"] + ["on the couch"] * 9),
          ("what kind of", "other", ["Pizza!"] * 5 + ["dog"] * 5)]
    annotations = write_json(tmp_path / "v2_mscoco_val2014_annotations.json",
                             annotations_json([(QIDS[i], GOLDEN_IDS[i]) + gt[i] for i in range(6)]))
    report = score(questions, annotations, str(out))
    assert "Overall Accuracy is: 63.33\n" in report
    assert "other : 80.00\n" in report and "number : 60.00\n" in report and "yes/no : 0.00\n" in report
    assert "what kind of : 100.00\n" in report and "where is the : 30.00\n" in report


def pickle_answers():
    import pickle
    from conftest import fixture_path
    with open(fixture_path("ban_ref_g2.label2ans.pkl"), "rb") as f:
        return pickle.load(f)


def test_batching_changes_nothing(exported, store, tmp_path):
    """Six questions on each of the six images (36), in a shuffled file: every batch size
    gives the same answers, and each image's own question the fixture's answer."""
    rng = np.random.default_rng(3)
    items = [(GOLDEN_IDS[i] * 1000 + j, GOLDEN_IDS[i], G2_JSON["questions"][j]) for i in range(6) for j in range(6)]
    items = [items[k] for k in rng.permutation(len(items))]
    questions = write_json(tmp_path / "q.json", questions_json(items))
    runs = {}
    for batch in (1, 4, 5, 7, 36):
        out = tmp_path / ("r%d.json" % batch)
        proc = run_vqa(exported["g2"], store, questions, out, "--batch", batch, "--top-k", 5)
        runs[batch] = json.loads(out.read_text())
        assert [r["question_id"] for r in runs[batch]] == [qid for qid, _, _ in items]
        images = {1: 36, 4: 12, 5: 12, 7: 6, 36: 6}[batch]  # 6 questions an image; 4 and 5 split each image
        assert "answered 36 questions (%d images" % images in proc.stderr
    first = runs[1]
    for batch, res in runs.items():
        assert [r["answer"] for r in res] == [r["answer"] for r in first], batch
        for r, f in zip(res, first):
            assert [t["answer"] for t in r["top_k"]] == [t["answer"] for t in f["top_k"]]
            assert max(abs(t["probability"] - u["probability"]) for t, u in zip(r["top_k"], f["top_k"])) <= 1e-5
    by_id = {r["question_id"]: r for r in first}
    for i in range(6):
        r = by_id[GOLDEN_IDS[i] * 1000 + i]
        assert r["answer"] == PREDICTED[i]
        assert abs(r["top_k"][0]["probability"] - sigmoid(G2["logits"][i].max())) <= 1e-5


def test_a_bad_image_is_named_by_its_id(exported, store, tmp_path):
    """A value ban_forward refuses, in a store written by hand: the message names the image
    id (and a question about it), not the image's place in the batch."""
    data = bytearray(open(store, "rb").read())
    image = read_store(store)["images"]["9"]  # the third golden image
    D = read_store(store)["feature_dim"]
    struct.pack_into("<f", data, image["offset"] + 4 * (3 * D + 4), float("nan"))  # box 3, feature 4
    bad = tmp_path / "bad.store"
    bad.write_bytes(bytes(data))
    questions = write_json(tmp_path / "q.json", questions_json(golden_questions()))
    proc = run_vqa(exported["g2"], bad, questions, tmp_path / "r.json", check=False)
    assert proc.returncode == 1
    assert proc.stderr.endswith("ban: error: image 9 (question 9007), box 3: feature 4 is not finite\n"), proc.stderr
    assert leftovers(tmp_path) == ["bad.store", "q.json"]


def test_missing_image_names_the_question(exported, store, tmp_path):
    items = golden_questions() + [(999123, 999, "What is this?")]
    questions = write_json(tmp_path / "q.json", questions_json(items))
    out = tmp_path / "results.json"
    out.write_text("old results\n")
    proc = run_vqa(exported["g2"], store, questions, out, check=False)
    assert proc.returncode == 1
    assert "question 999123: its image 999 has no features in %s" % store in proc.stderr
    assert out.read_text() == "old results\n" and leftovers(tmp_path) == ["q.json", "results.json"]
    proc = run_vqa(exported["g2"], store, questions, out, "--skip-missing")
    assert "skipped 1 question whose image has no features" in proc.stderr
    results = json.loads(out.read_text())
    assert [r["question_id"] for r in results] == QIDS and [r["answer"] for r in results] == PREDICTED


@pytest.mark.parametrize("name,text,message", [
    ("malformed", '{"questions": [{"question_id": 1,, }]}', "malformed JSON at line 1, column "),
    ("truncated", '{"questions": [\n{"question_id": 1, "image_id": 9, "question": "What?"}', "malformed JSON at line 2"),
    ("not an object", '[1, 2]', 'expected an object with a "questions" array'),
    ("no questions", '{"annotations": []}', 'expected an object with a "questions" array'),
    ("empty", '{"questions": []}', '"questions" array is empty'),
    ("id as string", '{"questions": [{"question_id": "1", "image_id": 9, "question": "What?"}]}',
     'questions[0]: "question_id" is missing or not a whole number'),
    ("fractional image id", '{"questions": [{"question_id": 1, "image_id": 9.5, "question": "What?"}]}',
     'questions[0] (question 1): "image_id" is missing or not a whole number'),
    ("question not a string", '{"questions": [{"question_id": 1, "image_id": 9, "question": 5}]}',
     'questions[0] (question 1): "question" is missing or not a string'),
    ("duplicated question id", '{"questions": [{"question_id": 4, "image_id": 9, "question": "A?"}, '
     '{"question_id": 4, "image_id": 9, "question": "A dog?"}]}',
     "question_id 4 appears twice (questions[0] and questions[1])"),
    ("bad utf-8", b'{"questions": [{"question_id": 3, "image_id": 9, "question": "Wh\xff?"}]}',
     "question 3: byte 2 of the question is not valid UTF-8"),
])
def test_bad_questions_files(exported, store, tmp_path, name, text, message):
    path = tmp_path / "q.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "results.json"
    proc = run_vqa(exported["g2"], store, path, out, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("ban: error: ") and message in proc.stderr, proc.stderr
    assert not out.exists()


def test_model_and_store_must_agree(exported, store, tmp_path):
    questions = write_json(tmp_path / "q.json", questions_json(golden_questions()))
    out = tmp_path / "r.json"
    small = tmp_path / "d32.ban"
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "random_model.py"), "--feature-dim", "32",
                    "--hidden", "16", "--vocab", "60", "--answers", "12", "--output", str(small)], check=True,
                   capture_output=True)
    proc = run_vqa(small, store, questions, out, check=False)
    assert proc.returncode == 1 and "%s holds 40-d box features, but %s expects 32-d features" % (store, small) \
        in proc.stderr
    proc = run_vqa(exported["flickr"], store, questions, out, check=False)
    assert proc.returncode == 1 and "is a grounding model" in proc.stderr
    bad = tmp_path / "bad.store"
    data = bytearray(open(store, "rb").read())
    data[4] = 9
    bad.write_bytes(bytes(data))
    proc = run_vqa(exported["g2"], bad, questions, out, check=False)
    assert proc.returncode == 1 and "feature store version 9" in proc.stderr
    assert run_vqa(exported["g2"], store, questions, out, "--top-k", 31, check=False).returncode == 2
    assert run_vqa(exported["g2"], store, questions, out, "--batch", 0, check=False).returncode == 2
    assert run_ban("vqa", "--model", exported["g2"], check=False).returncode == 2
    assert not out.exists()


def test_random_model_tool(tmp_path):
    """tools/random_model.py writes a model ban.h loads, of the configuration asked for;
    the paper preset is the paper's configuration."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import random_model
    cfg = random_model.config_for("paper-ban8")
    assert (cfg["hidden"], cfg["glimpses"], cfg["feature_dim"], cfg["answers"], cfg["embedding_dim"], cfg["tables"],
            cfg["counter"], cfg["classifier_hidden"]) == (1280, 8, 2048, 3129, 300, 2, 10, 2560)
    assert 19000 <= cfg["vocab"] <= 20000
    path = tmp_path / "m.ban"
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "random_model.py"), "--hidden", "24", "--glimpses",
                    "3", "--feature-dim", "40", "--answers", "17", "--vocab", "300", "--counter", "0",
                    "--output", str(path)], check=True, capture_output=True)
    info = run_ban("info", path).stdout
    assert "hidden size:        24" in info and "glimpses:           3" in info and "answers:            17" in info
    assert "box features:       40" in info and "counter:            none" in info
    assert "vocabulary:         300 words" in info
