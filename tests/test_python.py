"""The Python package `ban` (python/ban, over build/libban.so) from the source tree: the golden
vectors through it, the same outputs from every kind of input, threads, contexts, and every
error path with its message."""
import concurrent.futures
import ctypes
import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, fixture_path, run_ban
from test_python_asan import LIBRARY, needs_asan

G2 = np.load(fixture_path("ban_ref_g2.npz"))
G2_JSON = json.load(open(fixture_path("ban_ref_g2.json")))
FL = np.load(fixture_path("ban_ref_flickr.npz"))
PARITY = np.load(fixture_path("easyvqa_parity.npz"))
PARITY_JSON = json.load(open(fixture_path("easyvqa_parity.json")))
EASYVQA = os.path.join(ROOT, "examples", "models", "easyvqa.ban")


def import_ban():
    """The package of the source tree (python/ban) over LIBRARY."""
    if not os.path.exists(LIBRARY):
        pytest.fail("%s is missing: run make first" % LIBRARY)
    if needs_asan(LIBRARY):
        pytest.skip("%s is built with AddressSanitizer: tests/test_python_asan.py runs these with its runtime "
                    "preloaded" % LIBRARY, allow_module_level=True)
    os.environ["BAN_LIBRARY"] = LIBRARY
    sys.path.insert(0, os.path.join(ROOT, "python"))
    import ban
    return ban


ban = import_ban()


@pytest.fixture(scope="module")
def models(exported):
    return {name: ban.Model(path) for name, path in exported.items()}


def entropy_of(att):
    """(B, G) entropy of maps (B, G, K, P), in float64."""
    p = att.astype(np.float64).reshape(att.shape[0], att.shape[1], -1)
    return -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(-1)


# ---- the golden vectors -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["g2", "g2_legacy", "g2_rows"])
def test_vqa_golden(models, name):
    m = models[name]
    r = m.vqa(G2["v"], G2["b"], tokens=G2["q"], attention=True, top_k=3)
    assert r.logits.shape == G2["logits"].shape and r.attention.shape == G2["att"].shape
    assert np.abs(r.logits - G2["logits"]).max() <= 1e-4
    assert np.abs(r.attention - G2["att"]).max() <= 1e-5
    assert r.answers == G2_JSON["predicted_answers"]
    assert np.array_equal(r.answer_ids, G2["logits"].argmax(1))
    assert np.abs(r.entropy - entropy_of(G2["att"])).max() <= 1e-4
    answers = pickle.load(open(fixture_path("ban_ref_g2.label2ans.pkl"), "rb"))
    for b in range(6):
        top = np.argsort(-G2["logits"][b], kind="stable")[:3]
        assert [a for a, _ in r.top_k[b]] == [answers[j] for j in top]
        probs = np.array([p for _, p in r.top_k[b]])
        assert np.abs(probs - 1 / (1 + np.exp(-G2["logits"][b, top].astype(np.float64)))).max() <= 1e-6


def test_question_strings_give_the_fixture_tokens_and_answers(models):
    m = models["g2"]
    for q, want in zip(G2_JSON["questions"], G2["q"]):
        ids = m.tokenize(q)
        assert ids == [int(t) for t in want if t != m.config["padding_id"]]
    by_tokens = m.vqa(G2["v"], G2["b"], tokens=G2["q"], attention=True)
    by_text = m.vqa(G2["v"], G2["b"], questions=G2_JSON["questions"], attention=True)
    assert np.array_equal(by_text.logits, by_tokens.logits) and np.array_equal(by_text.attention, by_tokens.attention)
    assert by_text.answers == G2_JSON["predicted_answers"]
    assert m.tokenize(G2_JSON["questions"][0].encode()) == m.tokenize(G2_JSON["questions"][0])
    # where each token comes from, and whether the vocabulary knows it (else: the unknown id)
    question = G2_JSON["questions"][0] + " Quokka's dog?"
    info = m.tokenize(question, info=True)
    assert [i for i, _, _ in info] == m.tokenize(question)
    assert info[-3:] == [(m.config["unknown_id"], "Quokka", False), (m.config["unknown_id"], "'s", False),
                         (m.words.index("dog"), "dog", True)]
    for i, text, known in info:
        assert known == (text.lower() in m.words) and (known or i == m.config["unknown_id"])


