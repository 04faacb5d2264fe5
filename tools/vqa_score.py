#!/usr/bin/python3
"""Score VQA results with the official VQA accuracy, quirks included.

Usage:
    /usr/bin/python3 tools/vqa_score.py --questions Q.json --annotations A.json \\
        --results R.json [--json]

The numbers are the ones the official evaluator (GT-Vision-Lab/VQA,
PythonEvaluationTools/vqaEvaluation/vqaEval.py with PythonHelperTools/vqaTools/vqa.py)
prints when run under Python 3: overall accuracy, accuracy per answer type and per
question type, in percent, rounded to 2 decimals. This is a re-implementation
written from a reading of that code, standard library only.

What is reproduced, in the order the official code does it, for each question
(questions are visited in the order of the annotations file):

1. Every ground-truth (GT) answer and the predicted answer get "\\n" and "\\t"
   replaced by a space, then ``str.strip()``.
2. Normalisation happens ONLY if the cleaned GT strings are not all identical
   (``len(set(gt)) > 1``). If all ten are identical nothing is normalised, neither
   the GT nor the prediction: matching is exact and case-sensitive (10 x "yes"
   against "Yes", "yes." or "YES" scores 0; 10 x "two" against "2" scores 0).
   GT answers that differ only by surrounding whitespace or a newline/tab count as
   identical, since step 1 runs first.
3. When normalising, each GT answer and the prediction go through
   process_punctuation then process_digit_article.
4. process_punctuation(s), for each of the 21 characters ; / [ ] " { } ( ) = + \\ _
   - > < @ ` , ? ! decided separately and always on the ORIGINAL string s: if s
   contains that character followed by a space, or a space followed by it, or if s
   contains a digit-comma-digit anywhere (``\\d,\\d``), every occurrence of the
   character is deleted; otherwise every occurrence is replaced by a space. So
   "1,000 dogs-cats" loses all its punctuation ("1000 dogscats") while "dogs-cats"
   becomes "dogs cats". Apostrophe, colon, period (handled next), # $ % & * ~ ^ |
   and every other character are left alone.
   Then periods are removed with the official regex ``(?!<=\\d)(\\.)(?!\\d)``: its
   "lookbehind" is really a negative LOOKAHEAD for the text "<=digit", which can
   never be where a "." is, so the rule is just "delete a period not followed by a
   digit": "3." -> "3", ".5" stays, "a.5" stays, "e.g." -> "eg". The official code
   passes ``re.UNICODE`` (= 32) positionally as the ``count`` argument of
   ``sub``, so at most the first 32 such periods are removed; later ones stay.
5. process_digit_article(s): lowercase, split on whitespace (``str.split()``),
   map whole tokens none/zero -> 0 and one..ten -> 1..10, drop the tokens a, an,
   the (after the number mapping), then replace whole tokens through the
   contraction table (one pass; the table is reproduced exactly, quirks
   included: its keys Id've, I'dve, Im, Ive contain capitals and can never match
   lowercased text, so "Im" stays "im"; "somebody'd" is mapped to "somebodyd",
   the wrong way round; there is no "ive", "im" or "wed" key), join with single
   spaces.
6. Leave one annotator out: for each GT answer dict g, the others are every dict
   ``item`` of the list with ``item != g`` (a dict comparison of the whole answer
   dict, answer_id and answer_confidence included, with the already normalised
   answer text), the accuracy is ``min(1, matches / 3)`` where matches counts the
   others whose answer equals the prediction; the question's score is the mean
   over all GT dicts. With distinct dicts (real data: answer_id 1..10) and k
   matching answers out of 10 this gives 0, 0.3, 0.6, 0.9, 1.0 for k = 0, 1, 2, 3,
   >= 4. Quirk: dicts that are equal to each other (same answer, confidence and
   answer_id) are all left out together, e.g. 10 identical {"answer": "yes", ...}
   dicts score 0 even for the prediction "yes". Any number of GT answers (not only
   ten) is accepted, as in the official code.
7. Breakdown: overall = mean of the question scores; perAnswerType keyed by
   ``answer_type`` and perQuestionType keyed by ``question_type`` (any string,
   keys in order of first appearance in the annotations). Each figure is
   ``round(100 * sum(scores) / len(scores), 2)`` with the sums taken in annotation
   order with the built-in ``sum`` (the exact same floating-point operations, so
   the same last bits), averaging before rounding.

Python 2 versus Python 3 (the official code was written for Python 2; this tool
matches it run under Python 3, which is how it is checked):
- ``round`` is Python 3's: correctly rounded, ties to even on the exact binary
  value, so 3.125 -> 3.12 (Python 2 rounded ties away from zero: 3.13).
- ``\\d`` in the period and comma regexes matches any Unicode decimal digit, as
  Python 3 does for str patterns (under Python 2 the UNICODE flag never reached
  the regex, it went into ``count``, so ``\\d`` was ASCII only).
- ``lower``, ``split`` and ``strip`` are Python 3's Unicode-aware str methods.
- Per-type figures are listed in first-appearance order (Python 3 dicts keep
  insertion order; Python 2 dicts had an arbitrary order).

Where this tool is stricter than the official one (each is an error, exit
status 2, message on stderr naming the file): malformed JSON or an unreadable
file; missing keys (questions file: info, task_type, data_type, data_subtype,
license, questions, and question_id/image_id/question per question, as the
official loadRes copies those top-level keys; annotations: question_id,
image_id, question_type, answer_type, answers with at least one {"answer": str}
dict; results: question_id and answer); wrong types (ids must be JSON integers,
not booleans, floats or strings; texts must be strings); results whose question
ids are not exactly the annotation ids (the official code asserts set equality
but silently keeps the LAST of duplicated result ids; here duplicates are an
error); annotations and questions files that disagree (different id sets,
duplicated ids, or a different image_id for the same question). For the
"Multiple Choice" task type the answer must be one of the question's
multiple_choices, as in the official loadRes. The input objects are never
modified (the official code overwrites the GT answers in place).
"""

