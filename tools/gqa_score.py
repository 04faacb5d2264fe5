#!/usr/bin/python3
"""Score GQA predictions with the figures of the official GQA evaluation.

    python3 tools/gqa_score.py --questions testdev_balanced_questions.json \\
        --predictions P.json [--json] [--choices testdev_balanced_choices.json]

Computes every figure the official evaluation script (gqadataset.org's eval.py; OpenVQA's
openvqa/datasets/gqa/eval/gqa_eval.py is a copy) computes from a questions file and a
predictions file, the way it computes them. Predictions: [{"questionId": str, "prediction": str}].

- Only balanced questions (`isBalanced` true) are scored; a prediction is correct when it equals
  the question's `answer` exactly (no normalisation of case, spaces or punctuation).
- Accuracy over them; Binary over those whose `types.structural` is not "query", Open over
  those whose it is.
- Consistency: for each balanced question answered correctly whose `entailed` list names other
  questions, the accuracy over those questions (balanced or not); their mean. The official
  script computes it only with --consistency, which needs a prediction for every question of
  the file; entailed questions outside the file stop it (they are in the `all` files, not
  always in the balanced ones). Where it could not compute it, this tool says why on stderr
  and prints none (null in JSON).
- Distribution: answers counted per `groups.global` group (questions whose group is null are
  left out), gold against predicted; per group the chi-square sum over its gold answers
  ((predicted - gold)^2 / gold; predicted answers the gold never gives are ignored); groups
  weighted by their number of questions; divided by 100 and printed as a number, lower is
  better. No balanced question with a global group: none (the official script divides by zero).
- Accuracy per structural type, per semantic type, per number of reasoning steps (the
  `semantic` operations whose "operation: argument" contains none of "exist", "query: name",
  "choose name") and per number of words (`question.split()`); their names are printed as
  they are in the file (the official script means to spell them out but never does).
- Validity and plausibility (--choices, the choices file of the same split): whether the
  prediction is in the question's `valid` / `plausible` list, or in ["color", "material",
  "shape"] when its `types.detailed` contains "Common".
- Grounding needs the scene graphs and attention maps: not computed here.

Text output: the official script's lines, in its order, rounded as it rounds them (two
decimals). --json: {"accuracy", "binary", "open", "consistency", "distribution",
"perStructuralType": {type: {"accuracy", "questions"}}, "perSemanticType", "perSteps",
"perLength"} (+ "validity", "plausibility" with --choices) with the unrounded values:
percentages, and the distribution as printed. Standard library only.

A balanced question without a prediction is an error (the official script stops there too);
so is a question missing a field the score needs (the error names the question and the field).
A file name whose file does not exist but whose directory of chunks does
(train_all_questions.json -> train_all_questions/train_all_questions_*.json) is read as the
official script reads it.
"""
import argparse
import glob
import json
import os
import re
import sys

# a reasoning step is an operation of `semantic` whose "operation: argument" contains none of these
NON_STEPS = ("exist", "query: name", "choose name")
COMMON_GROUP = ["color", "material", "shape"]  # the official belongs() for "Common" questions
SCALAR = (str, int, float, bool, type(None))  # a JSON value that is not an array or object
PER_TYPE = [("perStructuralType", "Accuracy / structural type"), ("perSemanticType", "Accuracy / semantic type"),
            ("perSteps", "Accuracy / steps number"), ("perLength", "Accuracy / words number")]


class ScoreError(Exception):
    """Bad input: the message names the file, question and field."""


class Unavailable(Exception):
    """A figure the official script could not compute on these files; the message says why."""


def _read_json(path):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except OSError as e:
        raise ScoreError("%s: %s" % (path, e.strerror or e))
    except UnicodeDecodeError as e:
        raise ScoreError("%s: not UTF-8 (byte %d)" % (path, e.start))
    except ValueError as e:
        raise ScoreError("%s: not JSON: %s" % (path, e))
    except RecursionError:
        raise ScoreError("%s: JSON nested too deeply" % path)


def load_file(path):
    """A JSON file, or (as the official loadFile) the chunks NAME/NAME_*.EXT of a missing NAME.EXT,
    merged in their number order."""
    if os.path.isfile(path):
        return _read_json(path)
    stem, ext = (path.rstrip("/"), ".json") if os.path.isdir(path) else os.path.splitext(path)
    if ext and os.path.isdir(stem):
        base = os.path.basename(stem)
        chunks = glob.glob(os.path.join(glob.escape(stem), glob.escape(base) + "_*" + ext))

        def number(name):
            m = re.search(r"_(\d+)%s$" % re.escape(ext), name)
            return (int(m.group(1)) if m else -1, name)

        merged = {}
        for chunk in sorted(chunks, key=number):
            data = _read_json(chunk)
            if not isinstance(data, dict):
                raise ScoreError("%s: a chunk must be a JSON object" % chunk)
            merged.update(data)
        if not chunks:
            raise ScoreError("%s: no such file, and %s holds no %s_*%s chunks" % (path, stem, base, ext))
        return merged
    raise ScoreError("%s: no such file" % path)