@pytest.mark.parametrize("name", ["flickr", "flickr_rows"])
def test_grounding_golden(models, name):
    r = models[name].ground(FL["v"], FL["b"], tokens=FL["q"], entities=FL["e"], top_k=5)
    assert r.logits.shape == FL["att_logits"].shape
    assert np.abs(r.logits - FL["att_logits"]).max() <= 1e-4
    assert np.array_equal(r.scores, r.logits[:, 0])
    assert np.array_equal(r.top_k[1, 0], np.argsort(-r.logits[1, 0, :, 0], kind="stable")[:5])


def test_grounding_from_markup(models):
    """tests/test_ground.py's sentence of image 1000 (the fixture's example 1): the comma quirk
    puts the entities at 11 and 13, the fixture's own; a phrase is found at its first
    occurrence (the notvisual "have" at 15, not 16); a chain-0 phrase is not run."""
    line = ("picture this , many red man there man people room [/EN#5/people dog in] [/EN#6/other of man] "
            "playing have [/EN#0/notvisual have] .")
    sentence, entities = ban.parse_markup(line)
    assert sentence.startswith("picture this , many") and [e["position"] for e in entities] == [11, 13, 15]
    assert entities[0] == {"chain": 5, "types": ["people"], "phrase": "dog in", "position": 11}
    m = models["flickr"]
    r = m.ground(FL["v"][1:2], sentences=[line])
    assert [e["chain"] for e in r.entities[0]] == [5, 6]
    assert np.abs(r.logits[0, 0, :, :2] - FL["att_logits"][1, 0, :, :2]).max() <= 1e-4
    assert np.array_equal(r.tokens[0, :14], FL["q"][1, :14])


def test_pixels_and_encoder():
    m = ban.Model(EASYVQA)
    f, s = m.encode(PARITY["pixels"])
    assert np.abs(f - PARITY["features"]).max() <= 1e-4 and np.array_equal(s, PARITY["spatials"])
    r = m.vqa(pixels=PARITY["pixels"], image_index=PARITY["image_index"], tokens=PARITY["tokens"],
              token_counts=PARITY["lengths"], attention=True)
    assert np.abs(r.logits - PARITY["logits"]).max() <= 1e-4
    assert np.abs(r.attention - PARITY["att"]).max() <= 1e-5
    assert r.answers == PARITY_JSON["answers"]
    by_text = m.vqa(pixels=PARITY["pixels"], image_index=PARITY["image_index"], questions=PARITY_JSON["questions"])
    assert by_text.answers == PARITY_JSON["answers"]


def test_model_strings_and_config(models, exported):
    m = models["g2"]
    words, idx2word = pickle.load(open(fixture_path("ban_ref_g2.dictionary.pkl"), "rb"))
    assert m.words == tuple(idx2word)
    assert m.answers == tuple(pickle.load(open(fixture_path("ban_ref_g2.label2ans.pkl"), "rb")))
    c = m.config
    assert (c["task"], c["vocab_size"], c["feature_dim"], c["hidden_dim"], c["num_glimpses"], c["num_answers"],
            c["question_length"], c["padding_id"]) == (ban.TASK_VQA, 48, 40, 48, 2, 30, 14, 48)
    info = run_ban("info", exported["g2"]).stdout  # weight norm folded: 13 fewer than the checkpoint's
    assert re.search(r"^parameters: +%d$" % m.parameters, info, re.M) and m.parameters == G2_JSON["parameters"] - 13
    c["vocab_size"] = 0
    assert m.config["vocab_size"] == 48  # a copy
    assert models["flickr"].answers is None and models["flickr"].config["task"] == ban.TASK_GROUNDING


# ---- any array-like, read in place when it can be ------------------------------------------------

def test_float32_c_contiguous_is_not_copied_and_others_give_the_same():
    import ban as b
    v = np.ascontiguousarray(G2["v"], np.float32)
    assert b._floats(v, "features", ("N", "K", 40)) is v
    t = G2["q"].astype(np.int32)
    assert b._ints(t, "tokens", ("B", "L")) is t
    assert b._floats(G2["v"][:, :, ::-1].copy()[:, :, ::-1], "features", ("N", "K", 40)).flags.c_contiguous


