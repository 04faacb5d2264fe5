"""The pictures build/ban draws (examples/picture.h): ban ask --attention-png for a pixel model,
the paper's Fig. 3 for box-feature models (ban ask, ban vqa), Fig. 4 for grounding (ban ground
--picture). Each is read back with PIL: a PNG of the size the layout gives (picture.h, LAYOUT),
the title band, a labelled panel per glimpse (its background, ink in its label), and the
attention drawn where the model put it: the pixel model's cells in the colour map over the
image, the six most attended boxes numbered on the photo, the map's largest and smallest cells
in the colour scale's ends, each phrase's top box in its colour. The attention the pictures
should show comes from ban run on the same inputs; the path checks come before any work."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, fixture_path, run_ban
from vqa_files import reference_spatials

EASYVQA = os.path.join(ROOT, "examples", "models", "easyvqa.ban")
TOOL = os.path.join(ROOT, "tools", "picture_inputs.py")

# picture.h's LAYOUT
TITLE_H, MARGIN, PAD, GAP, LABEL_H, LEGEND_W = 60, 16, 8, 12, 28, 84
BAND, CARD, WHITE = (38, 50, 56), (236, 239, 241), (255, 255, 255)
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
VIRIDIS = np.array([(68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141), (39, 173, 129),
                    (92, 200, 99), (170, 220, 50), (253, 231, 37)], float)


def viridis(t):
    x = min(max(t, 0.0), 1.0) * 8
    i = min(int(x), 7)
    return (1 - (x - i)) * VIRIDIS[i] + (x - i) * VIRIDIS[i + 1]


def read_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    im = Image.open(path)
    im.load()
    assert im.format == "PNG" and im.mode == "RGB"
    return np.asarray(im).astype(int)


def close(pixel, rgb, tol=3):
    return np.abs(np.asarray(pixel, int) - np.asarray(rgb, int)).max() <= tol


def ink(region, dark=True):
    """How many pixels of region are text: dark on a light ground, or light on a dark one."""
    lum = region.mean(axis=2)
    return int((lum < 110).sum() if dark else (lum > 200).sum())


def check_title(px):
    H, W, _ = px.shape
    band = px[:TITLE_H]
    assert close(band[2, 2], BAND) and close(band[TITLE_H - 2, W - 3], BAND)
    assert close(px[TITLE_H + 2, W // 2], WHITE)
    assert ink(band[8:30, MARGIN:MARGIN + 200], dark=False) > 60      # line 1: the question (or sentence)
    return band


def check_panel(px, x, y, w, h):
    """A panel at (x, y) of w x h: its background around the edges, ink where its label and its
    entropy are written; returns the label's crop."""
    for cx, cy in [(x + 1, y + 1), (x + w - 2, y + 1), (x + 1, y + h - 2), (x + w - 2, y + h - 2)]:
        assert close(px[cy, cx], CARD), (cx, cy, px[cy, cx])
    label = px[y + 6:y + 24, x + PAD:x + PAD + 90]
    assert ink(label) > 40                                             # "glimpse g"
    assert ink(px[y + 6:y + 24, x + w - PAD - 120:x + w - PAD]) > 40   # "entropy ... nats"
    return label


# ---- a pixel model ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    run_ban("demo", "--out", out)
    return out


