#!/usr/bin/env python3
"""Prepare the golden fixtures for the C tests: export the reference checkpoints with
tools/ban_export.py and unpack the .npz inputs and outputs into .npy files.

    python3 tests/prepare_fixtures.py OUT_DIR
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import ban_export  # noqa: E402

FIX = os.path.join(HERE, "fixtures")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    f = lambda name: os.path.join(FIX, name)  # noqa: E731
    ban_export.export(f("ban_ref_g2.pth"), os.path.join(out, "g2.ban"), f("ban_ref_g2.dictionary.pkl"),
                      f("ban_ref_g2.label2ans.pkl"))
    ban_export.export(f("ban_ref_g2.legacy.pth"), os.path.join(out, "g2_legacy.ban"), f("ban_ref_g2.dictionary.pkl"),
                      f("ban_ref_g2.label2ans.pkl"))
    ban_export.export(f("ban_ref_g2.pth"), os.path.join(out, "g2_rows.ban"), f("ban_ref_g2.dictionary.pkl"),
                      f("ban_ref_g2.label2ans.pkl"), layout="rows")
    ban_export.export(f("ban_ref_flickr.pth"), os.path.join(out, "flickr.ban"), f("ban_ref_flickr.dictionary.pkl"))
    for case in ("g2", "flickr"):
        z = np.load(f("ban_ref_%s.npz" % case))
        for key in z.files:
            np.save(os.path.join(out, "%s_%s.npy" % (case, key)), z[key])
        cfg = json.load(open(f("ban_ref_%s.json" % case)))
        np.save(os.path.join(out, "%s_box_counts.npy" % case), np.array(cfg["box_counts"], np.int32))
        if case == "g2":
            with open(os.path.join(out, "g2_questions.txt"), "w") as fq:
                fq.write("\n".join(cfg["questions"]) + "\n")
            with open(os.path.join(out, "g2_answers.txt"), "w") as fa:
                fa.write("\n".join(cfg["predicted_answers"]) + "\n")
    # OpenVQA's cases: the model, its inputs (features, the 6 spatial values from the pixel boxes,
    # box counts), token ids and golden outputs
    ov = lambda name: f(os.path.join("openvqa", name))  # noqa: E731
    q = [ov("ovqa_vqa_g2.questions/%s.json" % s) for s in ("train", "val", "test", "vg")]
    ban_export.export(ov("ovqa_vqa_g2.pkl"), os.path.join(out, "ovqa_vqa.ban"), answer_file=ov("ovqa_vqa_g2.answer_dict.json"),
                      vocab_questions=q)
    ban_export.export(ov("ovqa_gqa_g2.pkl"), os.path.join(out, "ovqa_gqa.ban"), dicts=ov("ovqa_gqa_g2.dicts.json"),
                      pad_boxes=20)
    for case, short in (("ovqa_vqa_g2", "ovqa_vqa"), ("ovqa_gqa_g2", "ovqa_gqa")):
        z = np.load(ov(case + ".npz"))
        cfg = json.load(open(ov(case + ".json")))
        bp, hw = z["bbox_pixels"].astype(np.float32), z["image_hw"].astype(np.float32)
        H, W = hw[:, 0:1], hw[:, 1:2]
        spat = np.stack([bp[..., 0] / W, bp[..., 1] / H, bp[..., 2] / W, bp[..., 3] / H, (bp[..., 2] - bp[..., 0]) / W,
                         (bp[..., 3] - bp[..., 1]) / H], -1).astype(np.float32)
        arrays = {"v": z["frcn"].astype(np.float32), "b": spat, "q": z["q"].astype(np.int32),
                  "logits": z["logits"], "att": z["att"], "box_counts": np.array(cfg["box_counts"], np.int32)}
        for key, arr in arrays.items():
            np.save(os.path.join(out, "%s_%s.npy" % (short, key)), arr)
    open(os.path.join(out, ".stamp"), "w").close()


if __name__ == "__main__":
    main()
