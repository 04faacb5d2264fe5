"""bf16 and int8 weights from the Python side and the command line: tools/ban_export.py --dtype,
tools/banfile.py's layout and rounding, ban quantize (byte for byte the exporter's files, from
panels or rows; refuses what it cannot read), ban info's dtypes, ban bench --dtype, the loader
refusing malformed reduced files with a message naming the tensor, and the easy-VQA model
quantized: its accuracy on the test split (docs/FORMAT.md, "Reduced weights";
tests/test_quant.c holds the kernels and the golden bounds)."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import ban_export
import banfile
from conftest import ROOT, fixture_path, run_ban
from test_easyvqa import dataset_dir

G2 = ("ban_ref_g2.pth", "ban_ref_g2.dictionary.pkl", "ban_ref_g2.label2ans.pkl")
EASYVQA = os.path.join(ROOT, "examples", "models", "easyvqa.ban")


def export_g2(path, **kw):
    ckpt, dic, ans = G2
    return ban_export.export(fixture_path(ckpt), str(path), fixture_path(dic), fixture_path(ans), **kw)


@pytest.fixture(scope="module")
def g2_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("quant")
    paths = {}
    for dtype in ("f32", "bf16", "int8"):
        paths[dtype] = out / ("g2_%s.ban" % dtype)
        export_g2(paths[dtype], dtype=dtype)
    paths["rows"] = out / "g2_rows.ban"
    export_g2(paths["rows"], layout="rows")
    return paths


# ---- the format, from Python -----------------------------------------------------------------------

def test_panels_of_every_group_hold_the_rows():
    rng = np.random.default_rng(3)
    for shape in [(70, 13), (3, 33, 5), (1, 1), (32, 4)]:
        w = rng.standard_normal(shape).astype(np.float32)
        for group in (1, 2, 4):
            p = banfile.to_panels(w, group)
            kp = -(-shape[-1] // group) * group
            assert p.shape == shape[:-2] + (-(-shape[-2] // 32), kp, 32)
            assert np.array_equal(banfile.from_panels(p, shape[-2], group, shape[-1]), w)
            # element [k][j] of panel 0 at (k // g) * 32 g + j g + k % g
            flat = p.reshape(shape[:-2] + (-1,))[..., :kp * 32]
            n, k = min(shape[-2], 32) - 1, shape[-1] - 1
            assert flat[..., (k // group) * 32 * group + n * group + k % group].tolist() == w[..., n, k].tolist()
    assert np.array_equal(banfile.to_panels(w), banfile.to_panels(w, 1))  # f32 panels unchanged


def test_bf16_rounding_and_int8_rows():
    x = np.array([1.0, 1.00390625, 1.01171875, -3e-39, np.inf, np.float32(3.4028235e38), -2.5], np.float32)
    assert banfile.bf16_of(x).tolist() == [0x3F80, 0x3F80, 0x3F82, 0x8000, 0x7F80, 0x7F80, 0xC020]
    assert np.isnan(banfile.bf16_to_f32(banfile.bf16_of(np.array([np.nan], np.float32))))[0]
    q, s = banfile.int8_rows(np.array([[1.0, -7.5, 3.0], [0, 0, 0], [1e-37, 0, 0], [np.nan, 1, 1]], np.float32))
    assert q[0].tolist() == [17, -127, 51] and s[0] == np.float32(7.5) / np.float32(127)
    assert s[1] == 0 and s[2] == 0 and np.isnan(s[3]) and not q[1:].any()


def test_export_dtypes_write_the_documented_tensors(g2_files):
    sizes = {d: os.path.getsize(g2_files[d]) for d in ("f32", "bf16", "int8")}
    assert sizes["int8"] < sizes["bf16"] < sizes["f32"]
    for dtype, code in (("bf16", np.uint16), ("int8", np.int8)):
        meta, t = banfile.read_ban(str(g2_files[dtype]))
        _, f32 = banfile.read_ban(str(g2_files["f32"]))
        reduced = [n for n in t if t[n].dtype == code]
        assert sorted(reduced) == sorted([n + "_panels" for n in banfile.PANEL_WEIGHTS if n + "_panels" in f32] +
                                         [n for n in banfile.EMBEDDINGS if n in f32])
        for name, arr in t.items():
            if name in reduced:
                base = name[:-7] if name.endswith("_panels") else name
                if name.endswith("_panels"):  # K padded to the group
                    k = f32[name].shape[-2]
                    assert arr.shape == f32[name].shape[:-2] + (-(-k // banfile.GROUP[banfile.DTYPE_NAMES[dtype]]) *
                                                                banfile.GROUP[banfile.DTYPE_NAMES[dtype]], 32)
                assert (base + "_scales" in t) == (dtype == "int8")
            elif not name.endswith("_scales"):
                assert arr.dtype == np.float32 and np.array_equal(arr, f32[name]), name
        if dtype == "int8":  # a scale per row: the dequantized rows are the f32 rows within half a step
            q, s, w = t["word_embedding.weight"], t["word_embedding.weight_scales"], f32["word_embedding.weight"]
            assert np.all(np.abs(q * s[:, None] - w) <= s[:, None] * 0.5 * 1.0001)


def test_export_dtype_options(tmp_path):
    export_g2(tmp_path / "fp16.ban", fp16=True)
    export_g2(tmp_path / "f16.ban", dtype="f16")
    assert (tmp_path / "fp16.ban").read_bytes() == (tmp_path / "f16.ban").read_bytes()
    with pytest.raises(ban_export.ExportError, match="int8 weights are stored in panels"):
        export_g2(tmp_path / "x.ban", dtype="int8", layout="rows")
    ckpt, dic, ans = G2
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "ban_export.py"), fixture_path(ckpt), "-o",
                           str(tmp_path / "y.ban"), "--fp16", "--dtype", "int8"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--fp16 is --dtype f16" in proc.stderr
    assert not (tmp_path / "y.ban").exists()


def test_bf16_in_rows_is_widened_and_answers_alike(tmp_path, g2_files):
    export_g2(tmp_path / "rows_bf16.ban", dtype="bf16", layout="rows")
    _, t = banfile.read_ban(str(tmp_path / "rows_bf16.ban"))
    assert t["visual.weight"].dtype == np.uint16 and "visual.weight_panels" not in t
    g = np.load(fixture_path("ban_ref_g2.npz"))
    for name in ("v", "b", "q"):
        np.save(tmp_path / (name + ".npy"), g[name])
    outs = {}
    for key, path in (("rows", tmp_path / "rows_bf16.ban"), ("panels", g2_files["bf16"])):
        run_ban("run", path, "--features", tmp_path / "v.npy", "--spatials", tmp_path / "b.npy", "--tokens",
                tmp_path / "q.npy", "--logits", tmp_path / ("%s.npy" % key))
        outs[key] = np.load(tmp_path / ("%s.npy" % key))
    # bf16 weights either way; rows widen them and keep the activations f32, panels round those too
    assert (outs["rows"].argmax(1) == outs["panels"].argmax(1)).all()
    assert np.abs(outs["rows"] - g["logits"]).max() <= 0.02 * np.ptp(g["logits"], axis=1).max()


# ---- ban quantize --------------------------------------------------------------------------------------

def test_quantize_writes_the_exporters_bytes(tmp_path, g2_files):
    for dtype in ("bf16", "int8"):
        for source in ("f32", "rows"):
            out = tmp_path / ("%s_%s.ban" % (dtype, source))
            proc = run_ban("quantize", g2_files[source], "--dtype", dtype, "--output", out)
            assert out.read_bytes() == g2_files[dtype].read_bytes(), (dtype, source)
            assert "reduced" in proc.stdout and "visual.weight_panels" in proc.stderr  # a line per tensor
            assert "1/23] word_embedding.weight" in proc.stderr or "1/34] word_embedding.weight" in proc.stderr


def test_quantize_refuses_what_it_cannot_read(tmp_path, g2_files):
    proc = run_ban("quantize", g2_files["int8"], "--dtype", "bf16", "--output", tmp_path / "o.ban", check=False)
    assert proc.returncode == 1 and "is int8; ban quantize reads models of f32 weights" in proc.stderr
    assert not (tmp_path / "o.ban").exists()
    proc = run_ban("quantize", g2_files["f32"], "--dtype", "f16", "--output", tmp_path / "o.ban", check=False)
    assert proc.returncode == 2 and "--dtype is bf16 or int8" in proc.stderr
    proc = run_ban("quantize", g2_files["f32"], "--dtype", "int8", check=False)
    assert proc.returncode == 2 and "--output" in proc.stderr
    (tmp_path / "old.ban").write_bytes(b"old")  # a failed run leaves the old file alone
    proc = run_ban("quantize", tmp_path / "missing.ban", "--dtype", "int8", "--output", tmp_path / "old.ban",
                   check=False)
    assert proc.returncode == 1 and (tmp_path / "old.ban").read_bytes() == b"old"


def test_info_names_each_tensors_dtype(g2_files):
    out = run_ban("info", g2_files["int8"]).stdout
    assert "tensor bytes:" in out and "int8" in out.split("tensor bytes:")[1].split("\n")[0]
    listing = json.loads(run_ban("info", g2_files["int8"], "--tensors", "--json").stdout)
    t = {e["name"]: e for e in listing["tensors"]}
    assert (t["visual.weight_panels"]["dtype"], t["visual.weight_panels"]["layout"]) == ("int8", "panels")
    assert t["visual.weight_scales"]["dtype"] == "f32" and t["visual.weight_scales"]["scales"]
    assert t["visual.weight_scales"]["weight"] == "visual.weight" and not t["visual.weight_scales"]["bias"]
    assert t["visual.bias"]["dtype"] == "f32" and t["visual.bias"]["bias"] and not t["visual.bias"]["scales"]
    by = listing["bytes_by_dtype"]
    assert set(by) == {"int8", "f32"} and sum(by.values()) == sum(e["bytes"] for e in t.values())
    assert by["int8"] == sum(e["bytes"] for e in t.values() if e["dtype"] == "int8")
    text = run_ban("info", g2_files["int8"], "--tensors").stdout
    assert "word_embedding.weight scales (Vr)" in text and "bytes by dtype: int8" in text
    assert "int8" not in run_ban("info", g2_files["f32"]).stdout.split("tensor bytes:")[1]


def test_bench_builds_its_model_in_each_dtype(tmp_path):
    sizes = {}
    for dtype in ("f32", "int8"):
        out = tmp_path / ("bench_%s.ban" % dtype)
        proc = run_ban("bench", "--preset", "paper-ban8", "--boxes", 10, "--runs", 1, "--threads", 1, "--json",
                       "--dtype", dtype, "--model-out", out)
        r = json.loads(proc.stdout)
        assert r["dtype"] == dtype and r["gflop_per_question"] > 0 and r["ms_per_question"] > 0
        assert r["kernel"] in (("avx512", "avx2", "c") if dtype == "f32" else ("avx512_vnni", "c"))
        sizes[dtype] = r["model_mb"]
    assert sizes["int8"] < 100 < sizes["f32"]  # the paper-size model under 100 MB in int8
    # the int8 model is the f32 one quantized: the same random draw, reduced by the same rule
    run_ban("quantize", tmp_path / "bench_f32.ban", "--dtype", "int8", "--output", tmp_path / "q.ban")
    assert (tmp_path / "q.ban").read_bytes() == (tmp_path / "bench_int8.ban").read_bytes()
    proc = run_ban("bench", "--preset", "paper-ban8", "--dtype", "int4", check=False)
    assert proc.returncode == 2 and "--dtype is f32, bf16 or int8" in proc.stderr
    proc = run_ban("bench", "--preset", "paper-ban8", "--dtype", "int8", "--layout", "rows", check=False)
    assert proc.returncode == 2 and "needs --layout panels" in proc.stderr


# ---- malformed reduced files ---------------------------------------------------------------------------

def refused(path, *needles):
    proc = run_ban("info", path, check=False)
    assert proc.returncode == 1, proc.stdout
    for n in needles:
        assert n in proc.stderr, proc.stderr


def rewritten(tmp_path, src, name, edit):
    meta, t = banfile.read_ban(str(src))
    t = {k: np.array(v) for k, v in t.items()}
    edit(t)
    path = tmp_path / name
    banfile.write_ban(str(path), meta, t)
    return path


def test_malformed_reduced_files_are_refused(tmp_path, g2_files):
    i8 = g2_files["int8"]

    def drop(name):
        return lambda t: t.pop(name)

    def put(name, value):
        return lambda t: t.__setitem__(name, value)

    cases = [
        (drop("visual.weight_scales"), ["tensor 'visual.weight_scales' is missing"]),
        (put("visual.weight_scales", np.ones(7, np.float32)), ["tensor 'visual.weight_scales' has shape (7)"]),
        (put("visual.weight_scales", np.ones(240, np.uint16)), ["'visual.weight_scales' is bf16; scales are f32"]),
        (put("visual.bias", np.ones(240, np.int8)), ["tensor 'visual.bias' is int8, which ban.h reads only"]),
        (put("attention.h_mat", np.ones((2, 144), np.int8)), ["tensor 'attention.h_mat' is int8"]),
        (put("counter.functions", np.ones((16, 17), np.int8)), ["tensor 'counter.functions' is int8"]),
        (put("extra_scales", np.ones(3, np.float32)), ["tensor 'extra_scales' is not part of this configuration"]),
        (put("glimpse.c_prj.weight_panels", np.ones((2, 2, 11, 32), np.int8)),  # K not padded to 4
         ["tensor 'glimpse.c_prj.weight_panels' has shape (2, 2, 11, 32), the configuration needs (2, 2, 12, 32)"]),
    ]
    for i, (edit, needles) in enumerate(cases):
        refused(rewritten(tmp_path, i8, "bad%d.ban" % i, edit), *needles)

    def to_rows(t):  # an int8 Linear weight in rows
        t.pop("visual.weight_panels")
        t["visual.weight"] = np.ones((240, 40), np.int8)
    refused(rewritten(tmp_path, i8, "rows.ban", to_rows), "tensor 'visual.weight' is int8")
    # bf16 panels with K unpadded: glimpse.c_prj has K = 11
    bf = g2_files["bf16"]
    refused(rewritten(tmp_path, bf, "bf.ban", put("glimpse.c_prj.weight_panels", np.ones((2, 2, 11, 32), np.uint16))),
            "(2, 2, 12, 32)")
    # a dtype code no reader knows
    data = bytearray(i8.read_bytes())
    at = data.index(b"visual.weight_panels\0") + len("visual.weight_panels\0")
    struct.pack_into("<I", data, at, 4)
    (tmp_path / "code.ban").write_bytes(bytes(data))
    refused(tmp_path / "code.ban", "tensor 'visual.weight_panels' has dtype 4 (known: 0 = f32, 1 = f16, 2 = bf16, 3 = int8)")


# ---- accuracy: the easy-VQA model quantized --------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_easyvqa_quantized_keeps_its_accuracy(tmp_path, dtype):
    """The committed easy-VQA model in bf16 and int8 on every test question: at least 99.5% (the
    issue's goal; measured 100.000%, none of the 9,673 answers other than fp32's)."""
    data = dataset_dir()
    model = tmp_path / ("easy_%s.ban" % dtype)
    run_ban("quantize", EASYVQA, "--dtype", dtype, "--output", model)
    assert os.path.getsize(model) < os.path.getsize(EASYVQA)
    pred = tmp_path / "pred.txt"
    result = json.loads(run_ban("easyvqa-eval", "--model", model, "--data", os.path.join(data, "test"), "--json",
                                "--predictions-out", pred).stdout)
    ours = pred.read_text().split("\n")[:-1]
    with open(fixture_path("easyvqa_test_predictions.txt")) as f:
        fp32 = f.read().split("\n")[:-1]  # PyTorch's answers, which the f32 model gives to every question
    differ = sum(a != b for a, b in zip(ours, fp32))
    print("easy-VQA %s: accuracy %.3f%%, %d answers differ from fp32" % (dtype, result["accuracy"], differ))
    assert result["questions"] == len(fp32) == 9673
    assert result["accuracy"] >= 99.5