def test_ask_pixels(tmp_path, shapes):
    image, question = shapes / "shape2.png", "what shape is in the image?"
    png = tmp_path / "att.png"
    out = run_ban("ask", EASYVQA, "--image", image, "--question", question, "--attention-png", png).stdout
    assert out.startswith("answer: triangle\n")
    # the attention the picture should show: ban run on the same pixels and question
    pixels = np.asarray(Image.open(image).convert("RGB"))
    np.save(tmp_path / "p.npy", pixels[None])
    (tmp_path / "q.txt").write_text(question + "\n")
    run_ban("run", EASYVQA, "--pixels", tmp_path / "p.npy", "--questions", tmp_path / "q.txt", "--logits",
            tmp_path / "l.npy", "--attention", tmp_path / "a.npy")
    att = np.load(tmp_path / "a.npy")[0]                               # (G, 64, P): an 8 x 8 grid
    cells = att.sum(axis=2)
    G = att.shape[0]
    px = read_png(png)
    side, pw, ph = 256, 256 + 2 * PAD, LABEL_H + 256 + PAD
    grid_w = G * pw + (G - 1) * GAP
    assert px.shape == (TITLE_H + MARGIN + ph + MARGIN, MARGIN + grid_w + GAP + LEGEND_W + MARGIN, 3)
    check_title(px)
    assert ink(px[32:56, MARGIN:MARGIN + 200], dark=False) > 60       # line 2: the answer
    labels = []
    for g in range(G):
        x, y = MARGIN + g * (pw + GAP), TITLE_H + MARGIN
        labels.append(check_panel(px, x, y, pw, ph))
        # every cell: the colour map over the image, the more opaque the more attended
        ix, iy, top = x + PAD, y + LABEL_H, cells.max()
        for r in range(8):
            for c in range(8):
                t = cells[g, r * 8 + c] / top
                # the image scaled 4 times, bilinearly: the cell's centre lies 0.625 of the way
                # from the centre of its source pixel 3 to that of 4 (of 0..7), down and across
                w = np.array([0.375, 0.625])
                under = np.einsum("i,j,ijc->c", w, w, pixels[r * 8 + 3:r * 8 + 5, c * 8 + 3:c * 8 + 5])
                a = 0.3 + 0.5 * t
                want = a * viridis(t) + (1 - a) * under
                got = px[iy + r * 32 + 16, ix + c * 32 + 16]
                assert close(got, want, 6), (g, r, c, got, want)
    assert not np.array_equal(labels[0], labels[1])                    # "glimpse 1", "glimpse 2"
    # the colour scale beside the panels: the largest value at the top
    lx, ly = MARGIN + grid_w + GAP, TITLE_H + MARGIN + LABEL_H
    assert close(px[ly + 1, lx + 7], VIRIDIS[-1], 4) and close(px[ly + side - 2, lx + 7], VIRIDIS[0], 4)
    assert ink(px[ly - 22:ly - 2, lx:lx + LEGEND_W]) > 30               # "attention"
    assert ink(px[ly:ly + side, lx + 20:lx + LEGEND_W]) > 60            # the ticks' labels


# ---- box-feature models: Fig. 3 ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def scene(tmp_path_factory, exported):
    """tools/picture_inputs.py's photo 42.png, its stores, questions, annotations and sentence."""
    d = tmp_path_factory.mktemp("scene")
    import subprocess
    import sys
    subprocess.run([sys.executable, TOOL, "--output", str(d)], check=True)
    for name in ("vqa", "flickr"):
        run_ban("features", "import", "--tsv", d / (name + ".tsv"), "--output", d / (name + ".store"))
    return d


def scene_boxes(n):
    import picture_inputs
    return np.array([b for _, b in picture_inputs.BOXES[:n]], np.float32)


def box_attention(tmp_path, exported, question):
    """ban run's attention (G, 24, 14) of the question on image 42's boxes and features."""
    g2 = np.load(fixture_path("ban_ref_g2.npz"))
    boxes = scene_boxes(24)
    np.save(tmp_path / "v.npy", g2["v"][0][None, :24])
    np.save(tmp_path / "b.npy", reference_spatials(boxes, 640, 480)[None])
    np.save(tmp_path / "n.npy", np.array([24], np.int32))
    (tmp_path / "q.txt").write_text(question + "\n")
    run_ban("run", exported["g2"], "--features", tmp_path / "v.npy", "--spatials", tmp_path / "b.npy", "--box-counts",
            tmp_path / "n.npy", "--questions", tmp_path / "q.txt", "--logits", tmp_path / "l.npy", "--attention",
            tmp_path / "a.npy", "--answers-out", tmp_path / "answer.txt")
    return np.load(tmp_path / "a.npy")[0], (tmp_path / "answer.txt").read_text().strip()


def near_outline(x, y, b, d=3):
    """(x, y) within d pixels of the outline of box b (x1, y1, x2, y2)."""
    inside_x, inside_y = b[0] - d < x < b[2] + d, b[1] - d < y < b[3] + d
    return (inside_y and (abs(x - b[0]) < d or abs(x - b[2]) < d)) or \
        (inside_x and (abs(y - b[1]) < d or abs(y - b[3]) < d))


