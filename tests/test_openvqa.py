"""OpenVQA's BAN (tests/fixtures/openvqa, made by MILVLG/openvqa's own model code): exported
from the checkpoint with the vocabulary rebuilt from the question files (VQA) or read from
dicts.json (GQA), run by build/ban on questions given as strings, through every kernel and
both weight layouts, to the fixture's logits (1e-4), attention (1e-5) and answers; the
conventions (GQA's unmasked padding, truncation, OpenVQA's tokenizer); bad input refused."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, fixture_path, run_ban

import ban_export  # noqa: E402
import banfile  # noqa: E402
import openvqa  # noqa: E402

OV = "openvqa/"
EXPORT = [sys.executable, os.path.join(ROOT, "tools", "ban_export.py")]
CASES = ("ovqa_vqa_g2", "ovqa_gqa_g2")


def export_args(name):
    if name == "ovqa_vqa_g2":
        q = [fixture_path(OV + "ovqa_vqa_g2.questions/%s.json" % s) for s in ("train", "val", "test", "vg")]
        return ["--vocab-questions"] + q + ["--answers", fixture_path(OV + "ovqa_vqa_g2.answer_dict.json")]
    cfg = json.load(open(fixture_path(OV + name + ".json")))
    return ["--dicts", fixture_path(OV + name + ".dicts.json"), "--pad-boxes", str(cfg["boxes"])]


def export(tmp_path, name, *extra, ckpt=None):
    out = tmp_path / ("%s%s.ban" % (name, "".join(e.strip("-") for e in extra)))
    proc = subprocess.run(EXPORT + [ckpt or fixture_path(OV + name + ".pkl"), "-o", str(out)] + export_args(name) +
                          list(extra), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def spatials(bbox_pixels, image_hw):
    """The 6 spatial values a feature store holds, from pixel boxes and image sizes (float32)."""
    bp = bbox_pixels.astype(np.float32)
    H, W = image_hw[:, 0:1].astype(np.float32), image_hw[:, 1:2].astype(np.float32)
    return np.stack([bp[..., 0] / W, bp[..., 1] / H, bp[..., 2] / W, bp[..., 3] / H, (bp[..., 2] - bp[..., 0]) / W,
                     (bp[..., 3] - bp[..., 1]) / H], -1).astype(np.float32)


def inputs(tmp_path, name, K=None):
    z = np.load(fixture_path(OV + name + ".npz"))
    cfg = json.load(open(fixture_path(OV + name + ".json")))
    v, s = z["frcn"].astype(np.float32), spatials(z["bbox_pixels"], z["image_hw"])
    if K is not None:
        v, s = v[:, :K], s[:, :K]
    paths = {k: tmp_path / ("%s_%s.npy" % (name, k)) for k in ("v", "s", "n")}
    np.save(paths["v"], np.ascontiguousarray(v))
    np.save(paths["s"], np.ascontiguousarray(s))
    np.save(paths["n"], np.minimum(np.array(cfg["box_counts"], np.int32), v.shape[1]))
    paths["q"] = tmp_path / (name + "_q.txt")
    paths["q"].write_text("\n".join(cfg["questions"]) + "\n")
    return z, cfg, paths


def run(tmp_path, model, paths, *extra, env=None, counts=True):
    out = {k: tmp_path / ("out_%s.npy" % k) for k in ("l", "a", "e")}
    args = ["run", model, "--features", paths["v"], "--spatials", paths["s"], "--questions", paths["q"],
            "--logits", out["l"], "--attention", out["a"], "--entropy", out["e"], "--answers-out", "-"]
    if counts:
        args += ["--box-counts", paths["n"]]
    proc = run_ban(*(args + list(extra)), env=env)
    return np.load(out["l"]), np.load(out["a"]), np.load(out["e"]), proc.stdout.split()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("openvqa")
    return {(n, layout): export(d, n, "--layout", layout) for n in CASES for layout in ("panels", "rows")}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("layout", ["panels", "rows"])
@pytest.mark.parametrize("simd", ["", "avx2", "none"])
def test_golden(tmp_path, models, name, layout, simd):
    z, cfg, paths = inputs(tmp_path, name)
    logits, att, ent, answers = run(tmp_path, models[(name, layout)], paths, env={"BAN_SIMD": simd} if simd else None)
    assert np.abs(logits - z["logits"]).max() < 1e-4
    assert np.abs(att - z["att"]).max() < 1e-5
    assert answers == cfg["predicted_answers"]
    p = np.clip(z["att"].reshape(att.shape[0], att.shape[1], -1).astype(np.float64), 1e-30, 1)
    assert np.allclose(ent, -(p * np.log(p) * (p > 1e-30)).sum(-1), atol=1e-4)


def test_tokens_as_ids_and_the_tokenizer(tmp_path, models):
    """The fixture's token ids are what OpenVQA's tokenizer gives, in C and in Python."""
    for name in CASES:
        z, cfg, _ = inputs(tmp_path, name)
        proc = run_ban("tokenize", models[(name, "panels")], "--pad", z["q"].shape[1], *cfg["questions"])
        ids = np.array([list(map(int, line.split())) for line in proc.stdout.splitlines()])
        assert np.array_equal(ids, z["q"]), name
    meta, _ = banfile.read_ban(str(models[("ovqa_vqa_g2", "panels")]))
    words = {w: i for i, w in enumerate(meta["tokenizer.words"])}
    for q in cfg["questions"] + ["Is the red-and-white bus (left) on the table/sign?", "What's THAT: #1; \"2\"?"]:
        py = [words.get(w, 1) for w in openvqa.tokenize(q)]
        line = run_ban("tokenize", models[("ovqa_vqa_g2", "panels")], q).stdout.split()
        assert list(map(int, line)) == py, q


def test_module_prefix_and_serialisation_do_not_matter(tmp_path, models):
    """The VQA fixture (legacy, plain keys) re-saved as zip with 'module.' keys exports the same file."""
    torch = pytest.importorskip("torch")
    obj = torch.load(fixture_path(OV + "ovqa_vqa_g2.pkl"))
    obj["state_dict"] = {"module." + k: v for k, v in obj["state_dict"].items()}
    ckpt = tmp_path / "zip_module.pkl"
    torch.save(obj, str(ckpt))
    a = banfile.read_ban(str(export(tmp_path, "ovqa_vqa_g2", ckpt=str(ckpt))))
    b = banfile.read_ban(str(models[("ovqa_vqa_g2", "panels")]))
    a[0].pop("source.checkpoint"), b[0].pop("source.checkpoint")
    assert a[0] == b[0] and a[1].keys() == b[1].keys()
    assert all(np.array_equal(a[1][k], b[1][k]) for k in a[1])


def test_recorded_conventions(models):
    meta, _ = banfile.read_ban(str(models[("ovqa_gqa_g2", "panels")]))
    for key, value in {"tokenizer.rules": "openvqa", "tokenizer.padding_id": 0, "tokenizer.unknown_id": 1,
                       "ban.question_length": 20, "ban.box_padding": "fixed", "ban.pad_boxes": 20,
                       "ban.glimpse_rank": 3, "ban.attention_rank": 3, "ban.counter_objects": 0,
                       "ban.adapter": "box_embedding", "ban.adapter_box_dim": 16, "source.framework": "openvqa"}.items():
        assert meta[key] == value, key
    meta, _ = banfile.read_ban(str(models[("ovqa_vqa_g2", "panels")]))
    assert meta["ban.box_padding"] == "zero_rows" and meta["ban.question_length"] == 14
    assert meta["tokenizer.words"][:3] == ["PAD", "UNK", "CLS"]


def test_vqa_padding_never_changes_the_outputs(tmp_path, models):
    z, cfg, paths = inputs(tmp_path, "ovqa_vqa_g2")
    base = run(tmp_path, models[("ovqa_vqa_g2", "panels")], paths, counts=False)
    v = np.load(paths["v"])
    np.save(paths["v"], np.concatenate([v, np.zeros((v.shape[0], 9, v.shape[2]), np.float32)], 1))
    s = np.load(paths["s"])
    np.save(paths["s"], np.concatenate([s, np.zeros((s.shape[0], 9, 6), np.float32)], 1))
    padded = run(tmp_path, models[("ovqa_vqa_g2", "panels")], paths, counts=False)
    assert np.array_equal(base[0], padded[0]) and np.array_equal(base[1], padded[1][:, :, :v.shape[1]])


def test_gqa_padding_is_the_loaders(tmp_path, models):
    """A GQA model pads every image to its recorded count: the caller's padding rows are
    replaced by zero rows (whatever they hold), fewer rows are padded, more are cut; and
    another count gives other outputs."""
    model = models[("ovqa_gqa_g2", "panels")]
    z, cfg, paths = inputs(tmp_path, "ovqa_gqa_g2")
    base = run(tmp_path, model, paths)
    v = np.load(paths["v"])
    n = np.load(paths["n"])
    noisy = v.copy()
    for b in range(v.shape[0]):
        noisy[b, n[b]:] = 3.0  # rows past the count: padding, whatever they hold
    np.save(paths["v"], noisy)
    assert np.array_equal(run(tmp_path, model, paths)[0], base[0])
    # the first 12 rows only: the model pads them back to 20, as when rows 12.. are counted out
    (tmp_path / "k12").mkdir()
    _, _, p12 = inputs(tmp_path / "k12", "ovqa_gqa_g2", K=12)
    few = run(tmp_path, model, p12)
    np.save(paths["v"], v)
    np.save(paths["n"], np.load(p12["n"]))
    assert np.array_equal(few[0], run(tmp_path, model, paths)[0])
    # 30 rows (10 more zero rows than the padded count): cut to 20, the same outputs
    np.save(paths["v"], np.concatenate([v, np.zeros((v.shape[0], 10, v.shape[2]), np.float32)], 1))
    s = np.load(paths["s"])
    np.save(paths["s"], np.concatenate([s, np.zeros((s.shape[0], 10, 6), np.float32)], 1))
    more = run(tmp_path, model, paths, counts=False)
    assert np.abs(more[0] - z["logits"]).max() < 1e-4 and not more[1][:, :, 20:].any()
    # padded to 40 instead: the padding takes part in the attention, so the outputs move
    other = export(tmp_path, "ovqa_gqa_g2", "--pad-boxes", "40")
    _, _, paths = inputs(tmp_path, "ovqa_gqa_g2")
    moved = run(tmp_path, other, paths)
    assert np.abs(moved[0] - base[0]).max() > 1e-3


def test_glimpses_option_and_fp16(tmp_path, models):
    z, cfg, paths = inputs(tmp_path, "ovqa_vqa_g2")
    one = run(tmp_path, models[("ovqa_vqa_g2", "panels")], paths, "--glimpses", "1")
    assert one[0].shape == z["logits"].shape and np.abs(one[0] - z["logits"]).max() > 1e-5
    half = export(tmp_path, "ovqa_vqa_g2", "--fp16")
    logits = run(tmp_path, half, paths)[0]
    assert np.abs(logits - z["logits"]).max() < 2e-2


def refused(tmp_path, args, *needles):
    proc = subprocess.run(EXPORT + [str(a) for a in args] + ["-o", str(tmp_path / "x.ban")], capture_output=True,
                          text=True)
    assert proc.returncode != 0 and proc.stderr.startswith("ban_export: error: "), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr
    assert not (tmp_path / "x.ban").exists()


def test_bad_input_is_refused(tmp_path):
    vqa, gqa = fixture_path(OV + "ovqa_vqa_g2.pkl"), fixture_path(OV + "ovqa_gqa_g2.pkl")
    q = [fixture_path(OV + "ovqa_vqa_g2.questions/%s.json" % s) for s in ("train", "val", "test")]
    refused(tmp_path, [vqa, "--vocab-questions"] + q, "46 rows", "vocabulary of")  # vg.json left out
    answers = json.load(open(fixture_path(OV + "ovqa_vqa_g2.answer_dict.json")))
    short = [dict(list(answers[0].items())[:-1]), dict(list(answers[1].items())[:-1])]
    (tmp_path / "short.json").write_text(json.dumps(short))
    refused(tmp_path, [vqa, "--answers", tmp_path / "short.json"], "29 answers", "30 outputs")
    refused(tmp_path, [gqa], "dicts.json", "--dicts")
    refused(tmp_path, [vqa, "--dicts", fixture_path(OV + "ovqa_gqa_g2.dicts.json")], "GQA")
    torch = pytest.importorskip("torch")
    for keys, name in ((["backbone.enc_list.0.mhatt.linear_v.weight", "attflat_img.mlp.fc.linear.weight"], "MCAN"),
                       (["backbone.v_att.linear_v.weight_v", "rnn.weight_ih_l0"], "BUTD")):
        path = tmp_path / ("%s.pkl" % name)
        torch.save({"state_dict": {k: torch.zeros(2, 2) for k in keys}, "epoch": 3}, str(path))
        refused(tmp_path, [path], "OpenVQA's %s model" % name)


OTHER = [  # dataset, hidden, glimpses, K_TIMES, features, answers, boxes, bbox emb, max_token, options
    ("vqa", 40, 1, 1, 36, 20, 16, 0, 14, ["--serialisation", "legacy", "--optimizer-state", "torch1.1"]),
    ("vqa", 24, 8, 3, 24, 10, 12, 0, 14, ["--serialisation", "zip", "--module-prefix"]),
    ("gqa", 40, 8, 2, 44, 30, 36, 8, 12, ["--serialisation", "zip", "--module-prefix"]),
    ("gqa", 32, 2, 3, 30, 20, 18, 0, 15, ["--serialisation", "legacy"]),
]


@pytest.mark.parametrize("case", OTHER, ids=["-".join(map(str, c[:4])) + ("-nobox" if c[0] == "gqa" and not c[7] else "")
                                             for c in OTHER])
def test_configurations_the_fixtures_do_not_have(tmp_path, case):
    """Cases made by tools/openvqa_torch.py make-case (OpenVQA's module structure, a trained
    Adamax state in the checkpoint) export and run as exactly as the fixtures."""
    pytest.importorskip("torch")
    dataset, hidden, glimpses, k, dv, answers, boxes, emb, max_token, options = case
    base = tmp_path / "case"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "openvqa_torch.py"), "make-case", "--dataset", dataset,
           "--hidden", hidden, "--glimpses", glimpses, "--k-times", k, "--feat-dim", dv, "--answers", answers,
           "--boxes", boxes, "--train-steps", 2, "--output", base] + options
    if dataset == "gqa":
        cmd += ["--bbox-emb", emb, "--max-token", max_token]
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    cfg = json.load(open(str(base) + ".json"))
    z = np.load(str(base) + ".npz")
    args = [str(base) + ".pkl", "-o", str(tmp_path / "m.ban")]
    if dataset == "vqa":
        args += ["--vocab-questions"] + ["%s.questions/%s.json" % (base, s) for s in ("train", "val", "test", "vg")]
        args += ["--answers", str(base) + ".answer_dict.json"]
    else:
        args += ["--dicts", str(base) + ".dicts.json", "--pad-boxes", str(boxes)]
    proc = subprocess.run(EXPORT + args, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    paths = {"v": tmp_path / "v.npy", "s": tmp_path / "s.npy", "n": tmp_path / "n.npy", "q": tmp_path / "q.txt"}
    np.save(paths["v"], z["frcn"].astype(np.float32))
    np.save(paths["s"], spatials(z["bbox_pixels"], z["image_hw"]))
    np.save(paths["n"], np.array(cfg["box_counts"], np.int32))
    paths["q"].write_text("\n".join(cfg["questions"]) + "\n")
    for simd in ("", "none"):
        logits, att, _, predicted = run(tmp_path, tmp_path / "m.ban", paths, env={"BAN_SIMD": simd} if simd else None)
        assert np.abs(logits - z["logits"]).max() < 1e-4, simd
        assert np.abs(att - z["att"]).max() < 1e-5, simd
        assert predicted == cfg["predicted_answers"], simd