import argparse
import json
import re
import sys

__all__ = [
    "VQAScoreError", "CONTRACTIONS", "MANUAL_MAP", "ARTICLES", "PUNCTUATION",
    "clean_whitespace", "process_punctuation", "process_digit_article",
    "normalize_answer", "score_question", "evaluate", "load_json", "main",
]

# ---------------------------------------------------------------------------
# Tables (data facts from the official vqaEval.py, reproduced exactly)
# ---------------------------------------------------------------------------

CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've",
    "hes": "he's", "howd": "how'd", "howll": "how'll", "hows": "how's",
    "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm", "Ive": "I've",
    "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at",
    "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's",
    "shouldve": "should've", "shouldnt": "shouldn't", "shouldnt've": "shouldn't've",
    "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've",
    "someonell": "someone'll", "someones": "someone's", "somethingd": "something'd",
    "somethingd've": "something'd've", "something'dve": "something'd've",
    "somethingll": "something'll", "thats": "that's", "thered": "there'd",
    "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're",
    "theyve": "they've", "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've",
    "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's",
    "whered": "where'd", "wheres": "where's", "whereve": "where've", "whod": "who'd",
    "whod've": "who'd've", "who'dve": "who'd've", "wholl": "who'll", "whos": "who's",
    "whove": "who've", "whyll": "why'll", "whyre": "why're", "whys": "why's",
    "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all",
    "yall'll": "y'all'll", "y'allll": "y'all'll", "yall'd've": "y'all'd've",
    "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", "youd": "you'd",
    "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}

MANUAL_MAP = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}

ARTICLES = ("a", "an", "the")

# The 21 characters, in the official order (the order does not change results:
# each character is decided on the original string).
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_",
               "-", ">", "<", "@", "`", ",", "?", "!")

# Equivalent to the official "(?!<=\d)(\.)(?!\d)": a "." never starts "<=digit".
_PERIOD_RE = re.compile(r"\.(?!\d)")
_DIGIT_COMMA_DIGIT_RE = re.compile(r"\d,\d")
# re.UNICODE (== 32) is what the official code passes as count.
_PERIOD_COUNT = int(re.UNICODE)

QUESTIONS_TOP_KEYS = ("info", "task_type", "data_type", "data_subtype", "license",
                      "questions")


class VQAScoreError(ValueError):
    """An input problem; the message says which file and what is wrong."""


# ---------------------------------------------------------------------------
# Answer processing
# ---------------------------------------------------------------------------