def check_fig3(px, att):
    """A Fig. 3 picture of the 640 x 480 photo (drawn at 320 x 240), 24 boxes, 14 positions."""
    G, K, P = att.shape
    pw, ph = 2 * PAD + 320 + 16 + 96 + 6 + K * 12, LABEL_H + max(240, P * 20 + 36) + PAD
    grid_w = 2 * pw + GAP
    assert px.shape == (TITLE_H + MARGIN + ph + MARGIN, MARGIN + grid_w + GAP + LEGEND_W + MARGIN, 3)
    check_title(px)
    logs = np.log10(att)
    hi, lo = logs.max(), max(logs.max() - 4, logs.min())
    sx = sy = 0.5
    boxes = scene_boxes(K)
    for g in range(G):
        x, y = MARGIN + g * (pw + GAP), TITLE_H + MARGIN
        check_panel(px, x, y, pw, ph)
        order = list(np.argsort(-att[g].sum(axis=1), kind="stable"))
        # the six numbered boxes: each tag at its box's top left corner, in its colour, where no
        # tag of a better box (drawn after it) covers it
        px0, py0 = x + PAD, y + LABEL_H
        tags = [(px0 + max(0, boxes[k][0] * sx), py0 + max(0, boxes[k][1] * sy)) for k in order[:6]]
        for r in range(6):
            tx, ty = tags[r]
            qx, qy = tx + 2, ty + 2
            if any(abs(tx - ox) < 16 and abs(ty - oy) < 16 for ox, oy in tags[:r]) or \
               any(near_outline(qx, qy, [px0 + boxes[k][0] * sx, py0 + boxes[k][1] * sy, px0 + boxes[k][2] * sx,
                                         py0 + boxes[k][3] * sy]) for k in order[:r]):
                continue  # a better box's tag or outline, drawn after, covers it
            assert close(px[int(ty) + 2, int(tx) + 2], PALETTE[r], 4), (g, r, px[int(ty) + 2, int(tx) + 2])
        # the map: columns by decreasing attention, rows the positions, log-scaled
        mx, my = px0 + 320 + 16 + 96 + 6, py0
        for c in (0, 1, K - 1):
            for l in (0, 3, P - 1):
                t = (logs[g, order[c], l] - lo) / (hi - lo)
                assert close(px[my + l * 20 + 10, mx + c * 12 + 6], viridis(t), 3), (g, c, l)
        assert ink(px[my:my + P * 20, mx - 96:mx - 4]) > 200           # the words
        for r in range(6):                                             # the columns' numbers, coloured
            cell = px[my + P * 20 + 3:my + P * 20 + 16, mx + r * 12:mx + r * 12 + 12]
            assert (np.abs(cell - np.array(PALETTE[r])).max(axis=2) < 40).sum() >= 4, r
    lx, ly = MARGIN + grid_w + GAP, TITLE_H + MARGIN + LABEL_H
    assert close(px[ly + 1, lx + 7], VIRIDIS[-1], 4) and close(px[ly + 238, lx + 7], VIRIDIS[0], 4)


QUESTION = "what color is the man wearing?"


def test_ask_boxes(tmp_path, exported, scene):
    att, answer = box_attention(tmp_path, exported, QUESTION)
    png = tmp_path / "fig3.png"
    # the photo names the image (42.png); the probabilities are sigmoids
    out = run_ban("ask", exported["g2"], "--features", scene / "vqa.store", "--image", scene / "42.png", "--question",
                  QUESTION, "--top-k", 3, "--attention-png", png).stdout.split("\n")
    assert out[0] == "answer: " + answer and out[1].split()[:2] == ["1.", answer]
    logits = np.load(tmp_path / "l.npy")[0]
    assert abs(float(out[1].split()[-1]) - 1 / (1 + np.exp(-logits.max()))) < 1e-4
    check_fig3(read_png(png), att)
    # --image-id names it otherwise; without --attention-png no photo is needed
    proc = run_ban("ask", exported["g2"], "--features", scene / "vqa.store", "--image-id", 42, "--question", QUESTION,
                   "--top-k", 0)
    assert proc.stdout == "answer: %s\n" % answer
    os.link(scene / "42.png", tmp_path / "photo.png")
    run_ban("ask", exported["g2"], "--features", scene / "vqa.store", "--image", tmp_path / "photo.png", "--image-id",
            42, "--question", QUESTION, "--attention-png", tmp_path / "again.png")
    assert np.array_equal(read_png(tmp_path / "again.png"), read_png(png))


def test_vqa_draws_one_question(tmp_path, exported, scene):
    qs = json.load(open(scene / "questions.json"))["questions"]
    att, answer = box_attention(tmp_path, exported, qs[1]["question"])
    png = tmp_path / "q.png"
    run_ban("vqa", exported["g2"], "--features", scene / "vqa.store", "--questions", scene / "questions.json",
            "--output", tmp_path / "r.json", "--attention-png", png, "--question-id", qs[1]["question_id"], "--image",
            scene / "42.png")
    results = json.load(open(tmp_path / "r.json"))
    assert [r["question_id"] for r in results] == [q["question_id"] for q in qs]
    assert results[1]["answer"] == answer
    check_fig3(read_png(png), att)
    # the same picture as ban ask's
    run_ban("ask", exported["g2"], "--features", scene / "vqa.store", "--image", scene / "42.png", "--question",
            qs[1]["question"], "--attention-png", tmp_path / "ask.png")
    assert np.array_equal(read_png(tmp_path / "ask.png"), read_png(png))


