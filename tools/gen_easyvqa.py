#!/usr/bin/python3
"""Generate fresh easy-VQA images and questions, drawn as the dataset's generator draws them.

    python3 tools/gen_easyvqa.py --output DIR [--images 1000] [--seed 1]

Writes DIR/images/<id>.png and DIR/questions.json ([question, answer, image_id]), the layout of
an easy-VQA split, so that `build/ban easyvqa-eval --data DIR` scores a model on images it has
never seen. The procedure follows the facts of the dataset's generator (vzhou842/easy-VQA,
gen_data/): a background of random RGB in 230..255; one shape drawn at 128 x 128 without
anti-aliasing, then resized to 64 x 64 bilinearly; rectangles and circles 16..64 pixels
(at 128), anywhere inside the image; an equilateral triangle with a horizontal base and apex
up, side 16..64; eight colours; the question templates, kept with probability 32% (shape and
colour questions) or 8% (yes/no questions). Needs PIL (Debian: python3-pil).
"""
import argparse
import json
import math
import os
import random

from PIL import Image, ImageDraw

COLORS = {"black": (0, 0, 0), "gray": (128, 128, 128), "red": (255, 0, 0), "green": (0, 255, 0),
          "blue": (0, 0, 255), "yellow": (255, 255, 0), "teal": (0, 128, 128), "brown": (165, 42, 42)}
SHAPES = ("rectangle", "circle", "triangle")
SIZE, DRAW = 64, 128
LOW, HIGH = DRAW // 8, DRAW // 2


def draw(rng, shape, color):
    im = Image.new("RGB", (DRAW, DRAW), tuple(rng.randint(230, 255) for _ in range(3)))
    d = ImageDraw.Draw(im)
    if shape == "rectangle":
        w, h = rng.randint(LOW, HIGH), rng.randint(LOW, HIGH)
        x, y = rng.randint(0, DRAW - w), rng.randint(0, DRAW - h)
        d.rectangle([(x, y), (x + w, y + h)], fill=color)
    elif shape == "circle":
        s = rng.randint(LOW, HIGH)
        x, y = rng.randint(0, DRAW - s), rng.randint(0, DRAW - s)
        d.ellipse([(x, y), (x + s, y + s)], fill=color)
    else:
        s = rng.randint(LOW, HIGH)
        x, y = rng.randint(s, DRAW - s), rng.randint(s, DRAW - s)
        d.polygon([(x, y), (x + s, y), (x + s * math.cos(-math.pi / 3), y + s * math.sin(-math.pi / 3))], fill=color)
    return im.resize((SIZE, SIZE), resample=Image.BILINEAR)


def questions(rng, shape, color, image_id):
    open_q = [("what shape is in the image?", shape), ("what shape is present?", shape),
              ("what shape does the image contain?", shape), ("what is the %s shape?" % color, shape),
              ("what color is the %s?" % shape, color), ("what is the color of the %s?" % shape, color),
              ("what color is the shape?", color), ("what is the color of the shape?", color)]
    yes_no = []
    for name, here in [(s, s == shape) for s in SHAPES] + [(c + " shape", c == color) for c in COLORS]:
        pos, neg = ("yes", "no") if here else ("no", "yes")
        yes_no += [("is there a %s?" % name, pos), ("is there a %s in the image?" % name, pos),
                   ("does the image contain a %s?" % name, pos), ("is a %s present?" % name, pos),
                   ("is there not a %s?" % name, neg), ("is there not a %s in the image?" % name, neg),
                   ("does the image not contain a %s?" % name, neg), ("is no %s present?" % name, neg)]
    kept = [q for q in open_q if rng.randint(0, 99) < 32] + [q for q in yes_no if rng.randint(0, 99) < 8]
    return [[q, a, image_id] for q, a in kept]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--output", required=True)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(os.path.join(args.output, "images"), exist_ok=True)
    qs = []
    for i in range(args.images):
        shape, color = rng.choice(SHAPES), rng.choice(list(COLORS))
        draw(rng, shape, COLORS[color]).save(os.path.join(args.output, "images", "%d.png" % i), "png")
        qs += questions(rng, shape, color, i)
    with open(os.path.join(args.output, "questions.json"), "w") as f:
        json.dump(qs, f)
    print("%s: %d images, %d questions" % (args.output, args.images, len(qs)))


if __name__ == "__main__":
    main()
