#!/usr/bin/python3
"""Flickr30k Entities: read the annotation files and score phrase grounding.

    flickr30k.py inspect  [--sentences Sentences/ID.txt] [--annotations Annotations/ID.xml]
    flickr30k.py evaluate --predictions P.json --annotations-dir DIR --split test.txt
                          [--json] [--markdown] [--strict]

`inspect` prints what the official utilities of the dataset
(BryanPlummer/flickr30k_entities, flickr30k_entities_utils.py: get_sentence_data,
get_annotations) return for one image, plus `last_word_index` for each phrase.
Box coordinates are printed as the official get_annotations returns them: the
XML value MINUS 1 for xmin, ymin, xmax and ymax (the XML holds 1-based pixels).

`evaluate` scores grounding predictions (Recall@1/5/10 and the proposals' upper
bound, overall and per phrase type) the way the reference BAN code does
(jnhwkim/ban-vqa, dataset.py _load_flickr30k, utils.py get_match_index,
train_flickr.py evaluate): ground-truth boxes use the RAW XML coordinates (no -1),
IoU uses the area (x2 - x1) * (y2 - y1) (no +1), a proposal is positive at IoU >= 0.5.

Standard library only. Errors print one line "FILE[:LINE]: error: MESSAGE" on
stderr and exit with status 2. The parsers are importable:
parse_sentence_line, parse_sentences_file, parse_annotations_file.
"""
import argparse
import json
import math
import os
import sys
from xml.parsers import expat

# The coarse phrase types of the dataset, in the order of the paper's Table 6.
PHRASE_TYPES = ("people", "clothing", "bodyparts", "animals", "vehicles",
                "instruments", "scene", "other")
RECALL_AT = (1, 5, 10)
IOU_THRESHOLD = 0.5
PREDICTIONS_VERSION = 1


class Flickr30kError(Exception):
    """A bad input file: `path` and `line` (or None) locate it."""

    def __init__(self, path, line, message):
        super().__init__(message)
        self.path = path
        self.line = line
        self.message = message

    def __str__(self):
        where = str(self.path) if self.path is not None else "<input>"
        if self.line is not None:
            where += ":%d" % self.line
        return "%s: error: %s" % (where, self.message)


# ---------------------------------------------------------------- sentences

def parse_sentence_line(line, path=None, lineno=None):
    """Parse one caption line as the official get_sentence_data does.

    Returns {"sentence", "phrases": [{"first_word_index", "last_word_index",
    "phrase", "phrase_id", "phrase_type"}]}. Tokens are split on any whitespace
    (str.split()), so runs of spaces and tabs collapse and leading or trailing
    whitespace disappears; a whitespace-only line gives an empty sentence.
    A token starting with '[' opens a phrase ("[/EN#<chain>/<type>/<type>..."),
    and the first following token ending with ']' closes it (one ']' removed).
    Raises Flickr30kError on markup the official code would crash on or
    silently drop: an opening token that is not "[/EN#<chain>...", an opening
    token that also closes, a phrase opened inside a phrase, an unclosed phrase.
    """
    words = []
    phrases = []
    current = None  # the phrase being read: dict plus its list of words
    for token in line.split():
        if current is not None:
            if token.startswith("[/EN#"):
                raise Flickr30kError(path, lineno, "phrase %r opened inside phrase of chain %s "
                                     "(nested markup)" % (token, current["phrase_id"]))
            closes = token.endswith("]")
            if closes:
                token = token[:-1]
            current["words"].append(token)
            words.append(token)
            if closes:
                phrases.append(current)
                current = None
            continue
        if not token.startswith("["):
            words.append(token)
            continue
        parts = token.split("/")
        if not token.startswith("[/EN#") or len(parts[1]) <= 3:
            raise Flickr30kError(path, lineno, "malformed phrase markup %r (expected "
                                 "'[/EN#<chain>/<type>...')" % token)
        if token.endswith("]"):
            raise Flickr30kError(path, lineno, "phrase markup %r closes before any word" % token)
        current = {"first_word_index": len(words),
                   "phrase_id": parts[1][3:],   # drop "EN#"
                   "phrase_type": parts[2:],
                   "words": []}
    if current is not None:
        raise Flickr30kError(path, lineno, "unclosed bracket: phrase of chain %s starting at "
                             "word %d has no closing ']'" % (current["phrase_id"],
                                                             current["first_word_index"]))
    out = []
    for p in phrases:
        first = p["first_word_index"]
        out.append({"first_word_index": first,
                    # the reference represents an entity by its last word
                    "last_word_index": first + len(p["words"]) - 1,
                    "phrase": " ".join(p["words"]),
                    "phrase_id": p["phrase_id"],
                    "phrase_type": p["phrase_type"]})
    return {"sentence": " ".join(words), "phrases": out}


