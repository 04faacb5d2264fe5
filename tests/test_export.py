"""tools/ban_export.py: both checkpoint layouts, refusal of pickles that would run code,
checkpoints that contradict themselves, atomic output, float16. The command runs with its
memory capped (test_torchfile.run_capped); the hostile files of issue 17 are in test_torchfile.py."""
import io
import os
import pickle
import subprocess
import zipfile

import numpy as np
import pytest

from conftest import fixture_path, run_ban
from test_torchfile import EXPORT, run_capped

import ban_export  # noqa: E402
import banfile  # noqa: E402
import torchfile  # noqa: E402

class Evil:
    """Pickles to a call of `func(arg)`: what a hostile checkpoint does."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def zip_checkpoint(path, obj_bytes, storages=None):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", obj_bytes)
        z.writestr("archive/version", "3\n")
        for key, data in (storages or {}).items():
            z.writestr("archive/data/" + key, data)


@pytest.mark.parametrize("func", [os.system, eval, subprocess.call], ids=["os.system", "eval", "subprocess.call"])
def test_zip_pickle_that_runs_code_is_refused(tmp_path, func):
    marker = tmp_path / "pwned"
    arg = "touch %s" % marker if func is not eval else "open(%r, 'w')" % str(marker)
    if func is subprocess.call:
        arg = ["touch", str(marker)]
    ckpt = tmp_path / "evil.pth"
    zip_checkpoint(ckpt, pickle.dumps({"model_state": {"x": Evil(func, arg)}}, protocol=2))
    proc = run_capped(EXPORT + [ckpt, "-o", tmp_path / "out.ban"])
    assert proc.returncode == 2
    assert "refusing to load it" in proc.stderr
    assert not marker.exists(), "the checkpoint's command ran"
    assert not (tmp_path / "out.ban").exists()


def test_legacy_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    data = io.BytesIO()
    for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(obj, data, protocol=2)
    pickle.dump(Evil(os.system, "touch %s" % marker), data, protocol=2)
    ckpt = tmp_path / "evil_legacy.pth"
    ckpt.write_bytes(data.getvalue())
    with pytest.raises(torchfile.CheckpointError, match="posix.system|os.system"):
        torchfile.load_checkpoint(str(ckpt))
    assert not marker.exists()


def test_dictionary_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    dic = tmp_path / "dictionary.pkl"
    dic.write_bytes(pickle.dumps([Evil(os.system, "touch %s" % marker), []]))
    proc = run_capped(EXPORT + [fixture_path("ban_ref_g2.pth"), "--dictionary", dic, "-o", tmp_path / "o.ban"])
    assert proc.returncode == 2 and "refusing" in proc.stderr and not marker.exists()


def reference_state():
    return torchfile.load_checkpoint(fixture_path("ban_ref_g2.pth"))


def export_state(tmp_path, state, **kw):
    sd = ban_export.find_state_dict(state, "test")
    return ban_export.convert(sd, "test", **kw)


@pytest.mark.parametrize("mutate,message", [
    (lambda sd: sd.pop("module.b_net.1.q_net.main.1.weight_v"), "b_net.1.q_net.main.1.weight_v' is missing"),
    (lambda sd: sd.__setitem__("module.b_net.0.v_net.main.1.weight_v", np.ones((48, 41), np.float32)),
     "b_net.0.v_net has shape (48, 41)"),
    (lambda sd: sd.__setitem__("module.q_prj.1.main.1.weight_v", np.zeros((48, 48), np.float32)),
     "q_prj.1.main.1.weight_v is all zeros"),
    (lambda sd: sd.__setitem__("module.q_emb.rnn.weight_ih_l0", np.zeros((144, 300), np.float32)),
     "GRU weight_ih_l0 has shape (144, 300), expected (144, 600)"),
    (lambda sd: sd.__setitem__("module.v_att.logits.h_bias", np.zeros((1, 3, 1, 1), np.float32)),
     "h_bias has shape (1, 3, 1, 1) for 2 glimpses"),
    (lambda sd: sd.__setitem__("module.extra.weight", np.zeros(3, np.float32)), "does not know what to do with"),
    (lambda sd: sd.__setitem__("module.b_net.2.v_net.main.1.weight_v", np.zeros((48, 40), np.float32)),
     "more glimpse networks"),
    (lambda sd: sd.__setitem__("module.classifier.main.3.weight_v", np.full((30, 96), np.nan, np.float32)),
     "NaN or infinite"),
    (lambda sd: sd.__setitem__("module.q_emb.rnn.weight_ih_l1", np.zeros((144, 48), np.float32)),
     "several layers or directions"),
])
def test_checkpoint_that_contradicts_itself_is_refused(tmp_path, mutate, message):
    state = reference_state()
    mutate(state["model_state"])
    with pytest.raises(ban_export.ExportError) as e:
        export_state(tmp_path, state)
    assert message in str(e.value)


def test_dictionary_and_answers_must_fit_the_checkpoint(tmp_path):
    with pytest.raises(ban_export.ExportError, match="48 words, but the checkpoint's embedding has 50 rows"):
        ban_export.export(fixture_path("ban_ref_flickr.pth"), str(tmp_path / "o.ban"),
                          fixture_path("ban_ref_g2.dictionary.pkl"))
    bad = tmp_path / "answers.pkl"
    bad.write_bytes(pickle.dumps(["yes", "no"]))
    with pytest.raises(ban_export.ExportError, match="2 answers, but the classifier has 30 outputs"):
        ban_export.export(fixture_path("ban_ref_g2.pth"), str(tmp_path / "o.ban"), answer_file=str(bad))
    with pytest.raises(ban_export.ExportError, match="--op 'c' disagrees"):
        ban_export.export(fixture_path("ban_ref_flickr.pth"), str(tmp_path / "o.ban"), op="c")


def test_truncated_checkpoints_are_refused(tmp_path):
    for src in ("ban_ref_g2.pth", "ban_ref_g2.legacy.pth"):
        with open(fixture_path(src), "rb") as f:
            data = f.read()
        for cut in (10, len(data) // 3, len(data) - 100):
            bad = tmp_path / ("cut_%d_%s" % (cut, src))
            bad.write_bytes(data[:cut])
            with pytest.raises(torchfile.CheckpointError):
                torchfile.load_checkpoint(str(bad))


def test_zip_storage_shorter_than_its_tensor_is_refused(tmp_path):
    z = zipfile.ZipFile(fixture_path("ban_ref_g2.pth"))
    bad = tmp_path / "short.pth"
    with zipfile.ZipFile(bad, "w") as out:
        for name in z.namelist():
            data = z.read(name)
            out.writestr(name, data[:-4] if name.endswith("/data/0") else data)
    with pytest.raises(torchfile.CheckpointError, match="storage '0' holds 58796 bytes"):
        torchfile.load_checkpoint(str(bad))


def test_strided_and_shared_storages_are_read_as_pytorch_reads_them(tmp_path):
    torch = pytest.importorskip("torch")
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    state = {"t": base.t(), "narrow": base[2:4, 3:7], "same": base, "half": base.half()[1]}
    for legacy in (False, True):
        path = tmp_path / ("strided%d.pth" % legacy)
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
        got = torchfile.load_checkpoint(str(path))
        for k, v in state.items():
            assert np.array_equal(got[k], v.numpy()) and got[k].dtype == v.numpy().dtype, (k, legacy)


def test_failed_export_leaves_the_old_file_alone(tmp_path):
    out = tmp_path / "model.ban"
    out.write_bytes(b"previous")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"PK\x03\x04garbage")
    proc = run_capped(EXPORT + [bad, "-o", out])
    assert proc.returncode == 2 and "corrupt zip" in proc.stderr
    assert out.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["bad.pth", "model.ban"]  # no temporary file left behind


def test_export_cli_output_and_help(tmp_path):
    out = tmp_path / "m.ban"
    proc = run_capped(EXPORT + [fixture_path("ban_ref_g2.legacy.pth"), "--dictionary",
                                fixture_path("ban_ref_g2.dictionary.pkl"), "--answers",
                                fixture_path("ban_ref_g2.label2ans.pkl"), "--output", out])
    assert proc.returncode == 0, proc.stderr
    assert "vqa model, 2 glimpses, hidden 48, features 40, 48 words, 30 answers, 158632 parameters" in proc.stdout
    info = run_ban("info", out).stdout
    assert "parameters:         158632" in info and "counter:            top 10 boxes" in info
    assert run_capped(EXPORT + ["--help"]).returncode == 0


def test_float16_export_keeps_the_answers(tmp_path):
    out = tmp_path / "half.ban"
    ban_export.export(fixture_path("ban_ref_g2.pth"), str(out), fp16=True)
    assert os.path.getsize(out) < 0.55 * os.path.getsize(fixture_path("ban_ref_g2.pth"))
    g = np.load(fixture_path("ban_ref_g2.npz"))
    for k in "vbq":
        np.save(tmp_path / (k + ".npy"), g[k])
    run_ban("run", out, "--features", tmp_path / "v.npy", "--spatials", tmp_path / "b.npy", "--tokens",
            tmp_path / "q.npy", "--logits", tmp_path / "l.npy")
    logits = np.load(tmp_path / "l.npy")
    assert (logits.argmax(1) == g["logits"].argmax(1)).all()
    assert np.abs(logits - g["logits"]).max() < 0.05


def test_state_dict_without_wrapper_or_prefix(tmp_path):
    state = reference_state()["model_state"]
    bare = {k[len("module."):]: v for k, v in state.items()}
    meta, tensors = export_state(tmp_path, bare)
    meta2, tensors2 = export_state(tmp_path, {"model_state": state})
    assert meta == meta2 and all(np.array_equal(tensors[k], tensors2[k]) for k in tensors)


def test_panels_hold_the_rows_exactly(tmp_path):
    """--layout panels (the default) and --layout rows write the same weights: panel p holds
    rows 32p..32p+31 transposed, zeros past the last row; every other tensor is identical."""
    panels, rows = tmp_path / "p.ban", tmp_path / "r.ban"
    ban_export.export(fixture_path("ban_ref_g2.pth"), str(panels))
    assert run_capped(EXPORT + [fixture_path("ban_ref_g2.pth"), "-o", rows, "--layout", "rows"]).returncode == 0
    _, tp = banfile.read_ban(str(panels))
    _, tr = banfile.read_ban(str(rows))
    assert sorted(k + "_panels" if k in banfile.PANEL_WEIGHTS else k for k in tr) == sorted(tp)
    held = [name for name in banfile.PANEL_WEIGHTS if name in tr]  # the reference has no adapter
    assert len(held) == 9, held
    for name in held:
        w, p = tr[name], tp[name + "_panels"]
        n, k = w.shape[-2:]
        assert p.shape == w.shape[:-2] + (-(-n // 32), k, 32), name
        for r in (0, 1, n // 2, n - 1):
            assert np.array_equal(p[..., r // 32, :, r % 32], w[..., r, :]), (name, r)
        if n % 32:
            assert not p[..., -1, :, n % 32:].any(), name
        assert np.array_equal(banfile.from_panels(p, n), w), name
    assert all(np.array_equal(v, banfile.with_layout(tp, "rows")[k]) for k, v in tr.items())
    assert all(np.array_equal(v, banfile.with_layout(tr, "panels")[k]) for k, v in tp.items())
    with pytest.raises(ValueError):
        banfile.with_layout(tr, "columns")