def test_any_array_like_gives_the_same_outputs(models):
    torch = pytest.importorskip("torch")
    m = models["g2"]
    ref = m.vqa(G2["v"], G2["b"], tokens=G2["q"], attention=True).logits
    big_endian = G2["v"].astype(">f4")
    fortran = np.asfortranarray(G2["v"])
    strided = np.repeat(G2["v"], 2, axis=2)[:, :, ::2]
    for v, b, q in [(G2["v"].astype(np.float64), G2["b"].tolist(), G2["q"].tolist()), (big_endian, G2["b"], G2["q"]),
                    (fortran, G2["b"], G2["q"].astype(np.uint16)), (strided, G2["b"], G2["q"]),
                    (torch.from_numpy(G2["v"]), torch.from_numpy(G2["b"]), torch.from_numpy(G2["q"]))]:
        assert np.array_equal(m.vqa(v, b, tokens=q).logits, ref)


def test_one_image_many_questions_and_image_index(models):
    m = models["g2"]
    one = m.vqa(G2["v"][2:3], G2["b"][2:3], questions=G2_JSON["questions"])
    each = m.vqa(np.repeat(G2["v"][2:3], 6, 0), np.repeat(G2["b"][2:3], 6, 0), questions=G2_JSON["questions"])
    indexed = m.vqa(G2["v"], G2["b"], questions=G2_JSON["questions"], image_index=[2] * 6)
    assert np.array_equal(one.logits, each.logits) and np.array_equal(one.logits, indexed.logits)
    # more images than questions: those asked about are gathered
    few = m.vqa(G2["v"], G2["b"], questions=G2_JSON["questions"][4:], image_index=[5, 1], attention=True)
    full = m.vqa(G2["v"], G2["b"], questions=G2_JSON["questions"][4:] * 3, image_index=[5, 1, 0, 2, 3, 4],
                 attention=True)
    assert np.array_equal(few.logits, full.logits[:2]) and np.array_equal(few.attention, full.attention[:2])


def test_glimpses_and_box_counts(models):
    m = models["g2"]
    v = G2["v"].copy()
    counts = np.array(G2_JSON["box_counts"])
    for i, n in enumerate(counts):
        v[i, n:] = 7.0  # padding holds garbage: the counts say where it starts
    r = m.vqa(v, G2["b"], tokens=G2["q"], box_counts=counts)
    assert np.abs(r.logits - G2["logits"]).max() <= 1e-4
    one = m.vqa(G2["v"], G2["b"], tokens=G2["q"], glimpses=1)
    assert not np.array_equal(one.logits, r.logits) and one.entropy.shape == (6, 2)


# ---- what ban.h promises and Dask relies on: the bits do not depend on threads or contexts ------

def test_outputs_do_not_depend_on_threads_contexts_or_batch(exported):
    """ban.h's own thread count, the context's size and (weights in panels) the batch an
    example runs in change no bit."""
    one, two = ban.Model(exported["g2"], threads=1), ban.Model(exported["g2"], threads=2)
    ref = one.vqa(G2["v"], G2["b"], tokens=G2["q"], attention=True)
    two.vqa(np.zeros((40, 100, 40), np.float32) + 1, np.zeros((40, 100, 6), np.float32), tokens=[[1] * 60] * 40)
    r = two.vqa(G2["v"], G2["b"], tokens=G2["q"], attention=True)  # in the grown context
    assert np.array_equal(r.logits, ref.logits) and np.array_equal(r.attention, ref.attention)
    for b in range(6):
        alone = one.vqa(G2["v"][b:b + 1], G2["b"][b:b + 1], tokens=G2["q"][b:b + 1])
        assert np.array_equal(alone.logits[0], ref.logits[b])


