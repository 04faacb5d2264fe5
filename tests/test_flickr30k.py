"""Tests of tools/flickr30k.py: the Flickr30k Entities parsers and the grounding scorer.

Every expected value below is worked out by hand from the files written here.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "flickr30k.py")
sys.path.insert(0, os.path.join(ROOT, "tools"))

import flickr30k as fk  # noqa: E402


def run(*args):
    return subprocess.run([sys.executable, TOOL] + [str(a) for a in args],
                          capture_output=True, text=True)


def write(path, text, newline="\n"):
    os.makedirs(os.path.dirname(str(path)), exist_ok=True)
    with open(str(path), "w", encoding="utf-8", newline=newline) as f:
        f.write(text)
    return str(path)


def xml_object(names, box=None, nobndbox=None, scene=None):
    """One <object> as the dataset writes it."""
    s = "  <object>\n"
    for name in names:
        s += "    <name>%s</name>\n" % name
    if box is not None:
        s += ("    <bndbox>\n      <xmin>%s</xmin>\n      <ymin>%s</ymin>\n"
              "      <xmax>%s</xmax>\n      <ymax>%s</ymax>\n    </bndbox>\n" % tuple(box))
    else:
        s += "    <nobndbox>%d</nobndbox>\n    <scene>%d</scene>\n" % (nobndbox, scene)
    return s + "  </object>\n"


def xml_file(objects, width=500, height=375, filename="1.jpg"):
    return ("<annotation>\n  <filename>%s</filename>\n  <size>\n    <width>%d</width>\n"
            "    <height>%d</height>\n    <depth>3</depth>\n  </size>\n%s</annotation>\n"
            % (filename, width, height, "".join(objects)))


# ------------------------------------------------------------------ sentences

def test_sentence_line_basic_and_multitype():
    s = fk.parse_sentence_line("[/EN#255545/bodyparts/people A man 's arm] holds "
                               "[/EN#255546/other/clothing a red scarf] .")
    assert s["sentence"] == "A man 's arm holds a red scarf ."
    assert s["phrases"] == [
        {"first_word_index": 0, "last_word_index": 3, "phrase": "A man 's arm",
         "phrase_id": "255545", "phrase_type": ["bodyparts", "people"]},
        {"first_word_index": 5, "last_word_index": 7, "phrase": "a red scarf",
         "phrase_id": "255546", "phrase_type": ["other", "clothing"]},
    ]


def test_sentence_line_notvisual_and_single_word_phrase():
    s = fk.parse_sentence_line("[/EN#0/notvisual Someone] watches [/EN#7/animals dogs] play")
    assert s["sentence"] == "Someone watches dogs play"
    assert s["phrases"] == [
        {"first_word_index": 0, "last_word_index": 0, "phrase": "Someone",
         "phrase_id": "0", "phrase_type": ["notvisual"]},
        {"first_word_index": 2, "last_word_index": 2, "phrase": "dogs",
         "phrase_id": "7", "phrase_type": ["animals"]},
    ]


def test_sentence_line_whitespace_collapses():
    # tabs, runs of spaces, leading/trailing blanks: split() then joined by one space
    s = fk.parse_sentence_line("  A\t\t[/EN#3/people young   boy]  runs .  ")
    assert s["sentence"] == "A young boy runs ."
    assert s["phrases"] == [{"first_word_index": 1, "last_word_index": 2, "phrase": "young boy",
                             "phrase_id": "3", "phrase_type": ["people"]}]


def test_sentence_line_stray_closing_bracket_is_a_word():
    # outside a phrase a token ending with ']' is an ordinary word for the official code
    s = fk.parse_sentence_line("a b] c")
    assert s == {"sentence": "a b] c", "phrases": []}


def test_sentences_file_skips_only_empty_lines(tmp_path):
    text = ("[/EN#1/people A man] sits .\n"
            "\n"
            "   \n"                              # whitespace only: kept, no words
            "[/EN#2/scene The beach] .\r\n"      # CRLF: universal newlines
            "[/EN#1/people He] waves\r"          # lone CR ends a line too
            "last [/EN#0/notvisual one]\n")
    path = write(tmp_path / "Sentences" / "1.txt", text, newline="")
    got = fk.parse_sentences_file(path)
    assert [s["sentence"] for s in got] == ["A man sits .", "", "The beach .", "He waves", "last one"]
    assert got[1]["phrases"] == []
    assert got[2]["phrases"][0]["phrase"] == "The beach"
    assert got[3]["phrases"][0] == {"first_word_index": 0, "last_word_index": 0, "phrase": "He",
                                    "phrase_id": "1", "phrase_type": ["people"]}
    assert got[4]["phrases"][0]["first_word_index"] == 1


@pytest.mark.parametrize("line, message", [
    ("[/EN#1/people a man sits", "unclosed bracket"),
    ("a [ b", "malformed phrase markup"),
    ("[foo bar]", "malformed phrase markup"),
    ("[/EN#/people a]", "malformed phrase markup"),
    ("[/EN#1/people] a", "closes before any word"),
    ("[/EN#1/people a [/EN#2/other b] c]", "nested"),
])
def test_sentence_markup_errors(line, message):
    with pytest.raises(fk.Flickr30kError) as e:
        fk.parse_sentence_line(line, "S.txt", 4)
    assert message in str(e.value)
    assert str(e.value).startswith("S.txt:4: error:")


# ---------------------------------------------------------------- annotations

def annotations_example():
    return xml_file([
        xml_object(["10"], box=(1, 2, 50, 60)),
        xml_object(["10"], box=(100, 110, 150, 160)),         # second box of chain 10
        xml_object(["20", "21"], box=(5, 6, 7, 8)),           # one box, two chains
        xml_object(["30"], nobndbox=1, scene=0),
        xml_object(["31", "32"], nobndbox=0, scene=1),        # scene flag, two chains
        xml_object(["33"], nobndbox=1, scene=1),
    ])


def test_annotations_official_offsets(tmp_path):
    path = write(tmp_path / "Annotations" / "1.xml", annotations_example())
    got = fk.parse_annotations_file(path)
    # the official get_annotations subtracts 1 from every coordinate
    assert got == {"boxes": {"10": [[0, 1, 49, 59], [99, 109, 149, 159]],
                             "20": [[4, 5, 6, 7]], "21": [[4, 5, 6, 7]]},
                   "scene": ["31", "32", "33"], "nobox": ["30", "33"],
                   "width": 500, "height": 375, "depth": 3}
    assert list(got) == ["boxes", "scene", "nobox", "width", "height", "depth"]


def test_annotations_raw(tmp_path):
    path = write(tmp_path / "Annotations" / "1.xml", annotations_example())
    got = fk.parse_annotations_file(path, raw=True)
    assert got["boxes"] == {"10": [[1, 2, 50, 60], [100, 110, 150, 160]],
                            "20": [[5, 6, 7, 8]], "21": [[5, 6, 7, 8]]}


def test_annotations_whitespace_in_integers(tmp_path):
    # int() accepts surrounding whitespace, as in the official code
    text = xml_file([xml_object(["4"], box=(" 3", "4 ", "\n 9\n", "10"))])
    got = fk.parse_annotations_file(write(tmp_path / "a.xml", text))
    assert got["boxes"] == {"4": [[2, 3, 8, 9]]}


@pytest.mark.parametrize("text, line, message", [
    # unclosed <object>: the mismatch is found at </annotation>, line 5
    ("<annotation>\n<size><width>1</width></size>\n<object>\n<name>1</name>\n</annotation>\n",
     5, "malformed XML"),
    ("<annotation>\n<size><width>1</width></size>\n<object>\n<name>1</name>\n<bndbox>\n"
     "<xmin>1.5</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>\n</bndbox>\n</object>\n"
     "</annotation>\n", 6, "not an integer"),
    ("<annotation>\n<size>\n<width>wide</width>\n</size>\n</annotation>\n", 3, "not an integer"),
    ("<annotation>\n<size><width>1</width></size>\n<object>\n<name>1</name>\n<bndbox>\n"
     "<xmin>1</xmin><ymin>1</ymin><xmax>2</xmax>\n</bndbox>\n</object>\n</annotation>\n",
     5, "has no <ymax>"),
    ("<annotation>\n<size><width>1</width></size>\n<object>\n<name>1</name>\n"
     "<scene>1</scene>\n</object>\n</annotation>\n", 3, "has no <nobndbox>"),
    ("<annotation>\n<filename>x</filename>\n</annotation>\n", 1, "has no <size>"),
    ("", 1, "malformed XML"),
])
def test_annotation_errors(tmp_path, text, line, message):
    path = write(tmp_path / "bad.xml", text)
    with pytest.raises(fk.Flickr30kError) as e:
        fk.parse_annotations_file(path)
    assert e.value.line == line
    assert message in e.value.message


# -------------------------------------------------------------------- inspect

def test_inspect_cli(tmp_path):
    spath = write(tmp_path / "Sentences" / "1.txt",
                  "[/EN#10/people/other Two men] near [/EN#0/notvisual it] .\n\n"
                  "[/EN#20/scene A street]\n")
    apath = write(tmp_path / "Annotations" / "1.xml", annotations_example())
    r = run("inspect", "--sentences", spath, "--annotations", apath)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["sentences"] == [
        {"sentence": "Two men near it .", "phrases": [
            {"first_word_index": 0, "last_word_index": 1, "phrase": "Two men", "phrase_id": "10",
             "phrase_type": ["people", "other"]},
            {"first_word_index": 3, "last_word_index": 3, "phrase": "it", "phrase_id": "0",
             "phrase_type": ["notvisual"]}]},
        {"sentence": "A street", "phrases": [
            {"first_word_index": 0, "last_word_index": 1, "phrase": "A street", "phrase_id": "20",
             "phrase_type": ["scene"]}]}]
    assert out["annotations"]["boxes"]["21"] == [[4, 5, 6, 7]]
    assert out["annotations"]["width"] == 500


def test_inspect_cli_one_file_only(tmp_path):
    spath = write(tmp_path / "s.txt", "[/EN#1/people He]\n")
    apath = write(tmp_path / "a.xml", annotations_example())
    r = run("inspect", "--sentences", spath)
    assert r.returncode == 0 and list(json.loads(r.stdout)) == ["sentences"]
    r = run("inspect", "--annotations", apath)
    assert r.returncode == 0 and list(json.loads(r.stdout)) == ["annotations"]


@pytest.mark.parametrize("kind, text, where", [
    ("sentences", "fine .\n[/EN#1/people a man\n", ":2: error: unclosed bracket"),
    ("annotations", "<annotation>\n<size>\n</annotation>\n", ":3: error: malformed XML"),
    ("annotations", xml_file([xml_object(["1"], box=(1, 2, "x", 4))]), ":13: error: <xmax>"),
])
def test_inspect_cli_errors(tmp_path, kind, text, where):
    path = write(tmp_path / "f", text)
    r = run("inspect", "--" + kind, path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(path + where)


def test_inspect_cli_missing_file(tmp_path):
    path = str(tmp_path / "nope.txt")
    r = run("inspect", "--sentences", path)
    assert r.returncode == 2
    assert r.stderr.startswith(path + ": error: cannot read")
    assert r.stderr.count("\n") == 1


def test_help_on_every_subcommand():
    for args in (["--help"], ["inspect", "--help"], ["evaluate", "--help"]):
        r = run(*args)
        assert r.returncode == 0 and "usage:" in r.stdout
    assert "minus 1" in run("inspect", "--help").stdout


# ------------------------------------------------------------------- evaluate
#
# Image 100 (raw XML boxes):
#   chain 1 people:        [10, 10, 30, 30]                       (area 400)
#   chain 2 clothing:      [100, 100, 120, 120] and [200, 200, 220, 220]
#   chains 3 and 4 share:  [300, 300, 310, 310]                   (area 100)
#   chain 5 people/other:  [50, 50, 70, 70]
#   chain 6: nobndbox only; chain 0: notvisual
# Sentences (non-empty line index):
#   0: [/EN#1/people A man] in [/EN#2/clothing a hat] near [/EN#0/notvisual something]
#   1: [/EN#3/animals A dog] and [/EN#4/animals/other a pup] by [/EN#6/scene water]
#   2: [/EN#5/people/other A clown]
# Image 200: chain 9 vehicles [0, 0, 100, 100], one sentence "[/EN#9/vehicles A car]".
#
# Proposals of image 100 (IoU with the relevant chain box):
#   p0 [10, 10, 30, 20]: IoU 200/400 = 0.5 exactly with chain 1   -> positive for chain 1
#   p1 [0, 0, 5, 5]: nothing
#   p2 [200, 200, 220, 220]: second box of chain 2 (IoU 1)
#   p3 [300, 300, 310, 305]: IoU 50/100 = 0.5 with the shared box -> chains 3 and 4
#   p4 [10, 10, 30, 19.9]: IoU 198/400 < 0.5                      -> not positive
#   p5 .. p9: [400+i, 0, 401+i, 1] nothing
#   p10 [50, 50, 70, 70]: chain 5 (IoU 1)
#
# Predictions (rankings):
#   chain 1 : [0, ...]                       -> hit at rank 1
#   chain 2 : 1,4,5,6,7,8,2,...              -> positive p2 at rank 7: R@10 only
#   chain 3 : 1,4,5,6,7,3,...                -> positive p3 at rank 6: R@10, not R@5
#   chain 4 : 3,...                          -> hit at rank 1 (shared box)
#   chain 5 : none given                     -> missing, a miss (upper bound: p10 exists)
#   chain 6 : given but not evaluated        -> ignored
#   image 200: car with proposals [[0, 0, 50, 100]] IoU 0.5 -> hit at 1
# Entities: 1, 2, 3, 4, 5 (image 100) + 9 (image 200) = 6; hits@1 = {1, 4, 9} = 3;
# hits@5 = 3; hits@10 = {1, 2, 3, 4, 9} = 5; upper bound = 6 (every entity has a positive).

SENTENCES_100 = ("[/EN#1/people A man] in [/EN#2/clothing a hat] near "
                 "[/EN#0/notvisual something] .\n"
                 "\n"
                 "[/EN#3/animals A dog] and [/EN#4/animals/other a pup] by [/EN#6/scene water]\n"
                 "[/EN#5/people/other A clown]\n")
PROPOSALS_100 = ([[10, 10, 30, 20], [0, 0, 5, 5], [200, 200, 220, 220], [300, 300, 310, 305],
                  [10, 10, 30, 19.9]] + [[400 + i, 0, 401 + i, 1] for i in range(5)]
                 + [[50, 50, 70, 70]])


def make_dataset(tmp_path):
    root = tmp_path / "f30k"
    write(root / "Sentences" / "100.txt", SENTENCES_100)
    write(root / "Annotations" / "100.xml", xml_file([
        xml_object(["1"], box=(10, 10, 30, 30)),
        xml_object(["2"], box=(100, 100, 120, 120)),
        xml_object(["2"], box=(200, 200, 220, 220)),
        xml_object(["3", "4"], box=(300, 300, 310, 310)),
        xml_object(["5"], box=(50, 50, 70, 70)),
        xml_object(["6"], nobndbox=1, scene=0),
    ], filename="100.jpg"))
    write(root / "Sentences" / "200.txt", "[/EN#9/vehicles A car] .\n")
    write(root / "Annotations" / "200.xml", xml_file([xml_object(["9"], box=(0, 0, 100, 100))]))
    split = write(tmp_path / "test.txt", "100\n200\n")
    return str(root), split


def ranking_with_front(front, count):
    return front + [i for i in range(count) if i not in front]


def phrase(image_id, sentence_index, chain, word, ranking):
    return {"image_id": image_id, "sentence_index": sentence_index, "phrase_id": chain,
            "first_word_index": word, "ranking": ranking,
            "scores": [float(len(ranking) - i) for i in range(len(ranking))]}


def make_predictions(tmp_path, mutate=None):
    n = len(PROPOSALS_100)
    doc = {"version": 1,
           "images": {"100": {"proposals": [list(b) for b in PROPOSALS_100]},
                      "200": {"proposals": [[0, 0, 50, 100]]}},
           "phrases": [
               phrase("100", 0, "1", 0, ranking_with_front([0], n)),
               phrase("100", 0, "2", 3, ranking_with_front([1, 4, 5, 6, 7, 8, 2], n)),
               phrase("100", 1, "3", 0, ranking_with_front([1, 4, 5, 6, 7, 3], n)),
               phrase("100", 1, "4", 3, ranking_with_front([3], n)),
               phrase("100", 1, "6", 6, ranking_with_front([], n)),
               phrase("200", 0, "9", 0, [0]),
           ]}
    if mutate:
        mutate(doc)
    return write(tmp_path / "P.json", json.dumps(doc))


def test_box_iou():
    assert fk.box_iou([10, 10, 30, 30], [10, 10, 30, 20]) == 0.5
    assert fk.box_iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0          # touching edges
    assert fk.box_iou([0, 0, 10, 10], [5, 5, 15, 15]) == 25 / 175
    assert fk.box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0                # empty union


def test_evaluate_hand_checked(tmp_path):
    root, split = make_dataset(tmp_path)
    res = fk.evaluate(make_predictions(tmp_path), root, split)
    assert res["entities"] == 6
    assert res["images"] == 2
    assert res["missing_predictions"] == 1
    assert res["missing"] == [{"image_id": "100", "sentence_index": 2, "phrase_id": "5",
                               "first_word_index": 0}]
    assert res["ignored_predictions"] == 1          # chain 6 has no box
    o = res["overall"]
    assert (o["hits@1"], o["hits@5"], o["hits@10"], o["upper_bound_hits"]) == (3, 3, 5, 6)
    assert o["recall@1"] == 0.5 and o["recall@5"] == 0.5
    assert o["recall@10"] == 5 / 6 and o["upper_bound"] == 1.0


def test_evaluate_per_type(tmp_path):
    root, split = make_dataset(tmp_path)
    t = fk.evaluate(make_predictions(tmp_path), root, split)["per_type"]
    assert list(t)[:8] == ["people", "clothing", "bodyparts", "animals", "vehicles",
                           "instruments", "scene", "other"]
    # people: chain 1 (hit@1) and chain 5 (missing, people/other)
    assert (t["people"]["entities"], t["people"]["hits@1"], t["people"]["hits@10"]) == (2, 1, 1)
    # other: chain 4 (animals/other, hit@1) and chain 5 (people/other, missing)
    assert (t["other"]["entities"], t["other"]["hits@1"], t["other"]["upper_bound_hits"]) == (2, 1, 2)
    # animals: chain 3 (rank 6) and chain 4 (rank 1)
    assert (t["animals"]["entities"], t["animals"]["hits@1"], t["animals"]["hits@5"],
            t["animals"]["hits@10"]) == (2, 1, 1, 2)
    # clothing: chain 2, positive at rank 7
    assert (t["clothing"]["hits@5"], t["clothing"]["hits@10"]) == (0, 1)
    assert t["vehicles"]["recall@1"] == 1.0
    # chain 6 (scene) has no box: not evaluated
    assert t["scene"]["entities"] == 0 and t["scene"]["recall@1"] is None
    assert sum(v["entities"] for v in t.values()) == 8     # 6 entities, 2 of them two-typed


def test_evaluate_below_threshold_is_a_miss(tmp_path):
    root, split = make_dataset(tmp_path)
    n = len(PROPOSALS_100)

    def chain1_ranks_p4_first(doc):
        doc["phrases"][0]["ranking"] = ranking_with_front([4, 1, 2, 3, 5, 6, 7, 8, 9, 10], n)
    res = fk.evaluate(make_predictions(tmp_path, chain1_ranks_p4_first), root, split)
    # p4 has IoU 0.495 and p0 (IoU 0.5) is ranked 11th: chain 1 is a miss at 1, 5 and 10
    assert (res["overall"]["hits@1"], res["overall"]["hits@10"]) == (2, 4)
    assert res["overall"]["upper_bound_hits"] == 6


def test_evaluate_upper_bound_counts_entities_without_positive(tmp_path):
    root, split = make_dataset(tmp_path)

    def car_proposal_too_small(doc):
        doc["images"]["200"]["proposals"] = [[0, 0, 49, 100]]      # IoU 0.49
    res = fk.evaluate(make_predictions(tmp_path, car_proposal_too_small), root, split)
    assert res["overall"]["upper_bound_hits"] == 5
    assert res["overall"]["hits@1"] == 2


def test_evaluate_strict(tmp_path):
    root, split = make_dataset(tmp_path)
    with pytest.raises(fk.Flickr30kError) as e:
        fk.evaluate(make_predictions(tmp_path), root, split, strict=True)
    assert "1 of 6 entities have no prediction" in e.value.message
    assert "image 100, sentence 2, chain 5" in e.value.message


def test_evaluate_cli_json_and_markdown(tmp_path):
    root, split = make_dataset(tmp_path)
    pred = make_predictions(tmp_path)
    args = ("evaluate", "--predictions", pred, "--annotations-dir", root, "--split", split)
    r = run(*args, "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["overall"]["hits@10"] == 5 and res["missing_predictions"] == 1
    r = run(*args, "--markdown")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "| type | entities | R@1 | R@5 | R@10 | upper bound |"
    assert "| people | 2 | 50.00 | 50.00 | 50.00 | 100.00 |" in lines
    assert "| clothing | 1 | 0.00 | 0.00 | 100.00 | 100.00 |" in lines
    assert "| scene | 0 | - | - | - | - |" in lines
    assert "| **overall** | 6 | 50.00 | 50.00 | 83.33 | 100.00 |" in lines
    assert any("1 without a prediction" in line for line in lines)
    r = run(*args, "--json", "--markdown")
    head, _, tail = r.stdout.partition("\n\n| type")
    assert json.loads(head)["entities"] == 6 and "**overall**" in tail
    r = run(*args, "--strict")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def _drop(key):
    def mutate(doc):
        del doc["phrases"][0][key]
    return mutate


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["phrases"][0].update(image_id="999"), "phrases[0] (image 999, sentence 0, "
                                                       "chain 1, word 0): unknown image 999"),
    (lambda d: d["phrases"][1]["ranking"].__setitem__(0, 11), "phrases[1] (image 100, "
                                                              "sentence 0, chain 2, word 3): "
                                                              "ranking index 11 out of range"),
    (lambda d: d["phrases"][1]["ranking"].__setitem__(0, -1), "ranking index -1 out of range"),
    (lambda d: d["phrases"].append(dict(d["phrases"][3])), "phrases[6] (image 100, sentence 1, "
                                                           "chain 4, word 3): duplicated phrase "
                                                           "(same as phrases[3])"),
    (lambda d: d["phrases"][0]["ranking"].pop(), "ranking must list each"),
    (lambda d: d["phrases"][0]["ranking"].__setitem__(1, 0), "ranking must list each"),
    (lambda d: d["phrases"][0]["scores"].pop(), "scores must hold"),
    (lambda d: d["phrases"][0]["scores"].reverse(), "scores must not increase"),
    (lambda d: d.update(version=2), "version: expected 1"),
    (lambda d: d["images"]["100"]["proposals"].append([1, 2, 3]), "images[\"100\"]: proposal 11"),
    (lambda d: d["images"]["100"]["proposals"].append([5, 5, 4, 6]), "x2 < x1"),
    (_drop("first_word_index"), "missing field 'first_word_index'"),
    (lambda d: d["phrases"][0].update(sentence_index="0"), "'sentence_index' must be"),
    (lambda d: d["phrases"][0].update(first_word_index=1), "no such phrase"),
    (lambda d: d["phrases"][0].update(sentence_index=1), "no such phrase"),
])
def test_prediction_errors(tmp_path, mutate, message):
    root, split = make_dataset(tmp_path)
    pred = make_predictions(tmp_path, mutate)
    with pytest.raises(fk.Flickr30kError) as e:
        fk.evaluate(pred, root, split)
    assert message in str(e.value)
    r = run("evaluate", "--predictions", pred, "--annotations-dir", root, "--split", split)
    assert r.returncode == 2
    assert r.stderr.startswith(pred + ": error: ")
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_prediction_malformed_json(tmp_path):
    root, split = make_dataset(tmp_path)
    pred = write(tmp_path / "P.json", '{"version": 1,\n "images": {,\n}')
    r = run("evaluate", "--predictions", pred, "--annotations-dir", root, "--split", split)
    assert r.returncode == 2
    assert r.stderr.startswith(pred + ":2: error: malformed JSON")
    assert r.stderr.count("\n") == 1


def test_evaluate_missing_annotation_file(tmp_path):
    root, split = make_dataset(tmp_path)
    os.remove(os.path.join(root, "Annotations", "200.xml"))
    r = run("evaluate", "--predictions", make_predictions(tmp_path), "--annotations-dir", root,
            "--split", split)
    assert r.returncode == 2
    assert r.stderr.startswith(os.path.join(root, "Annotations", "200.xml") + ": error: cannot read")


def test_evaluate_split_errors(tmp_path):
    root, split = make_dataset(tmp_path)
    write(split, "100\n\n100\n")
    with pytest.raises(fk.Flickr30kError) as e:
        fk.evaluate(make_predictions(tmp_path), root, split)
    assert e.value.line == 3 and "listed twice" in e.value.message


def test_evaluate_image_outside_split_is_ignored(tmp_path):
    root, split = make_dataset(tmp_path)
    write(split, "100\n")
    res = fk.evaluate(make_predictions(tmp_path), root, split)
    assert res["entities"] == 5 and res["images"] == 1
    assert res["ignored_predictions"] == 2      # chain 6 and the car of image 200
    assert (res["overall"]["hits@1"], res["overall"]["hits@10"]) == (2, 4)