def _read_text(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Flickr30kError(path, None, "cannot read: %s" % (e.strerror or e))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise Flickr30kError(path, line, "not valid UTF-8 (byte offset %d)" % e.start)
    # The official code opens the file in text mode: universal newlines.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_sentences_file(path):
    """Parse Sentences/<id>.txt as the official get_sentence_data does.

    Only exactly empty lines are skipped; a line holding only whitespace is kept
    as a sentence with no words. The position of a sentence in the returned list
    is the `sentence_index` of the predictions file.
    """
    sentences = []
    for lineno, line in enumerate(_read_text(path).split("\n"), 1):
        if not line:
            continue
        sentences.append(parse_sentence_line(line, path, lineno))
    return sentences


# -------------------------------------------------------------- annotations

class _Element:
    """An XML element with the line it starts on; `text` as ElementTree sets it
    (the character data before the first child, None when there is none)."""
    __slots__ = ("tag", "text", "children", "line")

    def __init__(self, tag, line):
        self.tag = tag
        self.text = None
        self.children = []
        self.line = line

    def findall(self, tag):
        return [c for c in self.children if c.tag == tag]


def _parse_xml(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Flickr30kError(path, None, "cannot read: %s" % (e.strerror or e))
    # Same expat set-up as xml.etree.ElementTree (namespace separator "}").
    parser = expat.ParserCreate(None, "}")
    parser.buffer_text = True
    stack = []
    pending = []
    root = []

    def flush():
        if pending:
            node = stack[-1] if stack else None
            if node is not None and not node.children and node.text is None:
                node.text = "".join(pending)
            del pending[:]  # text after a child (the "tail") is not used

    def start(name, attrs):
        flush()
        if "}" in name:
            name = "{" + name
        node = _Element(name, parser.CurrentLineNumber)
        if stack:
            stack[-1].children.append(node)
        else:
            root.append(node)
        stack.append(node)

    def end(name):
        flush()
        stack.pop()

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = pending.append
    try:
        parser.Parse(data, True)
    except expat.ExpatError as e:
        raise Flickr30kError(path, e.lineno, "malformed XML: %s (column %d)"
                             % (expat.ErrorString(e.code), e.offset + 1))
    return root[0]


def _xml_int(path, element, what):
    # int() as the official code applies it: surrounding whitespace is allowed.
    try:
        return int(element.text)
    except (TypeError, ValueError):
        raise Flickr30kError(path, element.line, "<%s> of %s is not an integer: %r"
                             % (element.tag, what, element.text))


def _first(path, parent, tag, what):
    found = parent.findall(tag)
    if not found:
        raise Flickr30kError(path, parent.line, "<%s> %shas no <%s>" % (parent.tag, what, tag))
    return found[0]


def parse_annotations_file(path, raw=False):
    """Parse Annotations/<id>.xml as the official get_annotations does.

    Returns {"boxes": {chain: [[xmin, ymin, xmax, ymax], ...]}, "scene": [chain],
    "nobox": [chain], then one integer per child of <size> (width, height, depth)}.
    Every <name> of an <object> gets that object's box (or scene/nobox flag), so a
    box shared by several chains is listed under each; a chain with several
    objects has several boxes, in file order. Chain ids are the <name> text as
    written. Boxes are the XML values minus 1 (as the official code returns
    them) unless raw=True, which keeps the XML values (as the reference BAN
    code uses them).
    """
    offset = 0 if raw else 1
    root = _parse_xml(path)
    size = _first(path, root, "size", "")
    info = {"boxes": {}, "scene": [], "nobox": []}
    for element in size.children:
        info[element.tag] = _xml_int(path, element, "<size>")
    for obj in root.findall("object"):
        for name in obj.findall("name"):
            chain = name.text
            if chain is None or not chain.strip():
                raise Flickr30kError(path, name.line, "empty <name> (chain id)")
            what = "chain %s" % chain.strip()
            bndbox = obj.findall("bndbox")
            if bndbox:
                box = [_xml_int(path, _first(path, bndbox[0], tag, ""), what) - offset
                       for tag in ("xmin", "ymin", "xmax", "ymax")]
                info["boxes"].setdefault(chain, []).append(box)
            else:
                what_obj = "(chain %s, no <bndbox>) " % chain.strip()
                if _xml_int(path, _first(path, obj, "nobndbox", what_obj), what) > 0:
                    info["nobox"].append(chain)
                if _xml_int(path, _first(path, obj, "scene", what_obj), what) > 0:
                    info["scene"].append(chain)
    return info


# --------------------------------------------------------------- evaluation

def box_iou(a, b):
    """IoU of two [x1, y1, x2, y2] boxes, areas (x2 - x1) * (y2 - y1) as in the
    reference (utils.py calculate_iou); 0 when the union is empty."""
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[2], b[2]), min(a[3], b[3])
    inter = (right - left) * (bottom - top) if right > left and bottom > top else 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def read_split(path):
    """Image ids of a split file, one per line (blank lines ignored)."""
    ids = []
    seen = set()
    for lineno, line in enumerate(_read_text(path).split("\n"), 1):
        image_id = line.strip()
        if not image_id:
            continue
        if image_id in seen:
            raise Flickr30kError(path, lineno, "image id %s listed twice" % image_id)
        seen.add(image_id)
        ids.append(image_id)
    return ids


def load_entities(annotations_dir, image_ids):
    """The entities the reference evaluates, and every phrase of the split.

    Returns (entities, phrases): entities is a list of dicts (image_id,
    sentence_index, phrase_id, first_word_index, phrase_type, gt_boxes) for each
    phrase whose chain has at least one <bndbox> (raw XML coordinates);
    phrases maps the key (image_id, sentence_index, phrase_id, first_word_index)
    of every phrase, evaluated or not, to its entity or None.
    """
    entities = []
    phrases = {}
    for image_id in image_ids:
        sentences = parse_sentences_file(os.path.join(annotations_dir, "Sentences", image_id + ".txt"))
        boxes = parse_annotations_file(os.path.join(annotations_dir, "Annotations", image_id + ".xml"),
                                       raw=True)["boxes"]
        # the reference matches chains as integers: surrounding whitespace does not count
        gt = {}
        for chain, chain_boxes in boxes.items():
            gt.setdefault(chain.strip(), []).extend(chain_boxes)
        for sentence_index, sentence in enumerate(sentences):
            for phrase in sentence["phrases"]:
                key = (image_id, sentence_index, phrase["phrase_id"], phrase["first_word_index"])
                entity = None
                if gt.get(phrase["phrase_id"]):
                    entity = {"image_id": image_id, "sentence_index": sentence_index,
                              "phrase_id": phrase["phrase_id"],
                              "first_word_index": phrase["first_word_index"],
                              "phrase_type": phrase["phrase_type"],
                              "gt_boxes": gt[phrase["phrase_id"]]}
                    entities.append(entity)
                phrases[key] = entity
    return entities, phrases


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def load_predictions(path):
    """Read and validate a predictions file (format version 1).

    Returns (images, phrases): images maps image_id to its list of proposals,
    phrases maps (image_id, sentence_index, phrase_id, first_word_index) to
    (record index, ranking).
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Flickr30kError(path, None, "cannot read: %s" % (e.strerror or e))
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise Flickr30kError(path, data[:e.start].count(b"\n") + 1, "not valid UTF-8")
    except json.JSONDecodeError as e:
        raise Flickr30kError(path, e.lineno, "malformed JSON: %s (column %d)" % (e.msg, e.colno))

    def fail(record, message):
        raise Flickr30kError(path, None, "%s: %s" % (record, message))

    if not isinstance(doc, dict):
        fail("top level", "expected an object with version, images, phrases")
    if doc.get("version") != PREDICTIONS_VERSION:
        fail("version", "expected %d, found %r" % (PREDICTIONS_VERSION, doc.get("version")))
    if not isinstance(doc.get("images"), dict):
        fail("images", "expected an object mapping image ids to {\"proposals\": [...]}")
    if not isinstance(doc.get("phrases"), list):
        fail("phrases", "expected a list of phrase records")

    images = {}
    for image_id, record in doc["images"].items():
        where = "images[%s]" % json.dumps(image_id)
        if not isinstance(record, dict) or not isinstance(record.get("proposals"), list):
            fail(where, "expected {\"proposals\": [[x1, y1, x2, y2], ...]}")
        proposals = []
        for i, box in enumerate(record["proposals"]):
            if (not isinstance(box, list) or len(box) != 4
                    or not all(_is_number(v) and math.isfinite(v) for v in box)):
                fail(where, "proposal %d is not [x1, y1, x2, y2] of finite numbers: %s"
                     % (i, json.dumps(box)))
            if box[2] < box[0] or box[3] < box[1]:
                fail(where, "proposal %d has x2 < x1 or y2 < y1: %s" % (i, json.dumps(box)))
            proposals.append([float(v) for v in box])
        images[image_id] = proposals

    phrases = {}
    for n, record in enumerate(doc["phrases"]):
        where = "phrases[%d]" % n
        if not isinstance(record, dict):
            fail(where, "expected an object")
        for field, check, kind in (("image_id", lambda v: isinstance(v, str), "a string"),
                                   ("sentence_index", lambda v: _is_int(v) and v >= 0,
                                    "an integer >= 0"),
                                   ("phrase_id", lambda v: isinstance(v, str), "a string"),
                                   ("first_word_index", lambda v: _is_int(v) and v >= 0,
                                    "an integer >= 0"),
                                   ("ranking", lambda v: isinstance(v, list), "a list"),
                                   ("scores", lambda v: isinstance(v, list), "a list")):
            if field not in record:
                fail(where, "missing field %r" % field)
            if not check(record[field]):
                fail(where, "%r must be %s, found %s" % (field, kind, json.dumps(record[field])))
        key = (record["image_id"], record["sentence_index"], record["phrase_id"],
               record["first_word_index"])
        where += " (image %s, sentence %d, chain %s, word %d)" % key
        if key[0] not in images:
            fail(where, "unknown image %s (not in \"images\")" % key[0])
        if key in phrases:
            fail(where, "duplicated phrase (same as phrases[%d])" % phrases[key][0])
        count = len(images[key[0]])
        ranking = record["ranking"]
        for r in ranking:
            if not _is_int(r) or not 0 <= r < count:
                fail(where, "ranking index %s out of range (image has %d proposals)"
                     % (json.dumps(r), count))
        if len(set(ranking)) != len(ranking) or len(ranking) != count:
            fail(where, "ranking must list each of the image's %d proposals once, found %d "
                 "indices (%d distinct)" % (count, len(ranking), len(set(ranking))))
        scores = record["scores"]
        if len(scores) != len(ranking) or not all(_is_number(s) and not math.isnan(s)
                                                  for s in scores):
            fail(where, "scores must hold one number per ranked proposal")
        if any(scores[i] < scores[i + 1] for i in range(len(scores) - 1)):
            fail(where, "scores must not increase along the ranking (best first)")
        phrases[key] = (n, ranking)
    return images, phrases


def _new_tally():
    return {"entities": 0, "hits": {k: 0 for k in RECALL_AT}, "upper_bound_hits": 0}


def _summary(tally):
    n = tally["entities"]
    out = {"entities": n}
    for k in RECALL_AT:
        out["hits@%d" % k] = tally["hits"][k]
    out["upper_bound_hits"] = tally["upper_bound_hits"]
    for k in RECALL_AT:
        out["recall@%d" % k] = tally["hits"][k] / n if n else None
    out["upper_bound"] = tally["upper_bound_hits"] / n if n else None
    return out


def evaluate(predictions_path, annotations_dir, split_path, strict=False):
    """Recall@1/5/10 and upper bound, overall and per phrase type.

    An entity with several types (/EN#1/people/other) counts once under each of
    its distinct types. An entity without a prediction is a miss at every K
    (its upper bound still comes from its image's proposals, if any); with
    strict=True it is an error instead.
    """
    images, predictions = load_predictions(predictions_path)
    image_ids = read_split(split_path)
    entities, phrases = load_entities(annotations_dir, image_ids)
    in_split = set(image_ids)

    ignored = 0
    for key, (n, _) in predictions.items():
        if key[0] not in in_split:
            ignored += 1          # an image outside the split
        elif key not in phrases:
            raise Flickr30kError(predictions_path, None,
                                 "phrases[%d] (image %s, sentence %d, chain %s, word %d): no such "
                                 "phrase in %s" % ((n,) + key + (os.path.join(
                                     annotations_dir, "Sentences", key[0] + ".txt"),)))
        elif phrases[key] is None:
            ignored += 1          # a chain without any box: not evaluated

    overall = _new_tally()
    per_type = {t: _new_tally() for t in PHRASE_TYPES}
    missing = []
    for entity in entities:
        key = (entity["image_id"], entity["sentence_index"], entity["phrase_id"],
               entity["first_word_index"])
        proposals = images.get(entity["image_id"], [])
        positive = {i for i, box in enumerate(proposals)
                    if any(box_iou(gt, box) >= IOU_THRESHOLD for gt in entity["gt_boxes"])}
        prediction = predictions.get(key)
        if prediction is None:
            missing.append(key)
            ranking = []
        else:
            ranking = prediction[1]
        tallies = [overall] + [per_type.setdefault(t, _new_tally())
                               for t in sorted(set(entity["phrase_type"]))]
        for tally in tallies:
            tally["entities"] += 1
            tally["upper_bound_hits"] += bool(positive)
            for k in RECALL_AT:
                tally["hits"][k] += any(r in positive for r in ranking[:k])
    if strict and missing:
        raise Flickr30kError(predictions_path, None,
                             "%d of %d entities have no prediction, first: image %s, sentence %d, "
                             "chain %s, word %d" % ((len(missing), len(entities)) + missing[0]))
    return {"images": len(image_ids),
            "entities": len(entities),
            "missing_predictions": len(missing),
            "missing": [{"image_id": k[0], "sentence_index": k[1], "phrase_id": k[2],
                         "first_word_index": k[3]} for k in missing],
            "ignored_predictions": ignored,
            "multi_type": "an entity with several types counts under each of them",
            "overall": _summary(overall),
            # the paper's eight types first, then any other type met, alphabetically
            "per_type": {t: _summary(per_type[t]) for t in
                         list(PHRASE_TYPES) + sorted(set(per_type) - set(PHRASE_TYPES))}}


def markdown_table(results):
    def pct(v):
        return "-" if v is None else "%.2f" % (100.0 * v)

    lines = ["| type | entities | R@1 | R@5 | R@10 | upper bound |",
             "|---|---:|---:|---:|---:|---:|"]
    rows = list(results["per_type"].items()) + [("**overall**", results["overall"])]
    for name, s in rows:
        lines.append("| %s | %d | %s | %s | %s | %s |" % (
            name, s["entities"], pct(s["recall@1"]), pct(s["recall@5"]),
            pct(s["recall@10"]), pct(s["upper_bound"])))
    lines.append("")
    lines.append("%d entities in %d images, %d without a prediction (counted as misses), "
                 "%d predictions ignored; recall in %%; an entity with several types counts "
                 "under each." % (results["entities"], results["images"],
                                  results["missing_predictions"], results["ignored_predictions"]))
    return "\n".join(lines)


# ---------------------------------------------------------------------- CLI

INSPECT_HELP = """\
Print, as JSON, what the official Flickr30k Entities utilities return for one
image (flickr30k_entities_utils.py get_sentence_data / get_annotations), with
"last_word_index" added to each phrase (first_word_index + words - 1; the
reference BAN code represents an entity by its last word).

Box coordinates: the official get_annotations subtracts 1 from xmin, ymin,
xmax and ymax, so the boxes printed here are the XML values minus 1 (they are
NOT exactly as written in the XML; `evaluate` uses the raw XML values, as the
reference BAN code does).

Sentences: exactly empty lines are skipped; a whitespace-only line is a
sentence with no words; words are split on any whitespace and joined with one
space; "phrase_type" lists every type ("/EN#1/people/other" -> ["people",
"other"]); chain 0 (notvisual) is kept like any other phrase.
Annotations: an object with several <name> gives its box (or scene / nobox
flag) to each chain; boxes of a chain are in file order.
"""

EVALUATE_HELP = """\
Score phrase grounding on a split, as the reference BAN code does.

Evaluated entities: for each image of the split and each sentence, every phrase
whose chain has at least one <bndbox> (chain 0 and box-less chains are
skipped). Ground truth: the raw XML coordinates. A proposal is positive when its
IoU (areas (x2-x1)*(y2-y1)) with any box of the chain is >= 0.5. R@K: share of
entities with a positive proposal among the top K of their ranking; upper bound:
share of entities whose image has a positive proposal. An entity without a
prediction is a miss (reported; --strict makes it an error). Per type: an entity
with several types counts under each of them (the reference keeps every type of
an entity, up to 3, in `entity_types` but its evaluate() only scores overall).

Predictions file:
  {"version": 1,
   "images": {"<image_id>": {"proposals": [[x1, y1, x2, y2], ...]}},
   "phrases": [{"image_id": "<image_id>", "sentence_index": <0-based among the
                non-empty lines>, "phrase_id": "<chain>", "first_word_index": <int>,
                "ranking": [every proposal index, best first],
                "scores": [score of each ranked proposal]}]}
"""


def _cmd_inspect(args):
    if args.sentences is None and args.annotations is None:
        raise Flickr30kError(None, None, "give --sentences and/or --annotations")
    out = {}
    if args.sentences is not None:
        out["sentences"] = parse_sentences_file(args.sentences)
    if args.annotations is not None:
        out["annotations"] = parse_annotations_file(args.annotations)
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _cmd_evaluate(args):
    results = evaluate(args.predictions, args.annotations_dir, args.split, strict=args.strict)
    parts = []
    if args.json:
        parts.append(json.dumps(results, indent=2))
    if args.markdown or not args.json:
        parts.append(markdown_table(results))
    sys.stdout.write("\n\n".join(parts) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="flickr30k.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("inspect", help="print the parsed sentences / annotations of one image",
                       description=INSPECT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentences", metavar="Sentences/ID.txt", help="a sentence file")
    p.add_argument("--annotations", metavar="Annotations/ID.xml", help="an annotation file")
    p.set_defaults(run=_cmd_inspect)
    p = sub.add_parser("evaluate", help="Recall@1/5/10 and upper bound of grounding predictions",
                       description=EVALUATE_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--predictions", required=True, metavar="P.json", help="predictions file")
    p.add_argument("--annotations-dir", required=True, metavar="DIR",
                   help="Flickr30k Entities root holding Sentences/ and Annotations/")
    p.add_argument("--split", required=True, metavar="SPLIT.txt", help="image ids, one per line")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--markdown", action="store_true",
                   help="print a markdown table (the default without --json; "
                        "after the JSON with both)")
    p.add_argument("--strict", action="store_true",
                   help="an entity without a prediction is an error, not a miss")
    p.set_defaults(run=_cmd_evaluate)
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help(sys.stderr)
        return 2
    try:
        args.run(args)
    except Flickr30kError as e:
        sys.stderr.write("%s\n" % e)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