def test_four_threads_on_one_model_are_bit_identical(exported):
    m = ban.Model(exported["g2"], threads=1)
    rng = np.random.default_rng(2)
    jobs = []
    for j in range(24):
        B = int(rng.integers(1, 7))
        pick = rng.integers(0, 6, B)
        jobs.append((G2["v"][pick], G2["b"][pick], G2["q"][pick], bool(j % 2)))
    alone = [m.vqa(v, b, tokens=q, attention=a) for v, b, q, a in jobs]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda job: m.vqa(job[0], job[1], tokens=job[2], attention=job[3]), jobs))
            for x, y in zip(got, alone):
                assert np.array_equal(x.logits, y.logits) and x.answers == y.answers
                assert (x.attention is None) == (y.attention is None)
                assert x.attention is None or np.array_equal(x.attention, y.attention)


def test_contexts_grow_and_are_not_made_per_call(exported):
    m = ban.Model(exported["g2"], threads=1)
    for _ in range(5):
        m.vqa(G2["v"][:1], G2["b"][:1], tokens=G2["q"][:1])
    assert m._local.made == 1 and m._local.ctx.limits[:2] == (1, 24)
    m.vqa(G2["v"], G2["b"], tokens=G2["q"])          # a larger batch: grown once
    m.vqa(G2["v"][:2, :10], G2["b"][:2, :10], tokens=G2["q"][:2])  # smaller: fits
    assert m._local.made == 2 and m._local.ctx.limits[:3] == (6, 24, 14)
    m.vqa(np.zeros((1, 30, 40), np.float32) + 1, np.zeros((1, 30, 6), np.float32), tokens=G2["q"][:1])
    assert m._local.made == 3 and m._local.ctx.limits[:2] == (6, 30)  # the batch kept, the boxes grown
    with pytest.raises(ban.Error, match=r"limits \(batch 6, boxes 1025"):
        m.vqa(np.ones((1, 1025, 40), np.float32), np.zeros((1, 1025, 6), np.float32), tokens=G2["q"][:1])
    assert m._local.made == 3 and m._local.ctx.limits[:2] == (6, 30)  # the refused growth left the context
    m.vqa(G2["v"], G2["b"], tokens=G2["q"])
    assert m._local.made == 3


# ---- every error path ---------------------------------------------------------------------------

def raises(exc, pattern, fn, *args, **kwargs):
    with pytest.raises(exc) as e:
        fn(*args, **kwargs)
    assert re.search(pattern, str(e.value)), str(e.value)
    return e.value


def test_shape_and_dtype_errors_name_the_argument(models):
    m = models["g2"]
    v, b, q = G2["v"], G2["b"], G2["q"]
    raises(ValueError, r"^features: expected shape \(N, K, 40\) with N, K >= 1, got \(6, 24, 39\)$", m.vqa,
           v[:, :, :39], b, tokens=q)
    raises(ValueError, r"^features: expected shape \(N, K, 40\) with N, K >= 1, got \(24, 40\)$", m.vqa, v[0], b,
           tokens=q)
    raises(ValueError, r"^spatials: expected shape \(6, 24, 6\), got \(6, 23, 6\)$", m.vqa, v, b[:, :23], tokens=q)
    raises(ValueError, r"^spatials: this model needs them \(its counting module\): expected shape \(6, 24, 6\), "
           r"got None$", m.vqa, v, tokens=q)
    raises(ValueError, r"^features: expected real numbers \(float32\), got dtype complex64$", m.vqa,
           v.astype(np.complex64), b, tokens=q)
    raises(ValueError, r"^features: expected real numbers \(float32\), got dtype <U1$", m.vqa, [[["a"]]], b, tokens=q)
    raises(ValueError, r"^tokens: expected integers, got dtype float32$", m.vqa, v, b, tokens=q.astype(np.float32))
    raises(ValueError, r"^tokens: expected shape \(B, L\) with B, L >= 1, got \(14,\)$", m.vqa, v, b, tokens=q[0])
    raises(ValueError, r"^tokens: not an array: ", m.vqa, v, b, tokens=[[1, 2], [3]])
    raises(ValueError, r"^tokens: values must lie in -2147483648\.\.2147483647, got 4294967296\.\.4294967344$",
           m.vqa, v, b, tokens=q + 2 ** 32)
    raises(ValueError, r"^box_counts: expected shape \(6,\), got \(5,\)$", m.vqa, v, b, tokens=q, box_counts=[1] * 5)
    raises(ValueError, r"^image_index: expected shape \(6,\), got \(2,\)$", m.vqa, v, b, tokens=q,
           image_index=[0, 1])
    raises(ValueError, r"^image_index: 2 images for 6 questions: give image_index \(6,\)", m.vqa, v[:2], b[:2],
           tokens=q)
    raises(ValueError, r"^token_counts: expected shape \(6,\), got \(1,\)$", m.vqa, v, b, tokens=q, token_counts=[3])
    raises(ValueError, r"^give the questions either as strings \(questions=\) or as token ids \(tokens=\)$", m.vqa,
           v, b)
    raises(ValueError, r"^give the questions either", m.vqa, v, b, tokens=q, questions=["a"])
    raises(ValueError, r"^questions: expected at least one question, got none$", m.vqa, v, b, questions=[])
    raises(ValueError, r"^top_k: expected a whole number in 0\.\.30, got 31$", m.vqa, v, b, tokens=q, top_k=31)
    raises(ValueError, r"^glimpses: expected a whole number in 0\.\.2, got 3$", m.vqa, v, b, tokens=q, glimpses=3)
    raises(ValueError, r"^pixels: this model reads box features, not images", m.vqa, v, b, tokens=q,
           pixels=PARITY["pixels"])
    raises(ValueError, r"^threads: expected a whole number in 0\.\.256, got -1$", ban.Model, EASYVQA, threads=-1)
    raises(TypeError, r"^a question must be str or bytes, got int$", m.tokenize, 7)
    raises(ValueError, r"^question 'a\\x00b' holds a NUL character \(byte 1\)$", m.tokenize, "a\0b")
    e = ban.Model(EASYVQA)
    raises(ValueError, r"^pixels: expected shape \(N, 64, 64, 3\) with N >= 1, got \(4, 32, 64, 3\)$", e.vqa,
           pixels=PARITY["pixels"][:, :32], questions=["what shape?"] * 4)
    raises(ValueError, r"^pixels: values must lie in 0\.\.255, got 1\.\.256$", e.encode,
           PARITY["pixels"].astype(np.int32) + 1)
    raises(ValueError, r"^features: this model reads images: give pixels=", e.vqa, v, questions=["what shape?"])