def clean_whitespace(text):
    """Replace newlines and tabs by spaces, then strip (done to every answer)."""
    return text.replace("\n", " ").replace("\t", " ").strip()


def process_punctuation(text):
    """The official processPunctuation, quirks included (see module docstring)."""
    delete_all = _DIGIT_COMMA_DIGIT_RE.search(text) is not None
    out = text
    for p in PUNCTUATION:
        if delete_all or (p + " ") in text or (" " + p) in text:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_RE.sub("", out, count=_PERIOD_COUNT)


def process_digit_article(text):
    """The official processDigitArticle: lowercase, numbers, articles, contractions."""
    words = []
    for word in text.lower().split():
        word = MANUAL_MAP.get(word, word)
        if word not in ARTICLES:
            words.append(word)
    return " ".join(CONTRACTIONS.get(word, word) for word in words)


def normalize_answer(text):
    """Whitespace cleanup, punctuation, then digits/articles/contractions.

    This is what an answer becomes when the question's GT answers differ; when
    they are all identical the official code only applies clean_whitespace.
    """
    return process_digit_article(process_punctuation(clean_whitespace(text)))


def score_question(gt_answers, prediction):
    """Official accuracy of one prediction (a float in [0, 1]).

    gt_answers: the annotation's "answers" list (dicts with at least "answer"),
    compared as whole dicts in the leave-one-out loop exactly like the official
    code; plain strings are also accepted and treated as distinct annotators.
    """
    if not gt_answers:
        raise VQAScoreError("a question needs at least one ground-truth answer")
    dicts = []
    for i, gt in enumerate(gt_answers):
        if isinstance(gt, str):
            gt = {"answer": gt, "answer_id": i + 1}
        dicts.append(dict(gt, answer=clean_whitespace(gt["answer"])))
    res = clean_whitespace(prediction)
    if len(set(d["answer"] for d in dicts)) > 1:
        for d in dicts:
            d["answer"] = process_digit_article(process_punctuation(d["answer"]))
        res = process_digit_article(process_punctuation(res))
    accs = []
    for held_out in dicts:
        matches = [d for d in dicts if d != held_out and d["answer"] == res]
        accs.append(min(1, float(len(matches)) / 3))
    return float(sum(accs)) / len(accs)


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

def _type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number (not an integer)"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _require(obj, key, where, label):
    if key not in obj:
        raise VQAScoreError("%s: %s has no key %r" % (label, where, key))
    return obj[key]


def _require_int(obj, key, where, label):
    value = _require(obj, key, where, label)
    if not _is_int(value):
        raise VQAScoreError("%s: %s.%s must be an integer, got %s %s"
                            % (label, where, key, _type_name(value), _short(value)))
    return value


def _require_str(obj, key, where, label):
    value = _require(obj, key, where, label)
    if not isinstance(value, str):
        raise VQAScoreError("%s: %s.%s must be a string, got %s %s"
                            % (label, where, key, _type_name(value), _short(value)))
    return value


def _short(value):
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(value):
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _require_list(value, where, label):
    if not isinstance(value, list):
        raise VQAScoreError("%s: %s must be an array, got %s" % (label, where, _type_name(value)))
    return value


def _require_object(value, where, label):
    if not isinstance(value, dict):
        raise VQAScoreError("%s: %s must be an object, got %s" % (label, where, _type_name(value)))
    return value


def _examples(ids, limit=5):
    ids = list(ids)
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (", ..." if len(ids) > limit else "")


def _duplicates(ids):
    seen, dups = set(), []
    for i in ids:
        if i in seen and i not in dups:
            dups.append(i)
        seen.add(i)
    return dups


def _check_questions(questions, label):
    _require_object(questions, "the top level", label)
    for key in QUESTIONS_TOP_KEYS:
        _require(questions, key, "the top level", label)
    qlist = _require_list(questions["questions"], '"questions"', label)
    by_id = {}
    for i, q in enumerate(qlist):
        where = "questions[%d]" % i
        _require_object(q, where, label)
        qid = _require_int(q, "question_id", where, label)
        _require_int(q, "image_id", where, label)
        _require_str(q, "question", where, label)
        if qid in by_id:
            raise VQAScoreError("%s: question_id %d appears more than once (%s and questions[%d])"
                                % (label, qid, where, by_id[qid][0]))
        by_id[qid] = (i, q)
    return {qid: q for qid, (_, q) in by_id.items()}


