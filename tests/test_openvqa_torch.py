"""tools/openvqa_torch.py: OpenVQA's BAN in PyTorch reproduces OpenVQA's golden vectors
(tests/fixtures/openvqa, made by MILVLG/openvqa's own model code), tokenizes and pads as OpenVQA's
loaders do, reads checkpoints without running their code, and make-case writes cases in the
fixtures' format that reproduce themselves."""
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOOL = os.path.join(ROOT, "tools", "openvqa_torch.py")
FIX = os.path.join(HERE, "fixtures", "openvqa")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import openvqa_torch as ot  # noqa: E402

CASES = ["ovqa_vqa_g2", "ovqa_gqa_g2"]


def prefix(name):
    return os.path.join(FIX, name)


@pytest.fixture(scope="module")
def fixture_runs():
    return {name: ot.run_case(prefix(name)) for name in CASES}


@pytest.mark.parametrize("name", CASES)
def test_fixture_reproduced(fixture_runs, name):
    inputs, logits, att, predicted = fixture_runs[name]
    z, meta = inputs["npz"], inputs["meta"]
    np.testing.assert_array_equal(inputs["q"], z["q"])  # the questions given as strings
    if meta["dataset"] == "gqa":  # the 5-d box features computed from the pixel boxes
        np.testing.assert_array_equal(inputs["bbox"], z["bbox"])
    assert logits.shape == z["logits"].shape and att.shape == z["att"].shape
    assert np.abs(logits - z["logits"]).max() <= 1e-4
    assert np.abs(att - z["att"]).max() <= 1e-5
    assert predicted == meta["predicted_answers"]


@pytest.mark.parametrize("name", CASES)
def test_fixture_reproduced_with_weight_norm_folded(name):
    inputs, logits, att, predicted = ot.run_case(prefix(name), fold=True)
    assert np.abs(logits - inputs["npz"]["logits"]).max() <= 1e-4
    assert np.abs(att - inputs["npz"]["att"]).max() <= 1e-5
    assert predicted == inputs["meta"]["predicted_answers"]


@pytest.mark.parametrize("name", CASES)
def test_fixture_configuration_inferred(name):
    meta = json.load(open(prefix(name) + ".json"))
    model, info = ot.load_model(prefix(name) + ".pkl")
    cfg = info["cfg"]
    assert (cfg.DATASET, cfg.HIDDEN_SIZE, cfg.GLIMPSE, cfg.K_TIMES, cfg.FRCN_FEAT_SIZE, cfg.FLAT_OUT_SIZE) == \
        (meta["dataset"], meta["hidden"], meta["glimpse"], meta["k_times"], meta["frcn_dim"], meta["flat_out"])
    assert (info["token_size"], info["answers"], info["prefixed"]) == \
        (meta["vocab_size"], meta["n_answers"], meta["multi_gpu_keys"])
    assert cfg.BBOXFEAT_EMB_SIZE == meta.get("bbox_emb", 0)
    assert sum(p.numel() for p in model.parameters()) == meta["parameters"]
    assert zipfile.is_zipfile(prefix(name) + ".pkl") == (meta["serialisation"] == "zip")
    assert set(info["checkpoint"]) == {"state_dict", "optimizer", "lr_base", "epoch"}


def test_tokenizer():
    assert ot.tokenize("Is the red-and-white bus (left) on the table/sign?") == \
        ["is", "the", "red", "and", "white", "bus", "left", "on", "the", "table", "sign"]
    assert ot.tokenize("What's   THE man's\tshirt\u2014color?") == ["whats", "the", "mans", "shirt\u2014color"]
    assert ot.tokenize("How many dogs: one, two or three?") == ["how", "many", "dogs", "one", "two", "or", "three"]
    assert ot.tokenize('a*b#c;d "e" !') == ["abcd", "e"]
    vocab = {"PAD": 0, "UNK": 1, "CLS": 2, "is": 3, "the": 4}
    assert ot.question_ids("Is the cat on the mat", vocab, 3).tolist() == [3, 4, 1]  # truncated
    assert ot.question_ids("Is", vocab, 5).tolist() == [3, 0, 0, 0, 0]  # padded with PAD = 0
    assert ot.question_ids("", vocab, 2).tolist() == [0, 0]


def test_vqa_vocabulary_order(tmp_path):
    files = []
    for split, texts in [("train", ["What is it?"]), ("val", ["Is it red?"]), ("test", ["RED-hot, what?"]),
                         ("vg", ["new word/what"])]:
        path = tmp_path / (split + ".json")
        path.write_text(json.dumps({"questions": [{"question": t, "question_id": i, "image_id": 1}
                                                  for i, t in enumerate(texts)]}))
        files.append(str(path))
    assert ot.vqa_vocabulary(files) == {"PAD": 0, "UNK": 1, "CLS": 2, "what": 3, "is": 4, "it": 5, "red": 6,
                                        "hot": 7, "new": 8, "word": 9}