def test_library_errors_carry_its_message(models, exported, tmp_path):
    m = models["g2"]
    v, b, q = G2["v"].copy(), G2["b"], G2["q"]
    v[3, 2, 5] = np.nan
    err = raises(ban.Error, r"^example 3, box 2: feature 5 is not finite$", m.vqa, v, b, tokens=q)
    assert err.status == 6 and err.status_name == "bad input"
    bad = q.copy()
    bad[1, 4] = 49
    raises(ban.Error, r"^example 1, token 4: id 49 outside the vocabulary \(0\.\.48, 48 = padding\)$", m.vqa,
           G2["v"], b, tokens=bad)
    raises(ban.Error, r"^example 0: image index 6 outside 0\.\.5$", m.vqa, G2["v"], b, tokens=q, image_index=[6] * 6)
    raises(ValueError, r"^image_index: question 1 reads image 9, outside 0\.\.5$", m.vqa, G2["v"], b, tokens=q[:2],
           image_index=[0, 9])
    raises(ban.Error, r"^example 0: box count 25 outside 0\.\.24$", m.vqa, G2["v"], b, tokens=q, box_counts=[25] * 6)
    raises(ban.Error, r"^example 0 has no boxes \(24 rows, all padding\)$", m.vqa, np.zeros_like(G2["v"]), b,
           tokens=q)
    raises(ban.Error, r"^byte 5 of the question is not valid UTF-8$", m.tokenize, b"what \xc3\x28 is")
    raises(ban.Error, r"^byte 0 of the question is not valid UTF-8$", m.tokenize, "\ud800")
    raises(ban.Error, r"is a VQA model: use Model\.vqa$", m.ground, G2["v"], b, tokens=q, entities=[[1]] * 6)
    raises(ban.Error, r"is a grounding model: use Model\.ground$", models["flickr"].vqa, FL["v"], tokens=FL["q"])
    raises(ban.Error, r"has no image encoder", m.encode, PARITY["pixels"])
    raises(ban.Error, r"^example 0, entity 0: position 30 outside the sentence's 30 tokens$", models["flickr"].ground,
           FL["v"], tokens=FL["q"], entities=np.maximum(FL["e"], 30))
    easy = ban.Model(EASYVQA)
    raises(ban.Error, r"^example 0 has no tokens$", easy.vqa, pixels=PARITY["pixels"][:1], tokens=[[1, 2]],
           token_counts=[0])
    for question in ("?", "  ,? ", ""):
        raises(ban.Error, r"^the question is empty$", m.tokenize, question)
        raises(ban.Error, r"^the question is empty$", m.vqa, G2["v"], b, questions=[question])
    raises(ban.Error, r"^the question is empty$", easy.vqa, pixels=PARITY["pixels"][:1], questions=["?"])
    raises(ban.Error, r"^no word of the question is in the model's vocabulary \(2 unknown\)$", m.vqa, G2["v"], b,
           questions=["what is the bus", "zebra quokka?"], image_index=[0, 1])
    raises(ban.Error, r"^no word of the question is in the model's vocabulary", models["flickr"].ground,
           FL["v"][:1], sentences=["[/EN#1/people zebra] quokka"])
    raises(ban.Error, r"^limits \(batch 4097, ", m.vqa, G2["v"][:1], b[:1], tokens=np.zeros((4097, 1), np.int32))
    raises(ban.Error, r"nowhere\.ban: cannot open: No such file or directory$", ban.Model, tmp_path / "nowhere.ban")
    raw = bytearray(open(exported["g2"], "rb").read())
    raw[0] ^= 0xFF
    (tmp_path / "bad.ban").write_bytes(bytes(raw))
    err = raises(ban.Error, r"bad\.ban: not a ban\.h model file \(magic ", ban.Model, tmp_path / "bad.ban")
    assert err.status == 2
    raises(ValueError, r"^sentences\[0\]: phrase 'dog' is not in the sentence", models["flickr"].ground, FL["v"][:1],
           sentences=["a [/EN#3/animals dog]x ."])
    raises(ValueError, r"^sentences\[0\]: markup '\[/EN#3/animals\]' has no space", models["flickr"].ground,
           FL["v"][:1], sentences=["a [/EN#3/animals] ."])
    raises(ValueError, r"^sentences\[0\]: no entity to ground", models["flickr"].ground, FL["v"][:1],
           sentences=["[/EN#0/notvisual it] ."])
    L = models["flickr"].config["question_length"]
    raises(ValueError, r"^sentences\[0\]: entity 'man' is at position %d, past the %d positions" % (L, L),
           models["flickr"].ground, FL["v"][:1], sentences=["a " * L + "[/EN#1/people man]"])
    closed = ban.Model(exported["g2"])
    closed.close()
    raises(ValueError, r"the model is closed$", closed.vqa, G2["v"], b, tokens=q)
    raises(TypeError, r"cannot be pickled", pickle.dumps, m)


