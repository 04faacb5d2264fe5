"""One table of the model's weights: ban.h's BAN__WEIGHTS (printed by `ban info --tensors
--json`) and its Python mirror, tools/banfile.py's WEIGHTS, are the same list; and the
tensors that the Python side writes (random_model.py, the exporter, the fuzz seeds) are
exactly those the table gives their configuration, evaluated by banfile.shapes."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, fixture_path, run_ban

import banfile  # noqa: E402


def test_the_python_mirror_is_ban_h_s_table():
    table = json.loads(run_ban("info", "--tensors", "--json").stdout)["weights"]
    mirror = [{"name": n, "bias": b, "stack": s, "rows": r, "cols": c, "when": w, "linear": bool(lin)}
              for n, b, s, r, c, w, lin in banfile.WEIGHTS]
    assert table[:len(mirror)] == mirror
    # the rows whose shapes the file sets (the counter's functions) or the encoder's layers do
    assert [t["name"] for t in table[len(mirror):]] == ["counter.functions", "encoder.input_affine",
                                                         "encoder.convN.weight"]
    assert set(banfile.PANEL_WEIGHTS) == {t["name"] for t in table if t["linear"]}


def file_tensors(path):
    """{name: dims} of a model file as ban.h lists it (`ban info --tensors --json`), in rows."""
    out = json.loads(run_ban("info", path, "--tensors", "--json").stdout)["tensors"]
    meta, tensors = banfile.read_ban(str(path))
    rows = banfile.with_layout(tensors, "rows")
    assert {t["name"] for t in out} == set(tensors)
    return meta, {k: tuple(v.shape) for k, v in rows.items()}


def check(path):
    meta, dims = file_tensors(path)
    want = banfile.shapes(meta)
    extra = {k for k in dims if k == "counter.functions" or k.startswith("encoder.")}
    assert {k: v for k, v in dims.items() if k not in extra} == want, path


@pytest.mark.parametrize("options", [["--hidden", "24", "--glimpses", "3", "--feature-dim", "20", "--answers", "7",
                                      "--vocab", "30", "--embedding-dim", "8"],
                                     ["--hidden", "16", "--glimpses", "1", "--feature-dim", "12", "--answers", "5",
                                      "--vocab", "20", "--embedding-dim", "4", "--tables", "1", "--counter", "0",
                                      "--layout", "rows"]])
def test_random_models(tmp_path, options):
    out = tmp_path / "r.ban"
    subprocess.run([sys.executable, os.path.join(ROOT, "tools", "random_model.py"), "--output", str(out)] + options,
                   check=True, capture_output=True)
    check(out)


def test_exported_models(exported, tmp_path):
    for name in ("g2", "g2_rows", "flickr"):
        check(exported[name])
    import ban_export
    q = [fixture_path("openvqa/ovqa_vqa_g2.questions/%s.json" % s) for s in ("train", "val", "test", "vg")]
    ban_export.export(fixture_path("openvqa/ovqa_vqa_g2.pkl"), str(tmp_path / "v.ban"), vocab_questions=q)
    ban_export.export(fixture_path("openvqa/ovqa_gqa_g2.pkl"), str(tmp_path / "g.ban"),
                      dicts=fixture_path("openvqa/ovqa_gqa_g2.dicts.json"))
    check(tmp_path / "v.ban")
    check(tmp_path / "g.ban")


def test_fuzz_seed_models():
    models = sorted(glob.glob(os.path.join(ROOT, "tests", "fuzz", "corpus", "model", "*.ban")))
    checked = 0
    for path in models:
        if run_ban("info", path, check=False).returncode == 0:
            check(path)
            checked += 1
    assert checked >= 6


def test_the_text_form():
    text = run_ban("info", "--tensors").stdout
    assert "visual.weight" in text and "kD + vqa * G * Dg" in text
    proc = run_ban("info", "--json", check=False)
    assert proc.returncode == 2 and "--json goes with --tensors" in proc.stderr
