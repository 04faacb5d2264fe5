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
    for dtype in ("bf16", "int8"):  # reduced weights (docs/FORMAT.md), held to bounds by tests/test_quant.c
        ban_export.export(f("ban_ref_g2.pth"), os.path.join(out, "g2_%s.ban" % dtype), f("ban_ref_g2.dictionary.pkl"),
                          f("ban_ref_g2.label2ans.pkl"), dtype=dtype)
        ban_export.export(f("ban_ref_flickr.pth"), os.path.join(out, "flickr_%s.ban" % dtype),
                          f("ban_ref_flickr.dictionary.pkl"), dtype=dtype)
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
    open(os.path.join(out, ".stamp"), "w").close()


if __name__ == "__main__":
    main()