def _check_annotations(annotations, label):
    _require_object(annotations, "the top level", label)
    alist = _require_list(_require(annotations, "annotations", "the top level", label),
                          '"annotations"', label)
    if not alist:
        raise VQAScoreError("%s: \"annotations\" is empty, there is nothing to score" % label)
    seen = {}
    for i, ann in enumerate(alist):
        where = "annotations[%d]" % i
        _require_object(ann, where, label)
        qid = _require_int(ann, "question_id", where, label)
        _require_int(ann, "image_id", where, label)
        _require_str(ann, "question_type", where, label)
        _require_str(ann, "answer_type", where, label)
        answers = _require_list(_require(ann, "answers", where, label), where + ".answers", label)
        if not answers:
            raise VQAScoreError("%s: %s.answers is empty" % (label, where))
        for j, gt in enumerate(answers):
            gwhere = "%s.answers[%d]" % (where, j)
            _require_object(gt, gwhere, label)
            _require_str(gt, "answer", gwhere, label)
        if qid in seen:
            raise VQAScoreError("%s: question_id %d appears more than once (annotations[%d] and %s)"
                                % (label, qid, seen[qid], where))
        seen[qid] = i
    return alist


def _check_agreement(qmap, alist, qlabel, alabel):
    ann_ids = [ann["question_id"] for ann in alist]
    ann_set = set(ann_ids)
    only_q = [qid for qid in qmap if qid not in ann_set]
    only_a = [qid for qid in ann_ids if qid not in qmap]
    if only_q or only_a:
        parts = []
        if only_a:
            parts.append("%d question id(s) of the annotations are not in the questions file (%s)"
                         % (len(only_a), _examples(only_a)))
        if only_q:
            parts.append("%d question id(s) of the questions file have no annotation (%s)"
                         % (len(only_q), _examples(only_q)))
        raise VQAScoreError("%s and %s disagree: %s" % (alabel, qlabel, "; ".join(parts)))
    bad = [(ann["question_id"], ann["image_id"], qmap[ann["question_id"]]["image_id"])
           for ann in alist if ann["image_id"] != qmap[ann["question_id"]]["image_id"]]
    if bad:
        shown = ", ".join("question %d: image %d vs %d" % b for b in bad[:5])
        raise VQAScoreError("%s and %s disagree: %d question(s) have a different image_id (%s%s)"
                            % (alabel, qlabel, len(bad), shown, ", ..." if len(bad) > 5 else ""))


def _check_results(results, ann_ids, label):
    _require_list(results, "the top level (results must be an array of objects)", label)
    res_ids = []
    for i, r in enumerate(results):
        where = "results[%d]" % i
        _require_object(r, where, label)
        res_ids.append(_require_int(r, "question_id", where, label))
        _require_str(r, "answer", where, label)
    ann_set = set(ann_ids)
    res_set = set(res_ids)
    missing = [qid for qid in ann_ids if qid not in res_set]
    extra = []
    for qid in res_ids:
        if qid not in ann_set and qid not in extra:
            extra.append(qid)
    dups = _duplicates(res_ids)
    if missing or extra or dups:
        parts = []
        if missing:
            parts.append("%d question id(s) of the annotations have no result (missing: %s)"
                         % (len(missing), _examples(missing)))
        if extra:
            parts.append("%d question id(s) are not in the annotations (extra: %s)"
                         % (len(extra), _examples(extra)))
        if dups:
            parts.append("%d question id(s) appear more than once (duplicated: %s)"
                         % (len(dups), _examples(dups)))
        raise VQAScoreError("%s: the question ids do not match the annotations "
                            "(%d results, %d annotated questions): %s"
                            % (label, len(res_ids), len(ann_ids), "; ".join(parts)))
    return {r["question_id"]: r for r in results}


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------

def _percent(scores, ndigits=2):
    return round(100 * float(sum(scores)) / len(scores), ndigits)


