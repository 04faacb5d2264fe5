"""build/ban on bad input: hostile model files, wrong .npy shapes and types, bad values.
Every case exits non-zero with a message naming the problem; nothing crashes."""
import struct

import numpy as np
import pytest

from conftest import fixture_path, run_ban

G2 = np.load(fixture_path("ban_ref_g2.npz"))


def directory(buf):
    """Byte offsets of the fields of a .ban file: {'meta': {key: value_offset}, 'tensors': {name: {...}}}."""
    pos = 48
    n_meta, n_tensors = struct.unpack_from("<QQ", buf, 16)
    out = {"meta": {}, "tensors": {}}

    def string(pos):
        (n,) = struct.unpack_from("<I", buf, pos)
        return buf[pos + 4:pos + 4 + n].decode(), pos + 5 + n

    for _ in range(n_meta):
        key, pos = string(pos)
        typ, size = struct.unpack_from("<IQ", buf, pos)
        out["meta"][key] = {"type_at": pos, "size_at": pos + 4, "value_at": pos + 12, "size": size}
        pos += 12 + size
    for _ in range(n_tensors):
        name, pos = string(pos)
        dtype, ndim = struct.unpack_from("<II", buf, pos)
        out["tensors"][name] = {"dtype_at": pos, "ndim_at": pos + 4, "dims_at": pos + 8,
                                "offset_at": pos + 8 + 8 * ndim, "ndim": ndim}
        pos += 16 + 8 * ndim
    return out


@pytest.fixture(scope="module")
def model_bytes(exported):
    with open(exported["g2"], "rb") as f:
        return f.read()


def patched(tmp_path, data, edits, name="bad.ban"):
    buf = bytearray(data)
    for at, fmt, value in edits:
        struct.pack_into(fmt, buf, at, value)
    path = tmp_path / name
    path.write_bytes(bytes(buf))
    return path


def refused(path, *needles):
    proc = run_ban("info", path, check=False)
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.startswith("ban: error: "), proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr
    return proc.stderr


def test_hostile_model_files(tmp_path, model_bytes):
    d = directory(model_bytes)
    t = d["tensors"]
    data_off = struct.unpack_from("<Q", model_bytes, 32)[0]
    hmat, vis = t["attention.h_mat"], t["visual.weight_panels"]
    cases = [
        ([(hmat["dims_at"], "<Q", 1 << 60)], "tensor 'attention.h_mat' dimension 0 is 1152921504606846976"),
        ([(hmat["dims_at"], "<Q", 0)], "dimension 0 is 0"),
        ([(vis["dims_at"], "<Q", 1 << 39), (vis["dims_at"] + 8, "<Q", 1 << 39)], "visual.weight_panels' dimension 1"),
        ([(hmat["offset_at"], "<Q", 1 << 62)], "attention.h_mat", "runs outside the"),
        ([(hmat["dims_at"], "<Q", 3)], "tensor 'attention.h_mat' (1728 bytes", "runs outside the"),
        ([(hmat["offset_at"], "<Q", 4)], "misaligned"),
        ([(hmat["offset_at"], "<Q", struct.unpack_from("<Q", model_bytes, vis["offset_at"])[0])], "overlap"),
        ([(hmat["ndim_at"], "<I", 9)], "has 9 dimensions"),
        ([(hmat["ndim_at"], "<I", 0)], "has 0 dimensions"),
        ([(hmat["dtype_at"], "<I", 7)], "dtype 7"),
        ([(hmat["dims_at"], "<Q", 1)], "'attention.h_mat' has shape (1, 144), the configuration needs (2, 144)"),
        ([(d["meta"]["ban.glimpses"]["value_at"], "<q", 3)],
         "'visual.weight_panels' has shape (8, 40, 32), the configuration needs (9, 40, 32)"),
        ([(d["meta"]["ban.glimpses"]["value_at"], "<q", -2)], "'ban.glimpses' = -2"),
        ([(d["meta"]["ban.hidden_dim"]["type_at"], "<I", 2)], "'ban.hidden_dim' has type 2, expected an integer"),
        ([(d["meta"]["ban.hidden_dim"]["type_at"], "<I", 3)], "'ban.hidden_dim' (type 3) has a malformed value"),
        ([(d["meta"]["ban.vocab_size"]["value_at"], "<q", 1 << 40)], "'ban.vocab_size' = 1099511627776"),
        ([(d["meta"]["tokenizer.words"]["value_at"], "<Q", 1 << 62)], "tokenizer.words"),
        ([(d["meta"]["tokenizer.words"]["value_at"], "<Q", 47)], "holds 47 strings, the configuration needs 48"),
        ([(d["meta"]["answers.labels"]["size_at"], "<Q", 1 << 63)], "answers.labels", "runs past"),
        ([(40, "<Q", len(model_bytes))], "truncated?"),
        ([(32, "<Q", data_off + 3)], "data section offset"),
        ([(8, "<I", 48)], "alignment 48"),
        ([(24, "<Q", 1 << 50)], "cannot fit"),
    ]
    for i, (edits, *needles) in enumerate(cases):
        refused(patched(tmp_path, model_bytes, edits, "case%d.ban" % i), *needles)