# ---- grounding: Fig. 4 --------------------------------------------------------------------------------

def test_ground_picture(tmp_path, exported, scene):
    png = tmp_path / "fig4.png"
    args = ["ground", exported["flickr"], "--features", scene / "flickr.store", "--sentences", scene / "sentence.txt",
            "--line", 1, "--annotations", scene / "42.xml", "--top-k", 1]
    found = json.loads(run_ban(*args, "--image", scene / "42.png", "--json", "--picture", png).stdout)
    assert found["image_id"] == "42"                                   # from the photo's name
    assert json.loads(run_ban(*args, "--image", 42, "--json").stdout) == found
    px = read_png(png)
    n = len(found["phrases"])
    assert n == 3
    assert px.shape == (TITLE_H + MARGIN + 480 + GAP + (n + 1) * 20 + MARGIN, 2 * MARGIN + 640, 3)
    check_title(px)
    x0, y0 = MARGIN, TITLE_H + MARGIN
    truth = {1: (130, 150, 214, 430), 2: (92, 104, 252, 170), 3: (360, 170, 624, 330)}
    seen = []
    for i, ph in enumerate(found["phrases"]):
        x1, y1, x2, y2 = ph["boxes"][0]["box"]
        d = 3 * seen.count((x1, y1, x2, y2))                           # a box drawn before: inside it
        seen.append((x1, y1, x2, y2))
        # the top box, solid: its left edge all in the phrase's colour below its tag
        edge = px[int(y0 + y1 + d + 20):int(y0 + y2 - d - 2), int(round(x0 + x1 + d))]
        assert (np.abs(edge - np.array(PALETTE[i])).max(axis=1) <= 4).mean() > 0.9, i
        # the annotations' box of its chain, dashed: its bottom edge partly in the colour, partly not
        t = truth[int(ph["phrase_id"])]
        bottom = px[int(y0 + t[3]), int(x0 + t[0] + 4):int(x0 + t[2] - 4)]
        on = (np.abs(bottom - np.array(PALETTE[i])).max(axis=1) <= 4).mean()
        assert 0.35 < on < 0.85, (i, on)
    # the key: a row per phrase (its colour, its text), then the lines' key
    ky = y0 + 480 + GAP
    for i in range(n + 1):
        row = px[ky + i * 20:ky + (i + 1) * 20]
        colour = PALETTE[i] if i < n else (33, 41, 46)
        assert close(row[10, MARGIN + 10], colour, 4), i
        assert ink(row[:, MARGIN + 58:MARGIN + 300]) > 40, i
    # without annotations: no dashed boxes, the same top boxes
    run_ban(*[a for a in args if a not in ("--annotations", scene / "42.xml")], "--image", scene / "42.png",
            "--picture", tmp_path / "plain.png")
    plain = read_png(tmp_path / "plain.png")
    t = truth[2]
    assert not (np.abs(plain[int(y0 + t[1]), int(x0 + t[0] + 4):int(x0 + t[2] - 4)] - np.array(PALETTE[1]))
                .max(axis=1) <= 4).any()


# ---- the path checks, before any work -------------------------------------------------------------------

def picture_commands(exported, scene, shapes, out):
    ask = ["ask", EASYVQA, "--image", shapes / "shape0.png", "--question", "what shape is in the image?",
           "--attention-png", out]
    ask_boxes = ["ask", exported["g2"], "--features", scene / "vqa.store", "--image", scene / "42.png", "--question",
                 QUESTION, "--attention-png", out]
    vqa = ["vqa", exported["g2"], "--features", scene / "vqa.store", "--questions", scene / "questions.json",
           "--output", os.path.join(os.path.dirname(str(out)), "r.json"), "--question-id", 42000, "--image",
           scene / "42.png", "--attention-png", out]
    ground = ["ground", exported["flickr"], "--features", scene / "flickr.store", "--image", scene / "42.png",
              "--sentences", scene / "sentence.txt", "--line", 1, "--picture", out]
    return {"ask": (ask, "--attention-png"), "ask boxes": (ask_boxes, "--attention-png"),
            "vqa": (vqa, "--attention-png"), "ground": (ground, "--picture")}


