"""The reference's golden vectors, reproduced through the exporter and build/ban."""
import json
import os
import pickle

import numpy as np
import pytest

from conftest import fixture_path, run_ban

G2 = np.load(fixture_path("ban_ref_g2.npz"))
G2_JSON = json.load(open(fixture_path("ban_ref_g2.json")))
FL = np.load(fixture_path("ban_ref_flickr.npz"))


def save(tmp_path, name, arr):
    path = str(tmp_path / (name + ".npy"))
    np.save(path, arr)
    return path


# BAN_SIMD caps the kernel of ban.h's own product (weights in panels): every one of them, and
# CBLAS (weights in rows), reproduces the reference
KERNELS = [("g2", None), ("g2", "avx2"), ("g2", "none"), ("g2_legacy", None), ("g2_rows", None)]


@pytest.mark.parametrize("model,simd", KERNELS)
def test_vqa_logits_and_attention(exported, tmp_path, model, simd):
    out, att = tmp_path / "logits.npy", tmp_path / "att.npy"
    run_ban("run", exported[model], "--features", save(tmp_path, "v", G2["v"]), "--spatials",
            save(tmp_path, "b", G2["b"]), "--tokens", save(tmp_path, "q", G2["q"]), "--logits", out,
            "--attention", att, env={"BAN_SIMD": simd} if simd else None)
    logits, attention = np.load(out), np.load(att)
    assert logits.shape == G2["logits"].shape and attention.shape == G2["att"].shape
    assert np.abs(logits - G2["logits"]).max() <= 1e-4
    assert np.abs(attention - G2["att"]).max() <= 1e-5
    assert (logits.argmax(1) == G2["logits"].argmax(1)).all()


def test_zip_and_legacy_exports_hold_the_same_model(exported):
    import banfile
    m1, t1 = banfile.read_ban(exported["g2"])
    m2, t2 = banfile.read_ban(exported["g2_legacy"])
    assert t1.keys() == t2.keys()
    for k in t1:
        assert np.array_equal(t1[k], t2[k]), k
    assert {k: v for k, v in m1.items() if k != "source.checkpoint"} == \
        {k: v for k, v in m2.items() if k != "source.checkpoint"}


def test_question_strings_give_the_fixture_tokens_and_answers(exported, tmp_path):
    questions = tmp_path / "q.txt"
    questions.write_text("\n".join(G2_JSON["questions"]) + "\n")
    ids = run_ban("tokenize", exported["g2"], "--pad", 14, stdin=questions.read_text()).stdout.split("\n")
    got = np.array([[int(x) for x in line.split()] for line in ids if line])
    assert np.array_equal(got, G2["q"])
    answers, logits = tmp_path / "answers.txt", tmp_path / "logits.npy"
    run_ban("run", exported["g2"], "--features", save(tmp_path, "v", G2["v"]), "--spatials",
            save(tmp_path, "b", G2["b"]), "--questions", questions, "--logits", logits, "--answers-out", answers)
    assert answers.read_text().split("\n")[:-1] == G2_JSON["predicted_answers"]
    assert np.abs(np.load(logits) - G2["logits"]).max() <= 1e-4


def test_explicit_box_counts_match_zero_row_padding(exported, tmp_path):
    out = tmp_path / "logits.npy"
    counts = np.array(G2_JSON["box_counts"], np.int64)
    v = G2["v"].copy()
    for i, n in enumerate(counts):
        v[i, n:] = 7.0  # padding holds garbage: the counts say where it starts
    run_ban("run", exported["g2"], "--features", save(tmp_path, "v", v), "--spatials", save(tmp_path, "b", G2["b"]),
            "--tokens", save(tmp_path, "q", G2["q"].astype(np.int32)), "--box-counts", save(tmp_path, "n", counts),
            "--logits", out)
    assert np.abs(np.load(out) - G2["logits"]).max() <= 1e-4


@pytest.mark.parametrize("model,simd", [("flickr", None), ("flickr", "avx2"), ("flickr", "none"),
                                        ("flickr_rows", None)])
def test_grounding_logits(exported, tmp_path, model, simd):
    out = tmp_path / "logits.npy"
    run_ban("run", exported[model], "--features", save(tmp_path, "v", FL["v"]), "--spatials",
            save(tmp_path, "b", FL["b"]), "--tokens", save(tmp_path, "q", FL["q"]), "--entities",
            save(tmp_path, "e", FL["e"]), "--logits", out, env={"BAN_SIMD": simd} if simd else None)
    logits = np.load(out)
    assert logits.shape == FL["att_logits"].shape
    assert np.abs(logits - FL["att_logits"]).max() <= 1e-4