# ---- the package as a package --------------------------------------------------------------------

def test_version_and_soname_are_the_headers():
    import ban._native
    version = re.search(r'#define BAN_VERSION "(.*)"', open(os.path.join(ROOT, "ban.h")).read()).group(1)
    assert ban.__version__ == version and ban._native.SONAME == "libban.so.%s" % version.split(".")[0]


def test_every_public_name_has_a_manual():
    import inspect
    for name in ban.__all__:
        obj = getattr(ban, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__ and len(obj.__doc__) > 40, name
    for name, fn in inspect.getmembers(ban.Model):
        if not name.startswith("_"):
            assert fn.__doc__ and len(fn.__doc__) > 40, name
    manual = ban.Model.vqa.__doc__
    for arg in inspect.signature(ban.Model.vqa).parameters:
        assert arg == "self" or arg in manual, arg
    for arg in inspect.signature(ban.Model.ground).parameters:
        assert arg == "self" or arg in ban.Model.ground.__doc__, arg
    store = __import__("ban.store", fromlist=["FeatureStore"])
    assert store.FeatureStore.__doc__ and store.FeatureStore.find.__doc__ and store.Record.__doc__


def test_ban_library_overrides_and_a_missing_library_is_named(tmp_path):
    code = "import ban; print(ban.library())"
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"), BAN_LIBRARY=LIBRARY)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert out.returncode == 0 and out.stdout.strip() == LIBRARY, out.stderr
    env["BAN_LIBRARY"] = str(tmp_path / "libnothing.so")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert out.returncode == 1 and "ban: cannot load the library %s" % env["BAN_LIBRARY"] in out.stderr


def test_structures_match_ban_h():
    """ctypes' view of ban_config, ban_limits, ban_input and ban_output against ban.h's own
    declarations, field by field (the header may gain fields; the binding must follow)."""
    import ban._native as n
    header = open(os.path.join(ROOT, "ban.h")).read()
    for struct, cls in [("ban_config", n.Config), ("ban_limits", n.Limits), ("ban_input", n.Input),
                        ("ban_output", n.Output), ("ban_token_info", n.TokenInfo)]:
        body = re.search(r"typedef struct %s \{(.*?)\} %s;" % (struct, struct), header, re.S).group(1)
        body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
        fields = []
        for decl in body.split(";"):
            decl = decl.strip()
            if decl:
                ctype, names = re.match(r"((?:const )?[a-z0-9_]+(?: char)?\s*\**)\s*(.*)", decl).groups()
                for name in names.split(","):
                    name = name.strip()
                    fields.append((name.lstrip("*"), "*" in ctype or name.startswith("*")))
        mine = [(name, t is ctypes.c_void_p) for name, t in cls._fields_]
        assert mine == fields, struct
        for name, t in cls._fields_:
            assert t in (ctypes.c_int, ctypes.c_void_p), name


def test_feature_store_reads_what_the_importer_wrote(tmp_path):
    from ban.store import FeatureStore, StoreError
    from vqa_files import G2, GOLDEN_IDS, golden_fields, read_store, write_store, write_tsv
    path = tmp_path / "val.store"
    run_ban("features", "import", "--tsv", write_tsv(tmp_path / "a.tsv", [golden_fields(i) for i in range(6)]),
            "--output", path)
    v1 = write_store(tmp_path / "v1.store", [(i, 640, 480, G2["b"][0, :3, :4] * 100, G2["v"][0, :3])
                                             for i in (-5, 42, 7)], 40, version=1)
    v2 = write_store(tmp_path / "v2.store", [(i, 640, 480, G2["b"][0, :3, :4] * 100, G2["v"][0, :3])
                                             for i in ("n161313", "2354786", "42", "042")], 40)
    for p in (path, v1, v2):
        want, s = read_store(str(p)), FeatureStore(p)
        assert (len(s), s.version, s.feature_dim, s.max_boxes) == (len(want["order"]), want["version"], 40,
                                                                   want["max_boxes"])
        assert s.image_ids == want["order"] and s.find("12345") is None and s.index_of("12345") == -1
        for image_id in want["order"]:
            rec, ref = s.find(image_id), want["images"][image_id]
            assert (rec.image_id, rec.n_boxes, rec.width, rec.height, rec.offset) == (
                image_id, ref["n"], ref["width"], ref["height"], ref["offset"])
            for key in ("features", "boxes", "spatials"):
                assert np.array_equal(getattr(rec, key), ref[key])
    assert FeatureStore(path).find(GOLDEN_IDS[2]).image_id == str(GOLDEN_IDS[2])  # an int: its decimal text
    assert FeatureStore(v1).image_ids == ["-5", "7", "42"] and FeatureStore(v2).find("042").offset != \
        FeatureStore(v2).find("42").offset
    raw = path.read_bytes()
    index = read_store(str(path))["index_offset"]
    for name, bad, message in [
            ("short", raw[:40], "too short for the 64-byte header"),
            ("magic", b"BANX" + raw[4:], "not a feature store"),
            ("version", raw[:4] + b"\3" + raw[5:], "format version 3"), ("cut", raw[:-1], "do not fill the end"),
            ("unsorted", raw[:index] + raw[index + 32:index + 64] + raw[index:index + 32] + raw[index + 64:],
             "index entry 0"),
            ("outside", raw[:index + 8] + (1 << 62).to_bytes(8, "little") + raw[index + 16:], "index entry 0"),
            ("id", raw[:-2] + b"/\0", "index entry 5")]:
        (tmp_path / name).write_bytes(bad)
        raises(StoreError, message, FeatureStore, tmp_path / name)