def test_gqa_box_features():
    feat = ot.gqa_box_features(np.array([[10, 20, 110, 70]], np.float32), 200, 400)
    np.testing.assert_allclose(feat, [[10 / 400, 20 / 200, 110 / 400, 70 / 200, 100 * 50 / (400 * 200)]], rtol=1e-6)
    padded = ot.pad_rows(feat, 3)
    assert padded.shape == (3, 5) and not padded[1:].any()
    assert ot.pad_rows(np.ones((5, 2)), 3).shape == (3, 2)  # truncated beyond the padded count


def _forward(model, frcn, bbox, q):
    with torch.no_grad():
        logits, att = model(torch.from_numpy(frcn), None, torch.from_numpy(bbox), torch.from_numpy(q))
    return logits.numpy(), att.numpy()


def test_vqa_padding_never_changes_outputs(fixture_runs):
    inputs, logits, att, _ = fixture_runs["ovqa_vqa_g2"]
    model, _ = ot.load_model(prefix("ovqa_vqa_g2") + ".pkl")
    B, K, D = inputs["frcn"].shape
    frcn = np.concatenate([inputs["frcn"], np.zeros((B, 7, D), np.float32)], 1)
    bbox = np.concatenate([inputs["bbox"], np.zeros((B, 7, 4), np.float32)], 1)
    logits2, att2 = _forward(model, frcn, bbox, inputs["q"])
    assert np.abs(logits2 - logits).max() <= 1e-5
    assert np.abs(att2[:, :, :K] - att).max() <= 1e-7 and not att2[:, :, K:].any()


def test_gqa_padding_takes_part_in_attention(fixture_runs):
    inputs, logits, att, _ = fixture_runs["ovqa_gqa_g2"]
    model, _ = ot.load_model(prefix("ovqa_gqa_g2") + ".pkl")
    counts = inputs["meta"]["box_counts"]
    b = counts.index(min(counts))
    n, K = counts[b], inputs["frcn"].shape[1]
    assert n < K and not inputs["frcn"][b, n:].any() and not inputs["bbox"][b, n:].any()
    # the padded rows get attention ...
    assert att[b, :, n:].sum() > 1e-3
    # ... so the same boxes padded to another count give other outputs
    for rows in (n, K + 5):
        frcn = ot.pad_rows(inputs["frcn"][b, :n], rows)[None]
        bbox = ot.pad_rows(inputs["bbox"][b, :n], rows)[None]
        other, _ = _forward(model, frcn, bbox, inputs["q"][b:b + 1])
        assert np.abs(other[0] - logits[b]).max() > 1e-3
    # and padded to the fixture's count as OpenVQA's loader pads them, the same outputs
    frcn = ot.pad_rows(inputs["frcn"][b, :n], K)[None]
    bbox = ot.pad_rows(ot.gqa_box_features(inputs["npz"]["bbox_pixels"][b, :n], *inputs["npz"]["image_hw"][b]), K)[None]
    same, _ = _forward(model, frcn, bbox, inputs["q"][b:b + 1])
    assert np.abs(same[0] - logits[b]).max() <= 1e-5  # batch of 1 against 6: float32 rounding only


MAKE_CASES = [
    ("vqa_g3_k2_prefix_legacy_old", ["--dataset", "vqa", "--hidden", "20", "--glimpses", "3", "--k-times", "2",
                                     "--feat-dim", "28", "--answers", "17", "--boxes", "12", "--module-prefix",
                                     "--serialisation", "legacy", "--optimizer-state", "torch1.1"]),
    ("gqa_g1_k1_zip", ["--dataset", "gqa", "--hidden", "16", "--glimpses", "1", "--k-times", "1", "--feat-dim", "20",
                       "--answers", "9", "--boxes", "10", "--bbox-emb", "8", "--max-token", "8", "--batch", "10"]),
    ("gqa_g4_nobbox_prefix_legacy", ["--dataset", "gqa", "--hidden", "12", "--glimpses", "4", "--k-times", "3",
                                     "--feat-dim", "10", "--answers", "50", "--boxes", "6", "--bbox-emb", "0",
                                     "--module-prefix", "--serialisation", "legacy", "--seed", "3"]),
]