def test_hostile_model_files_in_rows(tmp_path, exported):
    """The same checks on a file whose weights are in rows (PyTorch's layout)."""
    rows = open(exported["g2_rows"], "rb").read()
    d = directory(rows)
    vis = d["tensors"]["visual.weight"]
    cases = [
        ([(d["meta"]["ban.glimpses"]["value_at"], "<q", 3)],
         "'visual.weight' has shape (240, 40), the configuration needs (288, 40)"),
        ([(vis["dims_at"], "<Q", 1 << 39), (vis["dims_at"] + 8, "<Q", 1 << 39)], "visual.weight' dimension 1"),
        ([(vis["ndim_at"], "<I", 3)], "'visual.weight'"),
    ]
    for i, (edits, *needles) in enumerate(cases):
        refused(patched(tmp_path, rows, edits, "rows%d.ban" % i), *needles)


def test_a_weight_in_both_layouts_is_refused(tmp_path, exported):
    import banfile
    meta, tensors = banfile.read_ban(exported["g2"])
    both = dict(tensors, **{"visual.weight": banfile.from_panels(tensors["visual.weight_panels"], 240)})
    banfile.write_ban(str(tmp_path / "both.ban"), meta, both)
    refused(tmp_path / "both.ban", "tensor 'visual.weight' is not part of this configuration")


def test_string_without_terminator(tmp_path, model_bytes):
    d = directory(model_bytes)
    at = d["meta"]["tokenizer.words"]["value_at"] + 8  # first word: u32 length, bytes, NUL
    (n,) = struct.unpack_from("<I", model_bytes, at)
    refused(patched(tmp_path, model_bytes, [(at + 4 + n, "<B", ord("x"))]), "'tokenizer.words' string 0",
            "not NUL-terminated")
    refused(patched(tmp_path, model_bytes, [(at + 4, "<B", 0)]), "holds a NUL byte")
    refused(patched(tmp_path, model_bytes, [(at, "<I", 1 << 30)]), "exceeds")