def load_questions(path):
    questions = load_file(path)
    if not isinstance(questions, dict):
        raise ScoreError("%s: a GQA questions file is a JSON object {questionId: question}" % path)
    for qid, q in questions.items():
        if not isinstance(q, dict):
            raise ScoreError("%s: question %s is not an object" % (path, qid))
    return questions


def load_predictions(path):
    """{questionId: prediction}; a later record for the same question wins, as in the official dict."""
    records = load_file(path)
    if not isinstance(records, list):
        raise ScoreError('%s: predictions are a JSON array [{"questionId", "prediction"}]' % path)
    predictions = {}
    for i, p in enumerate(records):
        if not isinstance(p, dict) or "questionId" not in p or "prediction" not in p:
            raise ScoreError('%s: record %d is not {"questionId", "prediction"}' % (path, i))
        qid, answer = p["questionId"], p["prediction"]
        if isinstance(qid, (list, dict)) or isinstance(answer, (list, dict)):
            raise ScoreError("%s: record %d: questionId and prediction must be strings" % (path, i))
        predictions[qid] = answer
    return predictions


def field(question, qid, path, kinds):
    """question[a][b]... for path "a.b", checked to be one of the JSON types in kinds."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    value = question
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            raise ScoreError("question %s: no field %s" % (qid, path))
        value = value[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ScoreError("question %s: field %s is %s" % (qid, path, type(value).__name__))
    return value


def words_number(question, qid):
    return len(field(question, qid, "question", str).split())


def steps_number(question, qid):
    """Reasoning steps: the official getStepsNum, with its "{}: {}".format of each operation."""
    steps = 0
    for op in field(question, qid, "semantic", list):
        if not isinstance(op, dict) or "operation" not in op or "argument" not in op:
            raise ScoreError("question %s: a semantic step without operation and argument" % qid)
        text = "{}: {}".format(op["operation"], op["argument"])
        if not any(o in text for o in NON_STEPS):
            steps += 1
    return steps


def mean(values):
    """The official avg(): 0 for no values."""
    return float(sum(values)) / len(values) if values else 0


def chi_square(gold, predicted):
    """The official chiSquare over {group: {answer: count}}, groups weighted by their questions."""
    sum_score, sum_overall = 0, 0
    for group, answers in gold.items():
        score, overall = 0, 0
        for answer, e in answers.items():
            o = predicted[group].get(answer, 0)
            score += (float(o - e) ** 2) / e
            overall += e
        sum_score += score * overall
        sum_overall += overall
    if sum_overall == 0:
        raise Unavailable("no balanced question has a global group (the official script divides by zero)")
    return float(sum_score) / sum_overall


def consistency(questions, predictions, correct_ids):
    """Mean accuracy over the entailed questions of each correctly answered balanced question."""
    unanswered = [qid for qid in questions if qid not in predictions]
    if unanswered:
        raise Unavailable("%d questions (first: %s) have no prediction; the official --consistency needs one "
                          "for every question of the file" % (len(unanswered), unanswered[0]))
    per_question = []
    for qid in correct_ids:
        entailed = [eid for eid in field(questions[qid], qid, "entailed", list) if eid != qid]
        if not entailed:
            continue
        scores = []
        for eid in entailed:
            if isinstance(eid, (list, dict)) or eid not in questions:
                raise Unavailable("question %s entails %s, which is not in the questions file (the official "
                                  "script stops here; the all-questions file has it)" % (qid, eid))
            if "answer" not in questions[eid]:
                raise Unavailable("question %s entails %s, which has no answer" % (qid, eid))
            scores.append(float(1 if predictions[eid] == questions[eid]["answer"] else 0))
        per_question.append(mean(scores))
    return mean(per_question) * 100


def belongs(prediction, group, question, qid):
    """The official belongs(): questions whose detailed type contains "Common" accept the three names."""
    if "Common" in field(question, qid, "types.detailed", (str, list)):
        group = COMMON_GROUP
    return prediction in group


def score(questions, predictions, choices=None):
    """Every figure, unrounded: {"accuracy", "binary", "open", "consistency", "distribution",
    "perStructuralType", ...}; "consistency" / "distribution" None when the official script
    could not compute them, with the reasons in "notes"."""
    missing = [qid for qid, q in questions.items() if field(q, qid, "isBalanced", SCALAR) and qid not in predictions]
    if missing:
        hint = ""
        if missing[0].isdigit() and int(missing[0]) in predictions:
            hint = " (the predictions' questionIds are numbers; GQA's are strings)"
        raise ScoreError("no prediction for balanced question %s (%d balanced questions have none)%s"
                         % (missing[0], len(missing), hint))
    lists = {"accuracy": [], "binary": [], "open": [], "validity": [], "plausibility": []}
    per = {key: {} for key, _ in PER_TYPE}
    gold_dist, predicted_dist = {}, {}
    correct_ids = []
    for qid, q in questions.items():
        if not q["isBalanced"]:
            continue
        gold, predicted = field(q, qid, "answer", SCALAR), predictions[qid]
        right = float(1 if predicted == gold else 0)
        structural = field(q, qid, "types.structural", str)
        lists["accuracy"].append(right)
        per["perLength"].setdefault(words_number(q, qid), []).append(right)
        per["perSteps"].setdefault(steps_number(q, qid), []).append(right)
        per["perStructuralType"].setdefault(structural, []).append(right)
        per["perSemanticType"].setdefault(field(q, qid, "types.semantic", str), []).append(right)
        lists["open" if structural == "query" else "binary"].append(right)
        if choices is not None:
            for name in ("valid", "plausible"):
                ok = False
                if choices:  # the official `if choices`: an empty choices file makes every answer invalid
                    if qid not in choices or not isinstance(choices[qid], dict) \
                            or not isinstance(choices[qid].get(name), list):
                        raise ScoreError("choices: no %s list for question %s" % (name, qid))
                    ok = belongs(predicted, choices[qid][name], q, qid)
                lists["validity" if name == "valid" else "plausibility"].append(float(1 if ok else 0))
        group = field(q, qid, "groups.global", (str, type(None)))
        if group is not None:
            gold_dist.setdefault(group, {}).setdefault(gold, 0)
            gold_dist[group][gold] += 1
            predicted_dist.setdefault(group, {}).setdefault(predicted, 0)
            predicted_dist[group][predicted] += 1
        if right:
            correct_ids.append(qid)
    result = {"accuracy": mean(lists["accuracy"]) * 100, "binary": mean(lists["binary"]) * 100,
              "open": mean(lists["open"]) * 100}
    notes = []
    for name, compute in (("consistency", lambda: consistency(questions, predictions, correct_ids)),
                          ("distribution", lambda: chi_square(gold_dist, predicted_dist) / 100)):
        try:
            result[name] = compute()
        except Unavailable as e:
            result[name] = None
            notes.append("%s not computed: %s" % (name, e))
    if choices is not None:
        result["validity"] = mean(lists["validity"]) * 100
        result["plausibility"] = mean(lists["plausibility"]) * 100
    for key, _ in PER_TYPE:
        result[key] = {t: {"accuracy": mean(per[key][t]) * 100, "questions": len(per[key][t])}
                       for t in sorted(per[key])}
    result["notes"] = notes
    return result


def format_text(result):
    """The official script's printout: the overall figures in its order, then each breakdown."""
    lines = []
    for name in ("binary", "open", "accuracy", "consistency", "validity", "plausibility", "distribution"):
        if result.get(name) is None:
            continue
        suffix = " (lower is better)" if name == "distribution" else "%"
        lines.append("{}: {:.2f}{}".format(name.capitalize(), result[name], suffix))
    for key, title in PER_TYPE:
        lines.append("")
        lines.append("{}:".format(title))
        for t, v in result[key].items():
            lines.append("  {}: {:.2f}% ({} questions)".format(t, v["accuracy"], v["questions"]))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="gqa_score.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The official GQA evaluation's figures (accuracy, binary, open, consistency, distribution, "
                    "accuracy per structural type, semantic type, steps and words) from a questions file and "
                    "predictions, computed as the official script computes them.",
        epilog="Validity and plausibility need the split's choices file (--choices). Grounding needs the scene "
               "graphs and the model's attention maps and is not computed. Consistency needs a prediction for "
               "every question of the file and the entailed questions in it (the all-questions files have them); "
               "otherwise it is left out and stderr says why.")
    ap.add_argument("--questions", required=True,
                    help="GQA questions JSON {questionId: {...}}, or the directory of its chunks")
    ap.add_argument("--predictions", required=True, help='[{"questionId", "prediction"}]')
    ap.add_argument("--choices", help="the split's choices file: adds validity and plausibility")
    ap.add_argument("--json", action="store_true", help="one JSON object, unrounded values")
    args = ap.parse_args(argv)
    try:
        questions = load_questions(args.questions)
        predictions = load_predictions(args.predictions)
        choices = None
        if args.choices:
            choices = load_file(args.choices)
            if not isinstance(choices, dict):
                raise ScoreError("%s: a choices file is a JSON object {questionId: {valid, plausible}}" % args.choices)
        result = score(questions, predictions, choices)
    except ScoreError as e:
        print("gqa_score: %s" % e, file=sys.stderr)
        return 1
    for note in result.pop("notes"):
        print("gqa_score: %s" % note, file=sys.stderr)
    if args.json:
        order = ["accuracy", "binary", "open", "consistency", "distribution"]
        order += ["validity", "plausibility"] if choices is not None else []
        out = {k: result[k] for k in order}
        out.update({k: {str(t): v for t, v in result[k].items()} for k, _ in PER_TYPE})
        print(json.dumps(out))
    else:
        print(format_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