@pytest.mark.parametrize("name,args", MAKE_CASES, ids=[c[0] for c in MAKE_CASES])
def test_make_case(tmp_path, name, args):
    out = str(tmp_path / name)
    subprocess.run([sys.executable, TOOL, "make-case"] + args + ["--output", out], check=True, capture_output=True)
    opt = dict(zip(args, args[1:] + [""]))
    dataset, legacy = opt["--dataset"], opt.get("--serialisation") == "legacy"
    expected = {name + s for s in (".pkl", ".npz", ".json")}
    expected |= {name + ".questions", name + ".answer_dict.json"} if dataset == "vqa" else {name + ".dicts.json"}
    assert set(os.listdir(str(tmp_path))) == expected
    if dataset == "vqa":
        assert sorted(os.listdir(out + ".questions")) == ["test.json", "train.json", "val.json", "vg.json"]
    # the files reproduce themselves through the same path as the fixtures
    check = subprocess.run([sys.executable, TOOL, "check-case", out], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    inputs, logits, att, predicted = ot.run_case(out)
    z, meta = inputs["npz"], inputs["meta"]
    assert np.abs(logits - z["logits"]).max() <= 1e-4 and np.abs(att - z["att"]).max() <= 1e-5
    assert predicted == meta["predicted_answers"]
    assert z["frcn"].shape == (meta["batch"], int(opt["--boxes"]), int(opt["--feat-dim"]))
    assert z["att"].shape == (meta["batch"], int(opt["--glimpses"]), int(opt["--boxes"]), meta["max_token"])
    assert meta["box_counts"][0] == int(opt["--boxes"]) and min(meta["box_counts"]) >= 1
    if dataset == "vqa":
        assert (inputs["q"] == 1).any()  # questions with words outside the files
    # the checkpoint as OpenVQA's train engine saves it
    assert zipfile.is_zipfile(out + ".pkl") != legacy
    _, info = ot.load_model(out + ".pkl")
    ckpt = info["checkpoint"]
    assert set(ckpt) == {"state_dict", "optimizer", "lr_base", "epoch"}
    assert all(k.startswith("module.") for k in ckpt["state_dict"]) == ("--module-prefix" in args)
    assert info["cfg"].K_TIMES == int(opt["--k-times"]) and info["cfg"].GLIMPSE == int(opt["--glimpses"])
    params = list(ckpt["state_dict"].values())
    state, groups = ckpt["optimizer"]["state"], ckpt["optimizer"]["param_groups"]
    assert len(groups) == 1 and groups[0]["betas"] == (0.9, 0.999) and groups[0]["eps"] == 1e-9
    assert len(state) == len(params) == len(groups[0]["params"])
    old = opt.get("--optimizer-state") == "torch1.1"
    for key, p in zip(groups[0]["params"], params):
        s = state[key]
        assert set(s) == {"step", "exp_avg", "exp_inf"} and s["exp_avg"].shape == p.shape
        assert isinstance(s["step"], int) == old and int(s["step"]) == 4
    assert any(np.abs(s["exp_inf"]).max() > 0 for s in state.values())
    assert (min(groups[0]["params"]) > 1 << 20) == old  # PyTorch 1.1 named parameters by id()
    # trained: weight norm's g no longer equals ||v||, so folding must read it
    sd = ot.read_checkpoint(out + ".pkl")[0]
    ratios = [float(sd[k] / sd[k[:-1] + "v"].norm()) for k in sd if k.endswith("weight_g")]
    assert max(abs(r - 1) for r in ratios) > 1e-3


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch %s" % self.marker,))


@pytest.mark.parametrize("legacy", [False, True])
def test_checkpoint_that_runs_code_is_refused(tmp_path, legacy):
    marker = tmp_path / "ran"
    path = str(tmp_path / "evil.pkl")
    torch.save({"state_dict": {"embedding.weight": torch.zeros(2, 2)}, "x": _RunsCode(marker)}, path,
               _use_new_zipfile_serialization=not legacy)
    with pytest.raises(ot.CheckpointError, match="refers to (posix|os).system"):
        ot.read_checkpoint(path)
    assert not marker.exists()


def test_other_models_are_refused(tmp_path):
    path = str(tmp_path / "mcan.pkl")
    torch.save({"state_dict": {"embedding.weight": torch.zeros(5, 300), "rnn.weight_hh_l0": torch.zeros(12, 4),
                               "backbone.enc_list.0.mhatt.linear_v.weight": torch.zeros(4, 4)}}, path)
    with pytest.raises(ot.CheckpointError, match="backbone.BiAtt.logits.h_mat_v"):
        ot.load_model(path)
    with open(str(tmp_path / "plain.pkl"), "wb") as f:
        pickle.dump([1, 2], f)
    with pytest.raises(ot.CheckpointError):
        ot.read_checkpoint(str(tmp_path / "plain.pkl"))
