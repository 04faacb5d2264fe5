"""From pixels to answers: the image encoder and the committed easy-VQA model.

The fixtures come from tools/train_easyvqa.py (PyTorch): tests/fixtures/easyvqa_parity.*
(four test images, the encoder's features and the model's logits on twelve questions) and
tests/fixtures/easyvqa_test_predictions.txt (PyTorch's answer to every test question, in the
order of questions.json). The dataset is read from ../shared/data/easy-vqa (or $EASYVQA_DIR).
"""
import json
import os
import shutil
import struct
import zlib

import numpy as np
import pytest

from conftest import ROOT, fixture_path, run_ban

MODEL = os.path.join(ROOT, "examples", "models", "easyvqa.ban")
PARITY = np.load(fixture_path("easyvqa_parity.npz"))
PARITY_JSON = json.load(open(fixture_path("easyvqa_parity.json")))


def dataset_dir():
    for d in (os.environ.get("EASYVQA_DIR"), os.path.join(ROOT, "..", "shared", "data", "easy-vqa"),
              "/work/shared/data/easy-vqa"):
        if d and os.path.isfile(os.path.join(d, "test", "questions.json")):
            return d
    pytest.skip("easy-VQA data not found: set EASYVQA_DIR")


def save(tmp_path, name, arr):
    path = tmp_path / (name + ".npy")
    np.save(path, arr)
    return path


def test_encoder_matches_pytorch(tmp_path):
    px = save(tmp_path, "px", PARITY["pixels"])
    run_ban("encode", MODEL, "--pixels", px, "--features-out", tmp_path / "f.npy", "--spatials-out", tmp_path / "s.npy")
    feats, spats = np.load(tmp_path / "f.npy"), np.load(tmp_path / "s.npy")
    assert feats.shape == PARITY["features"].shape
    assert np.abs(feats - PARITY["features"]).max() <= 1e-4
    assert np.array_equal(spats, PARITY["spatials"])


def test_model_on_pixels_matches_pytorch(tmp_path):
    args = ["run", MODEL, "--pixels", save(tmp_path, "px", PARITY["pixels"]), "--image-index",
            save(tmp_path, "ii", PARITY["image_index"]), "--tokens", save(tmp_path, "q", PARITY["tokens"]),
            "--token-counts", save(tmp_path, "n", PARITY["lengths"]), "--logits", tmp_path / "l.npy",
            "--attention", tmp_path / "a.npy", "--answers-out", tmp_path / "ans.txt"]
    run_ban(*args)
    logits, att = np.load(tmp_path / "l.npy"), np.load(tmp_path / "a.npy")
    assert np.abs(logits - PARITY["logits"]).max() <= 1e-4
    assert np.abs(att - PARITY["att"]).max() <= 1e-5
    assert (tmp_path / "ans.txt").read_text().split("\n")[:-1] == PARITY_JSON["answers"]  # all right, like PyTorch


def test_every_test_question_answered_as_pytorch_does(tmp_path):
    data = dataset_dir()
    pred = tmp_path / "pred.txt"
    out = run_ban("easyvqa-eval", "--model", MODEL, "--data", os.path.join(data, "test"), "--json",
                  "--predictions-out", pred).stdout
    result = json.loads(out)
    ours = pred.read_text().split("\n")[:-1]
    with open(fixture_path("easyvqa_test_predictions.txt")) as f:
        theirs = f.read().split("\n")[:-1]
    assert len(ours) == len(theirs) == result["questions"] == 9673
    assert sum(a != b for a, b in zip(ours, theirs)) == 0
    truth = [q[1] for q in json.load(open(os.path.join(data, "test", "questions.json")))]
    assert result["correct"] == sum(a == t for a, t in zip(theirs, truth))
    assert result["accuracy"] >= 99.5


def small_split(tmp_path, ids):
    data = dataset_dir()
    split = tmp_path / "split"
    (split / "images").mkdir(parents=True)
    qs = [q for q in json.load(open(os.path.join(data, "test", "questions.json"))) if q[2] in ids]
    for i in ids:
        shutil.copy(os.path.join(data, "test", "images", "%d.png" % i), split / "images" / ("%d.png" % i))
    (split / "questions.json").write_text(json.dumps(qs))
    return split, qs


def test_easyvqa_eval_on_a_handful_of_images(tmp_path):
    split, qs = small_split(tmp_path, [5, 17, 42, 99, 300])
    result = json.loads(run_ban("easyvqa-eval", "--model", MODEL, "--data", split, "--json").stdout)
    assert result["questions"] == len(qs)
    kinds = {"yes/no": 0, "shape": 0, "color": 0}
    for q in qs:
        kinds["yes/no" if q[1] in ("yes", "no") else "shape" if q[1] in ("circle", "rectangle", "triangle")
              else "color"] += 1
    assert {k: v["questions"] for k, v in result["per_type"].items()} == kinds
    assert result["accuracy"] == 100.0
    text = run_ban("easyvqa-eval", "--model", MODEL, "--data", split).stdout
    assert text.startswith("accuracy: 100.000%% (%d of %d questions)" % (len(qs), len(qs)))


