"""OpenVQA's models from the files a user has to the files the evaluation servers take: the
per-image .npz features (VQA-v2's COCO_<split>_<id>.jpg.npz, GQA's <imageId>.npz) through
`ban features import --npz-dir`, VQA's and GQA's questions files through `ban vqa`, the
results / predictions files, and GQA's score (tools/gqa_score.py). The inputs are the
OpenVQA fixtures' own, so the answers must be the fixtures'."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, fixture_path, run_ban

import ban_export  # noqa: E402

OV = "openvqa/"


def fixture(name):
    return np.load(fixture_path(OV + name + ".npz")), json.load(open(fixture_path(OV + name + ".json")))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("ovqa_models")
    q = [fixture_path(OV + "ovqa_vqa_g2.questions/%s.json" % s) for s in ("train", "val", "test", "vg")]
    ban_export.export(fixture_path(OV + "ovqa_vqa_g2.pkl"), str(d / "vqa.ban"), vocab_questions=q,
                      answer_file=fixture_path(OV + "ovqa_vqa_g2.answer_dict.json"))
    ban_export.export(fixture_path(OV + "ovqa_gqa_g2.pkl"), str(d / "gqa.ban"),
                      dicts=fixture_path(OV + "ovqa_gqa_g2.dicts.json"), pad_boxes=20)
    return {"vqa": d / "vqa.ban", "gqa": d / "gqa.ban"}


def write_npz(folder, name, z, cfg, b, gqa, compressed):
    n = cfg["box_counts"][b]
    x = z["frcn"][b, :n].astype(np.float32)
    boxes = z["bbox_pixels"][b, :n].astype(np.float32)
    h, w = (int(v) for v in z["image_hw"][b])
    save = np.savez_compressed if compressed else np.savez
    if gqa:  # data/gqa/gqa_feat_preproc.py's keys
        save(str(folder / name), x=x, bbox=boxes, width=np.int64(w), height=np.int64(h))
    else:  # bottom-up-attention's, as OpenVQA's VQA-v2 features: x transposed
        save(str(folder / name), x=np.ascontiguousarray(x.T), bbox=boxes, image_w=np.int64(w), image_h=np.int64(h),
             num_bbox=np.int64(n))


def test_vqa_v2(tmp_path, models):
    z, cfg = fixture("ovqa_vqa_g2")
    feats = tmp_path / "val2014"
    feats.mkdir()
    questions = []
    for b, q in enumerate(cfg["questions"]):
        image_id = 458752 + b
        write_npz(feats, "COCO_val2014_%012d.jpg" % image_id, z, cfg, b, gqa=False, compressed=b % 2 == 1)
        questions.append({"image_id": image_id, "question": q, "question_id": image_id * 1000 + b})
    (tmp_path / "q.json").write_text(json.dumps({"info": {}, "task_type": "Open-Ended", "data_type": "mscoco",
                                                 "data_subtype": "val2014", "license": {}, "questions": questions}))
    run_ban("features", "import", "--npz-dir", feats, "--output", tmp_path / "val.store")
    info = run_ban("features", "info", tmp_path / "val.store").stdout
    assert "images:           6" in info and "458752 to 458757" in info
    run_ban("vqa", models["vqa"], "--features", tmp_path / "val.store", "--questions", tmp_path / "q.json",
            "--output", tmp_path / "results.json")
    results = json.load(open(tmp_path / "results.json"))
    assert [r["question_id"] for r in results] == [q["question_id"] for q in questions]
    assert [r["answer"] for r in results] == cfg["predicted_answers"]


def test_gqa(tmp_path, models):
    z, cfg = fixture("ovqa_gqa_g2")
    feats = tmp_path / "gqa-frcn"
    feats.mkdir()
    questions = {}
    image_ids = ["n%d" % (161313 + b) if b % 2 else str(2354786 + b) for b in range(len(cfg["questions"]))]
    for b, q in enumerate(cfg["questions"]):
        write_npz(feats, image_ids[b], z, cfg, b, gqa=True, compressed=b % 3 == 0)
        answer = cfg["predicted_answers"][b] if b < 4 else "umbrella"  # four right, two wrong
        questions["%08d" % (201000 + b)] = {
            "imageId": image_ids[b], "question": q, "answer": answer, "fullAnswer": answer + ".", "isBalanced": True,
            "types": {"structural": "query" if b % 2 else "verify", "semantic": "attr", "detailed": "color"},
            "groups": {"global": None, "local": "10q-%d" % b}, "semanticStr": "select: x -> query: color",
            "semantic": [{"operation": "select", "dependencies": [], "argument": "x"}], "entailed": [],
            "equivalent": ["%08d" % (201000 + b)], "annotations": {"question": {}, "answer": {}, "fullAnswer": {}}}
    (tmp_path / "testdev_balanced_questions.json").write_text(json.dumps(questions))
    run_ban("features", "import", "--npz-dir", feats, "--output", tmp_path / "gqa.store")
    run_ban("vqa", models["gqa"], "--features", tmp_path / "gqa.store", "--questions",
            tmp_path / "testdev_balanced_questions.json", "--output", tmp_path / "predictions.json")
    predictions = json.load(open(tmp_path / "predictions.json"))
    assert predictions == [{"questionId": k, "prediction": a} for k, a in zip(questions, cfg["predicted_answers"])]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gqa_score.py"), "--questions",
                           str(tmp_path / "testdev_balanced_questions.json"), "--predictions",
                           str(tmp_path / "predictions.json"), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    score = json.loads(proc.stdout)
    assert abs(score["accuracy"] - 100 * 4 / 6) < 1e-9


def test_npz_dir_errors(tmp_path):
    z, cfg = fixture("ovqa_gqa_g2")
    d = tmp_path / "feats"
    d.mkdir()
    write_npz(d, "a1", z, cfg, 0, gqa=True, compressed=False)
    (d / "broken.npz").write_bytes(b"PK\x03\x04 not really a zip")
    proc = run_ban("features", "import", "--npz-dir", d, "--output", tmp_path / "s.store", check=False)
    assert proc.returncode == 1 and "broken.npz" in proc.stderr and not (tmp_path / "s.store").exists()
    proc = run_ban("features", "import", "--npz-dir", d, "--output", tmp_path / "s.store", "--skip-bad", check=False)
    assert proc.returncode == 0 and "skipped 1 bad" in proc.stderr and "broken.npz" in proc.stderr, proc.stderr
    proc = run_ban("features", "import", "--npz-dir", tmp_path / "nowhere", "--output", tmp_path / "t.store",
                   check=False)
    assert proc.returncode == 1 and "nowhere" in proc.stderr
    proc = run_ban("features", "import", "--npz-dir", d, "--tsv", "x.tsv", "--output", tmp_path / "t.store",
                   check=False)
    assert proc.returncode == 2 and "--tsv or --npz-dir" in proc.stderr