def test_truncated_and_empty_model_files(tmp_path, model_bytes):
    for n in (0, 10, 47, 48, 200, 3000, len(model_bytes) // 2, len(model_bytes) - 1):
        path = tmp_path / ("cut%d.ban" % n)
        path.write_bytes(model_bytes[:n])
        refused(path)
    refused(tmp_path / "missing.ban", "cannot open")
    refused(tmp_path, "not a regular file")


def test_run_refuses_hostile_model_files(tmp_path, model_bytes):
    """ban run, like ban info, exits 1 with the loader's message and writes nothing."""
    d = directory(model_bytes)
    hmat = d["tensors"]["attention.h_mat"]
    words = d["meta"]["tokenizer.words"]
    data_off = struct.unpack_from("<Q", model_bytes, 32)[0]
    cases = [
        (model_bytes[:data_off + 3000], "%d bytes" % (data_off + 3000), "truncated?"),
        (patched(tmp_path, model_bytes, [(hmat["dims_at"], "<Q", 1 << 40), (hmat["dims_at"] + 8, "<Q", 1 << 22)]
                 ).read_bytes(), "dimension 1 is 4194304", "attention.h_mat"),
        (patched(tmp_path, model_bytes, [(words["value_at"], "<Q", 1 << 40)]).read_bytes(), "tokenizer.words"),
    ]
    v, b, q = (save(tmp_path, k, G2[k]) for k in ("v", "b", "q"))
    for i, (data, *needles) in enumerate(cases):
        path = tmp_path / ("hostile%d.ban" % i)
        path.write_bytes(data)
        out = tmp_path / ("out%d.npy" % i)
        proc = run_ban("run", path, "--features", v, "--spatials", b, "--tokens", q, "--logits", out, check=False)
        assert proc.returncode == 1 and proc.stderr.startswith("ban: error: "), proc.stderr
        for n in needles:
            assert n in proc.stderr, proc.stderr
        assert not out.exists()


def test_fuzz_regressions_through_the_cli(tmp_path):
    """The model files of tests/fuzz/regressions through ban info: shown, or refused with a message."""
    import glob
    import os
    from conftest import ROOT
    files = sorted(glob.glob(os.path.join(ROOT, "tests", "fuzz", "regressions", "model", "*.ban")))
    assert files
    for path in files:
        proc = run_ban("info", path, check=False)
        assert proc.returncode in (0, 1), proc.stderr
        assert proc.returncode == 0 or proc.stderr.startswith("ban: error: " + path), proc.stderr


def test_unknown_tensor_and_missing_tensor(tmp_path, exported):
    import banfile
    meta, tensors = banfile.read_ban(exported["g2"])
    extra = dict(tensors, **{"surprise.weight": np.zeros(4, np.float32)})
    banfile.write_ban(str(tmp_path / "extra.ban"), meta, extra)
    refused(tmp_path / "extra.ban", "tensor 'surprise.weight' is not part of this configuration")
    missing = {k: v for k, v in tensors.items() if k != "glimpse.q_prj.bias"}
    banfile.write_ban(str(tmp_path / "missing.ban"), meta, missing)
    refused(tmp_path / "missing.ban", "tensor 'glimpse.q_prj.bias' is missing")
    meta2 = dict(meta, **{"ban.question_padding": "sideways"})
    banfile.write_ban(str(tmp_path / "conv.ban"), meta2, tensors)
    refused(tmp_path / "conv.ban", "'ban.question_padding' = 'sideways'")
    dup = dict(meta, **{"tokenizer.words": ["what"] * 48})
    banfile.write_ban(str(tmp_path / "dup.ban"), dup, tensors)
    refused(tmp_path / "dup.ban", "'what' is both word 0 and 1")


def save(tmp_path, name, arr):
    path = tmp_path / (name + ".npy")
    np.save(path, arr)
    return path


def run_args(tmp_path, exported, **over):
    arrays = {"v": G2["v"], "b": G2["b"], "q": G2["q"]}
    arrays.update({k: v for k, v in over.items() if isinstance(v, np.ndarray)})
    args = ["run", exported["g2"], "--features", save(tmp_path, "v", arrays["v"]), "--spatials",
            save(tmp_path, "b", arrays["b"]), "--tokens", save(tmp_path, "q", arrays["q"]), "--logits",
            tmp_path / "out.npy"]
    return run_ban(*args, *over.get("extra", []), check=False)


@pytest.mark.parametrize("over,needle", [
    # what was given, next to what is expected, and the NumPy call that fixes it when there is one
    ({"v": G2["v"][..., :39]}, "v.npy: float32 (6, 24, 39); expected float32 (B, K, 40)\n"),
    ({"v": G2["v"].astype(np.float64)}, "v.npy: float64 (6, 24, 40); expected float32 (B, K, 40): x.astype(np.float32)"),
    ({"v": G2["v"][0]}, "v.npy: float32 (24, 40); expected float32 (B, K, 40): x[np.newaxis]"),
    ({"v": G2["v"][0].astype(">f4")}, "float32, big-endian (24, 40); expected float32 (B, K, 40): "
                                       "x[np.newaxis].astype(np.float32)"),
    ({"b": G2["b"][:, :, :4]}, "b.npy: float32 (6, 24, 4); expected float32 (6, 24, 6)\n"),
    ({"b": G2["b"][:5]}, "b.npy: float32 (5, 24, 6); expected float32 (6, 24, 6)\n"),
    ({"q": G2["q"][:5].astype(np.int64)}, "q.npy: int64 (5, 14); expected int32 or int64 (6, L)\n"),
    ({"q": G2["q"].astype(np.float32)}, "q.npy: float32 (6, 14); expected int32 or int64 (6, L): x.astype(np.int64)"),
    ({"q": G2["q"].astype(np.uint16)}, "q.npy: uint16 (6, 14); expected int32 or int64 (6, L): x.astype(np.int64)"),
    ({"q": np.where(G2["q"] == 3, 999, G2["q"])}, "example 0, token 3: id 999 outside the vocabulary"),
    ({"v": np.where(np.arange(24)[None, :, None] < 100, 0, G2["v"]).astype(np.float32)}, "example 0 has no boxes"),
    ({"v": np.where(np.isclose(G2["v"], G2["v"][2, 3, 4]), np.nan, G2["v"]).astype(np.float32)},
     "example 2, box 3: feature 4 is not finite"),
    ({"extra": ["--glimpses", "3"]}, "glimpses 3 outside 0..2"),
    ({"extra": ["--glimpses", "x"]}, "--glimpses must be a whole number"),
    ({"extra": ["--entities", "e.npy"]}, "is a VQA model"),
    ({"extra": ["--bogus"]}, "unknown option --bogus"),
])
def test_bad_run_input(tmp_path, exported, over, needle):
    proc = run_args(tmp_path, exported, **over)
    assert proc.returncode in (1, 2), proc.stderr
    assert needle in proc.stderr, proc.stderr
    assert not (tmp_path / "out.npy").exists()


def test_box_counts_and_malformed_npy(tmp_path, exported):
    proc = run_args(tmp_path, exported, extra=["--box-counts", save(tmp_path, "n", np.array([24, 0, 3, 3, 3, 3]))])
    assert proc.returncode == 1 and "example 1: box count 0" not in proc.stderr and "no boxes" in proc.stderr
    proc = run_args(tmp_path, exported, extra=["--box-counts", save(tmp_path, "n", np.array([24, 30, 3, 3, 3, 3]))])
    assert proc.returncode == 1 and "example 1: box count 30 outside 0..24" in proc.stderr
    bad = tmp_path / "broken.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (2,"[:40])
    proc = run_ban("run", exported["g2"], "--features", bad, "--tokens", save(tmp_path, "q", G2["q"]), "--logits",
                   tmp_path / "o.npy", check=False)
    assert proc.returncode == 1 and "broken.npy" in proc.stderr
    arr = np.zeros((6, 24, 40), np.float32)
    short = tmp_path / "short.npy"
    np.save(short, arr)
    short.write_bytes(short.read_bytes()[:-8])
    proc = run_ban("run", exported["g2"], "--features", short, "--tokens", save(tmp_path, "q", G2["q"]), "--logits",
                   tmp_path / "o.npy", check=False)
    assert proc.returncode == 1 and "short.npy: 23032 bytes of data for a float32 array of 5760 elements" in proc.stderr
    fortran = tmp_path / "fortran.npy"
    np.save(fortran, np.asfortranarray(G2["v"]))
    proc = run_ban("run", exported["g2"], "--features", fortran, "--tokens", save(tmp_path, "q", G2["q"]),
                   "--logits", tmp_path / "o.npy", check=False)
    assert proc.returncode == 1 and "Fortran-ordered" in proc.stderr