def evaluate(questions, annotations, results, labels=None):
    """Official VQA accuracy of parsed questions/annotations/results JSON.

    Returns {"overall": float, "perAnswerType": {...}, "perQuestionType": {...}}
    (percentages rounded to 2 decimals). Raises VQAScoreError on bad input;
    labels (a dict with keys "questions", "annotations", "results") names the
    inputs in error messages. Nothing passed in is modified.
    """
    labels = dict({"questions": "questions", "annotations": "annotations",
                   "results": "results"}, **(labels or {}))
    qmap = _check_questions(questions, labels["questions"])
    alist = _check_annotations(annotations, labels["annotations"])
    _check_agreement(qmap, alist, labels["questions"], labels["annotations"])
    ann_ids = [ann["question_id"] for ann in alist]
    res_by_id = _check_results(results, ann_ids, labels["results"])

    if questions["task_type"] == "Multiple Choice":
        for qid in ann_ids:
            choices = qmap[qid].get("multiple_choices")
            if not isinstance(choices, list):
                raise VQAScoreError("%s: task_type is \"Multiple Choice\" but question %d has no "
                                    "multiple_choices array" % (labels["questions"], qid))
            if res_by_id[qid]["answer"] not in choices:
                raise VQAScoreError("%s: the answer for question %d is not one of its "
                                    "multiple_choices" % (labels["results"], qid))

    overall = []
    per_answer_type = {}
    per_question_type = {}
    for ann in alist:
        acc = score_question(ann["answers"], res_by_id[ann["question_id"]]["answer"])
        overall.append(acc)
        per_question_type.setdefault(ann["question_type"], []).append(acc)
        per_answer_type.setdefault(ann["answer_type"], []).append(acc)
    return {
        "overall": _percent(overall),
        "perAnswerType": {k: _percent(v) for k, v in per_answer_type.items()},
        "perQuestionType": {k: _percent(v) for k, v in per_question_type.items()},
    }


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def load_json(path, label):
    """Parse a JSON file; VQAScoreError naming the file (and the place) on failure."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise VQAScoreError("%s: cannot read the file: %s" % (label, e.strerror or e))
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise VQAScoreError("%s: malformed JSON at line %d, column %d (character %d): %s"
                            % (label, e.lineno, e.colno, e.pos, e.msg))
    except UnicodeDecodeError as e:
        raise VQAScoreError("%s: malformed JSON: not valid UTF-8 text at byte %d"
                            % (label, e.start))
    except RecursionError:
        raise VQAScoreError("%s: malformed JSON: nested too deeply" % label)


def format_report(scores, nquestions=None):
    lines = []
    if nquestions is not None:
        lines.append("VQA accuracy over %d questions" % nquestions)
    lines.append("Overall Accuracy is: %.2f" % scores["overall"])
    lines.append("")
    lines.append("Per Answer Type Accuracy is the following:")
    for key, value in scores["perAnswerType"].items():
        lines.append("%s : %.2f" % (key, value))
    lines.append("")
    lines.append("Per Question Type Accuracy is the following:")
    for key, value in scores["perQuestionType"].items():
        lines.append("%s : %.2f" % (key, value))
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="vqa_score.py",
        description="Official VQA accuracy (overall, per answer type, per question type) "
                    "of a results file, computed exactly like the official VQA evaluator.",
        epilog="Exit status: 0 on success, 2 on bad arguments or bad input files.")
    parser.add_argument("--questions", required=True, metavar="Q.json",
                        help="questions file (v2_OpenEnded_mscoco_*_questions.json format)")
    parser.add_argument("--annotations", required=True, metavar="A.json",
                        help="annotations file (v2_mscoco_*_annotations.json format)")
    parser.add_argument("--results", required=True, metavar="R.json",
                        help='results: a JSON array of {"question_id": int, "answer": str}')
    parser.add_argument("--json", action="store_true",
                        help='print {"overall", "perAnswerType", "perQuestionType"} as JSON')
    args = parser.parse_args(argv)

    labels = {
        "questions": "questions file %s" % args.questions,
        "annotations": "annotations file %s" % args.annotations,
        "results": "results file %s" % args.results,
    }
    try:
        questions = load_json(args.questions, labels["questions"])
        annotations = load_json(args.annotations, labels["annotations"])
        results = load_json(args.results, labels["results"])
        scores = evaluate(questions, annotations, results, labels)
    except VQAScoreError as e:
        sys.stderr.write("vqa_score.py: error: %s\n" % e)
        return 2
    if args.json:
        sys.stdout.write(json.dumps(scores, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(format_report(scores, len(annotations["annotations"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