@pytest.mark.parametrize("which", ["ask", "ask boxes", "vqa", "ground"])
def test_picture_paths_checked_first(tmp_path, exported, scene, shapes, which):
    args, option = picture_commands(exported, scene, shapes, tmp_path / "pic.jpg")[which]
    proc = run_ban(*args, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert ("%s %s: the picture is written as PNG, so its name must end in .png" % (option, tmp_path / "pic.jpg")
            in proc.stderr)
    missing = tmp_path / "no" / "such" / "pic.png"
    args, option = picture_commands(exported, scene, shapes, missing)[which]
    proc = run_ban(*args, check=False)
    assert proc.returncode == 1 and proc.stdout == ""                  # no answer printed: nothing ran
    assert proc.stderr == "ban: error: %s: cannot create: No such file or directory\n" % missing
    args, _ = picture_commands(exported, scene, shapes, tmp_path / "pic.png")[which]
    run_ban(*args)
    read_png(tmp_path / "pic.png")
    assert sorted(os.listdir(tmp_path)) == sorted(["pic.png"] + (["r.json"] if which == "vqa" else []))


def test_picture_options_refused(tmp_path, exported, scene, shapes):
    def refused(args, needle, rc=2):
        proc = run_ban(*args, check=False)
        assert proc.returncode == rc and needle in proc.stderr, (args, proc.stderr)
        assert not os.path.exists(tmp_path / "p.png")
    store = scene / "vqa.store"
    png = tmp_path / "p.png"
    refused(["ask", exported["g2"], "--image-id", 42, "--question", QUESTION], "--features STORE is required")
    refused(["ask", exported["g2"], "--features", store, "--question", QUESTION], "--image-id ID is required")
    refused(["ask", exported["g2"], "--features", store, "--image-id", 42, "--question", QUESTION, "--attention-png",
             png], "--attention-png draws on the photo: give --image PHOTO.png")
    refused(["ask", exported["g2"], "--features", store, "--image-id", 7, "--question", QUESTION],
            "image 7 has no features in", rc=1)
    refused(["ask", EASYVQA, "--image", shapes / "shape0.png", "--features", store, "--question", "what?"],
            "--features and --image-id are for models of box features")
    bad = tmp_path / "42.png"
    bad.write_bytes(b"not a picture")
    refused(["ask", exported["g2"], "--features", store, "--image", bad, "--question", QUESTION, "--attention-png",
             png], "%s: not a PNG or BMP image" % bad, rc=1)
    vqa = ["vqa", exported["g2"], "--features", store, "--questions", scene / "questions.json", "--output",
           tmp_path / "r.json"]
    refused(vqa + ["--attention-png", png, "--image", scene / "42.png"], "give all three")
    refused(vqa + ["--question-id", 42000], "give all three")
    refused(vqa + ["--attention-png", png, "--image", scene / "42.png", "--question-id", 7],
            "--question-id 7: no such question in", rc=1)
    assert not os.path.exists(tmp_path / "r.json")
    ground = ["ground", exported["flickr"], "--features", scene / "flickr.store", "--sentences",
              scene / "sentence.txt", "--line", 1]
    refused(ground + ["--image", 42, "--picture", png], "--picture draws on the photo")
    refused(ground + ["--image", 42, "--image-id", 42], "--image-id names the image of --image PHOTO.png")
    refused(["ground", exported["flickr"], "--features", scene / "flickr.store", "--split", tmp_path / "s.txt",
             "--annotations-dir", tmp_path, "--output", tmp_path / "o.json", "--picture", png],
            "--picture are for one sentence")


def test_text_cut_to_fit(tmp_path, shapes):
    """A question too long for the title (with a tab and letters beyond ASCII): cut with an
    ellipsis, the picture of the usual size."""
    question = "what\tshape is in the imag\u00e9 " * 20 + "?"
    png = tmp_path / "long.png"
    proc = run_ban("ask", EASYVQA, "--image", shapes / "shape1.png", "--question", question, "--attention-png", png)
    assert proc.stdout.startswith("answer: ")
    px = read_png(png)
    assert px.shape == (TITLE_H + MARGIN + LABEL_H + 256 + PAD + MARGIN,
                        MARGIN + 2 * (256 + 2 * PAD) + GAP + GAP + LEGEND_W + MARGIN, 3)
    check_title(px)
    assert close(px[20, px.shape[1] - 4], BAND)                         # nothing drawn past the margin