def test_questions_file_must_match_the_features(tmp_path, exported):
    q = tmp_path / "q.txt"
    q.write_text("what color is the shirt?\nhow many people?\n")
    proc = run_ban("run", exported["g2"], "--features", save(tmp_path, "v", G2["v"]), "--spatials",
                   save(tmp_path, "b", G2["b"]), "--questions", q, "--logits", tmp_path / "o.npy", check=False)
    assert proc.returncode == 1 and "2 questions for 6 examples" in proc.stderr


def test_grounding_cli_checks(tmp_path, exported):
    fl = np.load(fixture_path("ban_ref_flickr.npz"))
    base = ["run", exported["flickr"], "--features", save(tmp_path, "v", fl["v"]), "--tokens",
            save(tmp_path, "q", fl["q"]), "--logits", tmp_path / "o.npy"]
    proc = run_ban(*base, check=False)
    assert proc.returncode == 1 and "grounding model: give --entities" in proc.stderr
    e = fl["e"].copy()
    e[2, 5] = 31
    proc = run_ban(*base, "--entities", save(tmp_path, "e", e), check=False)
    assert proc.returncode == 1 and "example 2, entity 5: position 31 outside the sentence's 30 tokens" in proc.stderr
    proc = run_ban(*base, "--entities", save(tmp_path, "e", fl["e"]), "--attention", tmp_path / "a.npy", check=False)
    assert proc.returncode == 1 and "VQA outputs" in proc.stderr


def test_usage(tmp_path):
    assert run_ban(check=False).returncode == 2
    assert "usage:" in run_ban("help").stdout
    assert run_ban("frobnicate", check=False).returncode == 2
    proc = run_ban("info", check=False)
    assert proc.returncode == 2 and "a model is required: ban info MODEL.ban" in proc.stderr


