#!/usr/bin/python3
"""Inputs for the pictures of box-feature models (ban ask / ban vqa --attention-png, ban ground
--picture): a drawn photo, boxes on its shapes, and the golden fixtures' box features.

    python3 tools/picture_inputs.py --output DIR

Writes, in DIR:
  42.png          a 640 x 480 photo drawn here (a man under a red umbrella, a bus, a table
                  with a cat, a dog, a sign, the sun), named by its image id
  vqa.tsv         image 42 for tests/fixtures/ban_ref_g2 (40-d features): 24 boxes on the
                  photo's shapes, with the fixture's first example's features
  flickr.tsv      image 42 for tests/fixtures/ban_ref_flickr (32-d): the first 20 of those
                  boxes, with that fixture's first example's features
                  (both in the bottom-up-attention TSV format: build/ban features import)
  questions.json  an official VQA questions file: questions 42000..42002 about image 42
  42.xml          Flickr30k Entities annotations of the photo: chain 1 the man, 2 the
                  umbrella, 3 the bus
  sentence.txt    a Flickr30k Entities sentence with those three chains

The features are the golden test fixtures' (models with random weights), placed on boxes of
a drawn scene: the pictures show what is drawn and where, not a trained model's judgement.
Needs numpy and PIL (Debian: python3-numpy, python3-pil).
"""
import argparse
import base64
import json
import os

import numpy as np
from PIL import Image, ImageDraw

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
W, H = 640, 480
IMAGE_ID = 42
SENTENCE = "[/EN#1/people A man] holding [/EN#2/other a red umbrella] to the left of [/EN#3/vehicles a bus] ."
QUESTIONS = ["What color is the man wearing?", "Where is the cat?", "Is it sunny outside?"]

# (name, box x1, y1, x2, y2): the shapes drawn, then regions made of several
BOXES = [
    ("bus", (360, 170, 624, 330)), ("bus window 1", (378, 188, 424, 232)), ("bus window 2", (436, 188, 482, 232)),
    ("bus window 3", (494, 188, 540, 232)), ("bus window 4", (552, 188, 598, 232)),
    ("bus wheel 1", (388, 300, 448, 360)), ("bus wheel 2", (536, 300, 596, 360)),
    ("man", (130, 150, 214, 430)), ("head", (150, 150, 194, 194)), ("shirt", (138, 198, 206, 300)),
    ("legs", (144, 300, 200, 430)), ("umbrella", (92, 104, 252, 170)), ("table", (232, 330, 352, 430)),
    ("table top", (232, 330, 352, 344)), ("dog", (20, 370, 116, 440)), ("dog head", (84, 356, 122, 392)),
    ("cat", (262, 294, 318, 332)), ("sign", (582, 40, 632, 90)), ("sign pole", (602, 90, 612, 170)),
    ("sun", (30, 24, 94, 88)), ("ground", (0, 330, 640, 480)), ("sky", (0, 0, 640, 330)),
    ("man and umbrella", (92, 104, 252, 430)), ("table and cat", (232, 294, 352, 430)),
]


# what the photo shows, drawn in this order: (PIL's ImageDraw method, its box, colour)
SCENE = [
    ("rectangle", (0, 330, W, H), (150, 190, 120)), ("ellipse", (30, 24, 94, 88), (250, 204, 40)),
    ("rectangle", (360, 170, 624, 330), (240, 190, 30)),
    *[("rectangle", (x, 188, x + 46, 232), (60, 90, 130)) for x in (378, 436, 494, 552)],
    *[("ellipse", (x, 300, x + 60, 360), (30, 30, 30)) for x in (388, 536)],
    *[("ellipse", (x + 18, 318, x + 42, 342), (150, 150, 150)) for x in (388, 536)],
    ("rectangle", (602, 90, 612, 170), (110, 110, 110)), ("rectangle", (582, 40, 632, 90), (200, 30, 30)),
    ("rectangle", (144, 300, 170, 430), (40, 60, 140)), ("rectangle", (174, 300, 200, 430), (40, 60, 140)),
    ("rectangle", (138, 198, 206, 300), (230, 60, 50)), ("ellipse", (150, 150, 194, 194), (240, 200, 160)),
    ("rectangle", (170, 110, 174, 200), (60, 40, 30)), ("pieslice", (92, 104, 252, 236), (220, 20, 40)),
    ("rectangle", (232, 330, 352, 344), (130, 80, 40)), ("rectangle", (240, 344, 252, 430), (110, 66, 32)),
    ("rectangle", (332, 344, 344, 430), (110, 66, 32)), ("ellipse", (262, 300, 318, 332), (120, 120, 120)),
    ("ellipse", (296, 294, 318, 314), (120, 120, 120)), ("ellipse", (20, 380, 100, 440), (150, 100, 50)),
    ("ellipse", (84, 356, 122, 392), (150, 100, 50)),
]


def draw_photo(path):
    im = Image.new("RGB", (W, H), (182, 220, 244))
    d = ImageDraw.Draw(im)
    for method, box, colour in SCENE:
        if method == "pieslice":  # the umbrella: the upper half of a disc
            d.pieslice(box, 180, 360, fill=colour)
        else:
            getattr(d, method)(box, fill=colour)
    im.save(path)


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def write_tsv(path, features, n):
    boxes = np.array([b for _, b in BOXES[:n]], np.float32)
    fields = [str(IMAGE_ID), str(W), str(H), str(n), b64(boxes), b64(features[:n])]
    with open(path, "w", newline="") as f:
        f.write("\t".join(fields) + "\r\n")


def box_xml(names, box):
    chains = "".join("    <name>%d</name>\n" % c for c in names)
    return ("  <object>\n%s    <bndbox>\n      <xmin>%d</xmin>\n      <ymin>%d</ymin>\n      <xmax>%d</xmax>\n"
            "      <ymax>%d</ymax>\n    </bndbox>\n  </object>\n" % (chains, *box))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--output", required=True, help="the folder to write (made if missing)")
    out = ap.parse_args().output
    os.makedirs(out, exist_ok=True)
    draw_photo(os.path.join(out, "%d.png" % IMAGE_ID))
    g2 = np.load(os.path.join(FIXTURES, "ban_ref_g2.npz"))["v"][0]
    fl = np.load(os.path.join(FIXTURES, "ban_ref_flickr.npz"))["v"][0]
    write_tsv(os.path.join(out, "vqa.tsv"), g2, 24)
    write_tsv(os.path.join(out, "flickr.tsv"), fl, 20)
    with open(os.path.join(out, "questions.json"), "w") as f:
        json.dump({"info": {"description": "tools/picture_inputs.py"}, "task_type": "Open-Ended",
                   "data_type": "mscoco", "data_subtype": "val2014",
                   "questions": [{"image_id": IMAGE_ID, "question": q, "question_id": IMAGE_ID * 1000 + i}
                                 for i, q in enumerate(QUESTIONS)]}, f, indent=1)
    boxes = dict(BOXES)
    with open(os.path.join(out, "%d.xml" % IMAGE_ID), "w") as f:
        f.write("<annotation>\n  <filename>%d.jpg</filename>\n  <size>\n    <width>%d</width>\n"
                "    <height>%d</height>\n    <depth>3</depth>\n  </size>\n" % (IMAGE_ID, W, H))
        f.write(box_xml([1], boxes["man"]) + box_xml([2], boxes["umbrella"]) + box_xml([3], boxes["bus"]))
        f.write("</annotation>\n")
    with open(os.path.join(out, "sentence.txt"), "w") as f:
        f.write(SENTENCE + "\n")


if __name__ == "__main__":
    main()