def test_torch_oracle_reproduces_the_reference():
    """The PyTorch model the other parity tests trust reproduces the golden vectors itself."""
    torch = pytest.importorskip("torch")
    import ban_torch as bt
    m = bt.load_reference_state(bt.BanVQA(48, 40, 48, 2, 30, op="c"), fixture_path("ban_ref_g2.pth")).eval()
    assert sum(p.numel() for p in m.parameters()) == G2_JSON["parameters"]
    with torch.no_grad():
        logits, att = m(*(torch.from_numpy(G2[k]) for k in "vbq"))
    assert np.abs(logits.numpy() - G2["logits"]).max() <= 1e-5
    assert np.abs(att.numpy() - G2["att"]).max() <= 1e-6
    g = bt.load_reference_state(bt.BanGrounding(49, 32, 40, 1, op=""), fixture_path("ban_ref_flickr.pth")).eval()
    with torch.no_grad():
        out = g(*(torch.from_numpy(FL[k]) for k in "vbqe"))
    assert np.abs(out.numpy() - FL["att_logits"]).max() <= 1e-5


# ---- the tokenizer against Python's own str.lower() and str.split() -----------------------

def reference_tokenize(sentence, word2idx):
    """Dictionary.tokenize of the reference (jnhwkim/ban-vqa dataset.py), add_word=False."""
    sentence = sentence.lower().replace(",", "").replace("?", "").replace("'s", " 's")
    return [word2idx.get(w, len(word2idx) - 1) for w in sentence.split()]


TRICKY_WORDS = ["οδος", "σας", "ας", "σοφιας", "'s", "über", "i\u0307stanbul", "straße", "ǆemal", "ⅳ", "𐐨𐐩", "don't", "a'", "'", "σοφία", "ǳ",
                "\u00e9t\u00e9", "x'sy", "''s", "ß"]
TRICKY_QUESTIONS = [
    "What's THAT?", "ÜBER alles, İSTANBUL?", "STRASSE and Straße", "ǄEMAL ǅemal ǆemal", "Ⅳ or ⅳ?",
    "𐐀𐐁 and 𐐨𐐩", "DON'T? don't, Don'T", "A' a'", "it's 's ''s '''s x'sy X'SY", "ΣΟΦΊΑ σοφία",
    "tab\there\nnewline\x0bvt\x0cff\rcr", "nbsp\u00a0ideo\u3000em\u2003sep\x1cfs\x1dgs\x1eus\x1f\x85nel",
    "ÉTÉ été", "ΟΔΟΣ ΟΔΟΣ, ΣΑΣ. Σ ΑΣ́ ΑΣ́Β Α'Σ ΑΣ' Σ́ ἈΣ", "ΣΟΦΙΑΣ?", "", "   ", "?,?,", "a,b?c", "" + "x" * 300, "the the the the the the the the the the the the the the "
    "the the", "emoji 🙂 is unknown", "ǲ ǳ Ǳ", "'", "'s", "s'", "ß ẞ",
]


@pytest.fixture(scope="module")
def tricky_model(exported, tmp_path_factory):
    """The golden model with a vocabulary of tricky words (same size, so the weights still fit)."""
    import banfile
    meta, tensors = banfile.read_ban(exported["g2"])
    word2idx, idx2word = pickle.load(open(fixture_path("ban_ref_g2.dictionary.pkl"), "rb"))
    words = idx2word[:len(idx2word) - len(TRICKY_WORDS)] + TRICKY_WORDS
    meta["tokenizer.words"] = words
    meta["tokenizer.unknown_id"] = len(words) - 1
    path = str(tmp_path_factory.mktemp("tricky") / "tricky.ban")
    banfile.write_ban(path, meta, tensors)
    return path, {w: i for i, w in enumerate(words)}


def test_tokenizer_matches_python_on_unicode_and_punctuation(tricky_model):
    path, word2idx = tricky_model
    got = run_ban("tokenize", path, *TRICKY_QUESTIONS).stdout.split("\n")[:-1]
    assert len(got) == len(TRICKY_QUESTIONS)
    for q, line in zip(TRICKY_QUESTIONS, got):
        want = reference_tokenize(q, word2idx)
        assert [int(x) for x in line.split()] == want, repr(q)


def test_tokenizer_refuses_invalid_utf8(exported):
    import subprocess
    from conftest import ban_binary
    proc = subprocess.run([ban_binary(), "tokenize", exported["g2"]], input=b"what \xc3\x28 is\n", capture_output=True)
    assert proc.returncode == 1
    assert b"line 1: byte 5 of the question is not valid UTF-8" in proc.stderr