def test_simple_example_answers_like_the_reference(tmp_path, exported):
    import json
    import os
    import subprocess
    from conftest import BUILD
    simple = os.path.join(BUILD, "simple")
    cfg = json.load(open(fixture_path("ban_ref_g2.json")))
    for i in (0, 2):
        v, b = save(tmp_path, "v%d" % i, G2["v"][i:i + 1]), save(tmp_path, "b%d" % i, G2["b"][i:i + 1])
        proc = subprocess.run([simple, exported["g2"], v, b, cfg["questions"][i]], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == cfg["predicted_answers"][i] + "\n"


def test_answers_to_stdout(tmp_path, exported):
    import json
    proc = run_args(tmp_path, exported, extra=["--answers-out", "-"])
    assert proc.returncode == 0
    assert proc.stdout.split("\n")[:-1] == json.load(open(fixture_path("ban_ref_g2.json")))["predicted_answers"]


def test_encoder_that_would_need_a_huge_context_is_refused(tmp_path):
    """An encoder's input size is not backed by weights: 4096 x 4096 pixels through a conv of 32
    channels would need gigabytes per image in every context, so the loader refuses it."""
    import banfile
    meta = {"ban.task": "vqa", "ban.vocab_size": 3, "ban.embedding_dim": 4, "ban.embedding_tables": 1,
            "ban.feature_dim": 32, "ban.hidden_dim": 4, "ban.attention_rank": 3, "ban.glimpses": 1,
            "ban.question_length": 4, "ban.question_padding": "masked", "ban.box_padding": "counts",
            "ban.answer_count": 2, "ban.classifier_hidden": 8, "ban.counter_objects": 0,
            "encoder.input_size": [4096, 4096], "encoder.layers": [1, 32, 3, 1, 1, 2, 0, 0, 0, 0]}
    z = lambda *s: np.zeros(s, np.float32)  # noqa: E731
    tensors = {"encoder.input_affine": z(2, 3), "encoder.conv0.weight": z(32, 3, 3, 3), "encoder.conv0.bias": z(32),
               "word_embedding.weight": z(4, 4), "gru.weight_ih": z(12, 4), "gru.weight_hh": z(12, 4),
               "gru.bias_ih": z(12), "gru.bias_hh": z(12), "visual.weight": z(16, 32), "visual.bias": z(16),
               "attention.q_net.weight": z(12, 4), "attention.q_net.bias": z(12), "attention.h_mat": z(1, 12),
               "attention.h_bias": z(1), "glimpse.q_net.weight": z(1, 4, 4), "glimpse.q_net.bias": z(1, 4),
               "glimpse.q_prj.weight": z(1, 4, 4), "glimpse.q_prj.bias": z(1, 4), "classifier.0.weight": z(8, 4),
               "classifier.0.bias": z(8), "classifier.1.weight": z(2, 8), "classifier.1.bias": z(2)}
    banfile.write_ban(str(tmp_path / "huge.ban"), meta, tensors)
    # activation 32 x 4096^2 plus im2col 27 x 4096^2 = 59 x 16,777,216
    refused(tmp_path / "huge.ban", "the encoder needs 989855744 floats of buffers per image",
            "BAN_MAX_ENCODER_FLOATS")
    meta["encoder.input_size"] = [32, 32]  # the same model at a sane size loads (a grid of 1,024 cells)
    banfile.write_ban(str(tmp_path / "fine.ban"), meta, tensors)
    assert "image encoder:      32 x 32 RGB -> 2 layers -> 32 x 32 grid of 32-d cells" in \
        run_ban("info", tmp_path / "fine.ban").stdout


def test_info_names_the_layout_of_the_weights(tmp_path, exported):
    import banfile
    assert "weights:            in panels (ban.h's own matrix products)" in run_ban("info", exported["g2"]).stdout
    assert "weights:            in rows (CBLAS matrix products)" in run_ban("info", exported["g2_rows"]).stdout
    meta, tensors = banfile.read_ban(exported["g2"])
    mixed = {}
    for k, v in tensors.items():
        if k == "classifier.1.weight_panels":
            mixed["classifier.1.weight"] = banfile.from_panels(v, tensors["classifier.1.bias"].shape[0])
        else:
            mixed[k] = v
    banfile.write_ban(str(tmp_path / "mixed.ban"), meta, mixed)
    assert "weights:            8 of 9 in panels" in run_ban("info", tmp_path / "mixed.ban").stdout
    out = tmp_path / "l.npy"
    run_ban("run", tmp_path / "mixed.ban", "--features", save(tmp_path, "v", G2["v"]), "--spatials",
            save(tmp_path, "b", G2["b"]), "--tokens", save(tmp_path, "q", G2["q"]), "--logits", out)
    assert np.abs(np.load(out) - G2["logits"]).max() <= 1e-4