def test_ask_answers_and_draws_attention(tmp_path):
    data = dataset_dir()
    qs = json.load(open(os.path.join(data, "test", "questions.json")))
    for q, answer, image in [q for q in qs if q[2] in (7, 8)][:6]:
        out = run_ban("ask", "--model", MODEL, "--image", os.path.join(data, "test", "images", "%d.png" % image),
                      "--question", q, "--top-k", 3, "--attention-png", tmp_path / "att.png").stdout
        lines = out.split("\n")
        assert lines[0] == "answer: %s" % answer, q
        assert lines[1].split()[:2] == ["1.", answer] and len([l for l in lines if l]) == 4
        probs = [float(l.split()[-1]) for l in lines[1:4]]
        assert probs == sorted(probs, reverse=True) and 0.5 < probs[0] <= 1.0
    png = (tmp_path / "att.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    # two labelled glimpse panels of the 64 x 64 image at 4x, a title, a legend: tests/test_pictures.py
    assert (width, height) == (684, 384)


def test_ask_resizes_any_image(tmp_path):
    from PIL import Image
    data = dataset_dir()
    qs = [q for q in json.load(open(os.path.join(data, "test", "questions.json"))) if q[2] == 12]
    img = Image.open(os.path.join(data, "test", "images", "12.png")).resize((160, 160), Image.BILINEAR)
    img.save(tmp_path / "big.png")
    img.convert("RGB").save(tmp_path / "big.bmp")
    for path in (tmp_path / "big.png", tmp_path / "big.bmp"):
        for q, answer, _ in qs[:3]:
            out = run_ban("ask", "--model", MODEL, "--image", path, "--question", q, "--top-k", 0).stdout
            assert out == "answer: %s\n" % answer, (path, q)


def png_header(width, height):
    """A PNG signature and IHDR chunk announcing width x height RGB pixels, and nothing else."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


def test_bad_images_are_refused(tmp_path):
    data = dataset_dir()
    good = open(os.path.join(data, "test", "images", "3.png"), "rb").read()
    cases = {
        "truncated.png": (good[:len(good) // 2], "cannot decode"),
        "zero.png": (png_header(0, 0), "0 x 0 pixels: refused"),
        "huge.png": (png_header(100000, 100000), "100000 x 100000 pixels: refused"),
        "wide.png": (png_header(10000, 5000), "refused"),
        "text.png": (b"hello, this is not an image\n", "not a PNG or BMP image"),
        "empty.png": (b"", "0 bytes: not an image of 1 byte"),
    }
    for name, (content, needle) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        proc = run_ban("ask", "--model", MODEL, "--image", path, "--question", "what shape is it?",
                       "--attention-png", tmp_path / "att.png", check=False)
        assert proc.returncode == 1, name
        assert proc.stderr.startswith("ban: error: %s: " % path) and needle in proc.stderr, (name, proc.stderr)
    assert not (tmp_path / "att.png").exists()
    proc = run_ban("ask", "--model", MODEL, "--image", tmp_path / "missing.png", "--question", "x", check=False)
    assert proc.returncode == 1 and "cannot open" in proc.stderr
    proc = run_ban("ask", "--model", MODEL, "--image", tmp_path, "--question", "x", check=False)
    assert proc.returncode == 1 and "not a regular file" in proc.stderr


def test_models_without_an_encoder_are_refused(tmp_path, exported):
    # a model of box features answers from a feature store (tests/test_pictures.py)
    proc = run_ban("ask", "--model", exported["g2"], "--image", "x.png", "--question", "x", check=False)
    assert proc.returncode == 2 and "reads box features: --features STORE is required" in proc.stderr
    proc = run_ban("ask", "--model", exported["flickr"], "--image", "x.png", "--question", "x", check=False)
    assert proc.returncode == 1 and "needs a VQA model with a vocabulary and answers" in proc.stderr
    proc = run_ban("run", MODEL, "--features", save(tmp_path, "v", np.zeros((1, 64, 128), np.float32)),
                   "--tokens", save(tmp_path, "q", np.zeros((1, 3), np.int32)), "--logits", tmp_path / "l.npy",
                   check=False)
    assert proc.returncode == 1 and "reads images: give --pixels" in proc.stderr


def test_demo_draws_and_answers(tmp_path):
    out = run_ban("demo", "--model", MODEL, "--out", tmp_path).stdout
    assert "6 images drawn by ban demo, 4 questions each" in out
    assert out.rstrip().endswith("24 of 24 answers right")
    assert sorted(os.listdir(tmp_path)) == ["shape%d.png" % i for i in range(6)]


def test_fresh_images_are_answered(tmp_path):
    """tools/gen_easyvqa.py draws new images as the dataset's generator does; the first 40 of
    seed 11 (the start of the 2,000-image set of examples/models/README.md, all answered right)
    are in easy-VQA's layout and answered right."""
    import subprocess
    import sys
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gen_easyvqa.py"), "--output", str(tmp_path / "fresh"),
                    "--images", "40", "--seed", "11"], check=True, capture_output=True)
    qs = json.load(open(tmp_path / "fresh" / "questions.json"))
    assert len(os.listdir(tmp_path / "fresh" / "images")) == 40 and {q[2] for q in qs} <= set(range(40))
    assert all(isinstance(q[0], str) and q[1] in open(os.path.join(dataset_dir(), "answers.txt")).read().split()
               for q in qs)
    result = json.loads(run_ban("easyvqa-eval", "--model", MODEL, "--data", tmp_path / "fresh", "--json").stdout)
    assert result["questions"] == len(qs) and result["accuracy"] == 100.0
