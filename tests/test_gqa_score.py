"""tools/gqa_score.py: the official GQA evaluation's figures.

The questions files are written here in GQA's format; every expected figure was worked out by
hand from the official script's rules (written out next to each case), not by running the tool.
"""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(os.path.dirname(HERE), "tools", "gqa_score.py")


def op(operation, argument):
    return {"operation": operation, "argument": argument, "dependencies": []}


def question(text, answer, balanced, structural, semantic, group, ops, entailed=(), detailed="place"):
    return {"imageId": "n161313", "question": text, "answer": answer, "fullAnswer": answer, "isBalanced": balanced,
            "types": {"structural": structural, "semantic": semantic, "detailed": detailed},
            "groups": {"global": group, "local": "14-x"}, "semantic": ops, "semanticStr": "",
            "entailed": list(entailed), "equivalent": [], "annotations": {}}


# id: question, and the prediction after it
CASE = {
    # 2 steps, 4 words; entails q2 (wrong) and q6 (right), itself left out: consistency 0.5
    "q1": (question("Is the cat white?", "yes", True, "verify", "attr", "g_yes",
                    [op("select", "cat (1)"), op("verify color", "white")], ["q2", "q1", "q6"]), "yes"),
    "q2": (question("Is the cat black?", "no", True, "verify", "attr", "g_yes",
                    [op("select", "cat (1)"), op("verify color", "black")]), "yes"),
    # 2 steps ("query: color" is one), 5 words (two spaces); entails q4 (wrong): consistency 0
    "q3": (question("What color is the  bus?", "red", True, "query", "attr", "g_color",
                    [op("select", "bus (3)"), op("query", "color")], ["q4"]), "red"),
    # not balanced: never scored, but entailed by q3
    "q4": (question("What color is the large bus?", "red", False, "query", "attr", "g_color",
                    [op("select", "bus (3)"), op("query", "color")]), "blue"),
    # 1 step (exist and "choose name: ..." are not steps), 8 words, no global group
    "q5": (question("Is the cat to the left or right?", "left", True, "choose", "rel", None,
                    [op("select", "cat (5)"), op("exist", "?"), op("choose name", "left|right")]), "right"),
    # 1 step ("query: name" is not one), 4 words; entails q1 (right): consistency 1
    "q6": (question("What animal is this?", "cat", True, "query", "cat", "g_animal",
                    [op("select", "animal (2)"), op("query", "name")], ["q1"]), "cat"),
    # 10 steps (sorted after 3, as a number), 8 words; wrong, so its entailed question does not count
    "q7": (question("Is there both a cat and a dog?", "no", True, "logical", "obj", "g_yes",
                    [op("select", "thing (%d)" % i) for i in range(10)] + [op("exist", "?")], ["q1"]), "yes"),
    # 3 steps ("filter: nonexistent" contains "exist"), 10 words; entails itself and q9 (wrong): 0;
    # "Common" in its detailed type: valid only if the answer is color, material or shape
    "q8": (question("Are the table and chair made of the same material?", "wood", True, "compare", "attr",
                    "g_material", [op("select", "table (7)"), op("select", "chair (8)"), op("filter", "nonexistent"),
                                   op("same", "material")], ["q8", "q9"], detailed="twoCommon"), "wood"),
    # 3 steps, 6 words (the tab splits, "?" is a word)
    "q9": (question("What color\tis the car ?", "blue", True, "query", "attr", "g_color",
                    [op("select", "car (9)"), op("filter color", "blue"), op("query", "color")]), "red"),
}
CHOICES = {  # q4 is not balanced and needs none
    "q1": {"valid": ["yes", "no"], "plausible": ["yes", "no"]},   # yes: valid, plausible
    "q2": {"valid": ["yes", "no"], "plausible": ["no"]},          # yes: valid, not plausible
    "q3": {"valid": ["red", "blue", "white"], "plausible": ["red", "white"]},  # red: both
    "q5": {"valid": ["left", "right"], "plausible": ["left", "right"]},         # right: both
    "q6": {"valid": ["cat", "dog"], "plausible": ["cat"]},        # cat: both
    "q7": {"valid": ["yes", "no"], "plausible": ["yes", "no"]},   # yes: both
    "q8": {"valid": ["wood", "metal"], "plausible": ["wood"]},    # Common: neither
    "q9": {"valid": ["red", "blue"], "plausible": ["blue"]},      # red: valid, not plausible
}
# balanced q1 q2 q3 q5 q6 q7 q8 q9; right q1 q3 q6 q8
EXPECTED_TEXT = """Binary: 40.00%
Open: 66.67%
Accuracy: 50.00%
Consistency: 37.50%
Distribution: 0.03 (lower is better)

Accuracy / structural type:
  choose: 0.00% (1 questions)
  compare: 100.00% (1 questions)
  logical: 0.00% (1 questions)
  query: 66.67% (3 questions)
  verify: 50.00% (2 questions)

Accuracy / semantic type:
  attr: 60.00% (5 questions)
  cat: 100.00% (1 questions)
  obj: 0.00% (1 questions)
  rel: 0.00% (1 questions)

Accuracy / steps number:
  1: 50.00% (2 questions)
  2: 66.67% (3 questions)
  3: 50.00% (2 questions)
  10: 0.00% (1 questions)

Accuracy / words number:
  4: 66.67% (3 questions)
  5: 100.00% (1 questions)
  6: 0.00% (1 questions)
  8: 0.00% (2 questions)
  10: 100.00% (1 questions)
"""


def write_case(tmp_path, case=CASE, predictions=None):
    questions = {qid: q for qid, (q, _) in case.items()}
    if predictions is None:
        predictions = [{"questionId": qid, "prediction": p} for qid, (_, p) in case.items()]
    (tmp_path / "q.json").write_text(json.dumps(questions))
    (tmp_path / "p.json").write_text(json.dumps(predictions))
    (tmp_path / "c.json").write_text(json.dumps(CHOICES))
    return str(tmp_path / "q.json"), str(tmp_path / "p.json"), str(tmp_path / "c.json")


def run(*args):
    return subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True)


def run_json(*args):
    proc = run(*(list(args) + ["--json"]))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def test_text_output_is_the_official_printout(tmp_path):
    q, p, _ = write_case(tmp_path)
    proc = run("--questions", q, "--predictions", p)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED_TEXT
    assert proc.stderr == ""


def test_json_values(tmp_path):
    q, p, _ = write_case(tmp_path)
    out, _ = run_json("--questions", q, "--predictions", p)
    assert out["accuracy"] == 4 / 8 * 100
    assert out["binary"] == 2 / 5 * 100  # q1 q2 q5 q7 q8
    assert out["open"] == 2 / 3 * 100  # q3 q6 q9: structural type "query"
    assert out["consistency"] == (0.5 + 0.0 + 1.0 + 0.0) / 4 * 100
    # g_yes: gold yes 1, no 2; predicted yes 3: (3-1)^2/1 + (0-2)^2/2 = 6, weight 3
    # g_color: gold red 1, blue 1; predicted red 2: 1 + 1 = 2, weight 2; g_animal, g_material: 0, weight 1 each
    assert out["distribution"] == pytest.approx((6 * 3 + 2 * 2) / 7 / 100, rel=1e-12)
    assert out["perStructuralType"] == {
        "choose": {"accuracy": 0.0, "questions": 1}, "compare": {"accuracy": 100.0, "questions": 1},
        "logical": {"accuracy": 0.0, "questions": 1}, "query": {"accuracy": 2 / 3 * 100, "questions": 3},
        "verify": {"accuracy": 50.0, "questions": 2}}
    assert out["perSemanticType"] == {
        "attr": {"accuracy": 3 / 5 * 100, "questions": 5}, "cat": {"accuracy": 100.0, "questions": 1},
        "obj": {"accuracy": 0.0, "questions": 1}, "rel": {"accuracy": 0.0, "questions": 1}}
    assert list(out["perSteps"]) == ["1", "2", "3", "10"]
    assert [out["perSteps"][k]["questions"] for k in out["perSteps"]] == [2, 3, 2, 1]
    assert out["perSteps"]["2"]["accuracy"] == 2 / 3 * 100
    assert list(out["perLength"]) == ["4", "5", "6", "8", "10"]
    assert [out["perLength"][k]["accuracy"] for k in out["perLength"]] == [2 / 3 * 100, 100.0, 0.0, 0.0, 100.0]
    assert "validity" not in out and "plausibility" not in out


def test_choices_add_validity_and_plausibility(tmp_path):
    q, p, c = write_case(tmp_path)
    out, _ = run_json("--questions", q, "--predictions", p, "--choices", c)
    assert out["validity"] == 7 / 8 * 100
    assert out["plausibility"] == 5 / 8 * 100
    text = run("--questions", q, "--predictions", p, "--choices", c).stdout.splitlines()
    assert text[:7] == ["Binary: 40.00%", "Open: 66.67%", "Accuracy: 50.00%", "Consistency: 37.50%",
                        "Validity: 87.50%", "Plausibility: 62.50%", "Distribution: 0.03 (lower is better)"]


def test_exact_match_only(tmp_path):
    preds = [{"questionId": qid, "prediction": p} for qid, (_, p) in CASE.items()]
    for r in preds:
        if r["questionId"] == "q1":
            r["prediction"] = "Yes"  # not "yes"
        if r["questionId"] == "q3":
            r["prediction"] = "red "
    q, p, _ = write_case(tmp_path, predictions=preds)
    out, _ = run_json("--questions", q, "--predictions", p)
    assert out["accuracy"] == 2 / 8 * 100
    # right: q6 (entails q1, now wrong: 0) and q8 (0)
    assert out["consistency"] == 0.0


def test_later_prediction_wins(tmp_path):
    preds = [{"questionId": "q2", "prediction": "no"}]
    preds += [{"questionId": qid, "prediction": p} for qid, (_, p) in CASE.items()]
    q, p, _ = write_case(tmp_path, predictions=preds)
    assert run_json("--questions", q, "--predictions", p)[0]["accuracy"] == 50.0
    preds.append({"questionId": "q2", "prediction": "no"})
    q, p, _ = write_case(tmp_path, predictions=preds)
    assert run_json("--questions", q, "--predictions", p)[0]["accuracy"] == 5 / 8 * 100


def test_balanced_question_without_prediction_is_an_error(tmp_path):
    preds = [{"questionId": qid, "prediction": p} for qid, (_, p) in CASE.items() if qid != "q6"]
    q, p, _ = write_case(tmp_path, predictions=preds)
    proc = run("--questions", q, "--predictions", p)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "no prediction for balanced question q6" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_unbalanced_question_without_prediction(tmp_path):
    # the accuracies do not need it; consistency (q3 entails q4) needs every question answered
    preds = [{"questionId": qid, "prediction": p} for qid, (_, p) in CASE.items() if qid != "q4"]
    q, p, _ = write_case(tmp_path, predictions=preds)
    out, err = run_json("--questions", q, "--predictions", p)
    assert out["accuracy"] == 50.0 and out["consistency"] is None
    assert "consistency not computed" in err and "q4" in err
    assert "Consistency" not in run("--questions", q, "--predictions", p).stdout


def test_entailed_question_outside_the_file(tmp_path):
    case = dict(CASE)
    del case["q4"]  # as in the balanced files, whose questions entail questions of the all files
    q, p, _ = write_case(tmp_path, case)
    out, err = run_json("--questions", q, "--predictions", p)
    assert out["consistency"] is None and "q3 entails q4" in err
    assert out["accuracy"] == 50.0 and out["perSteps"]["10"] == {"accuracy": 0.0, "questions": 1}


def test_no_global_group(tmp_path):
    case = {qid: (dict(qq, groups={"global": None, "local": None}), p) for qid, (qq, p) in CASE.items()}
    q, p, _ = write_case(tmp_path, case)
    out, err = run_json("--questions", q, "--predictions", p)
    assert out["distribution"] is None and "distribution not computed" in err
    assert out["accuracy"] == 50.0


def test_question_chunks(tmp_path):
    """A NAME.json that is a directory of chunks NAME/NAME_<i>.json, as the official loadFile reads it."""
    ids = list(CASE)
    chunks = tmp_path / "train_all_questions"
    chunks.mkdir()
    for i, part in enumerate((ids[:4], ids[4:])):
        (chunks / ("train_all_questions_%d.json" % i)).write_text(json.dumps({k: CASE[k][0] for k in part}))
    _, p, _ = write_case(tmp_path)
    proc = run("--questions", str(tmp_path / "train_all_questions.json"), "--predictions", p)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED_TEXT


def test_numbers_for_question_ids_are_named(tmp_path):
    case = {"12": CASE["q1"]}
    q, _, _ = write_case(tmp_path, case)
    (tmp_path / "p.json").write_text(json.dumps([{"questionId": 12, "prediction": "yes"}]))
    proc = run("--questions", q, "--predictions", str(tmp_path / "p.json"))
    assert proc.returncode == 1 and "numbers" in proc.stderr


@pytest.mark.parametrize("questions,predictions,message", [
    ("[1, 2]", "[]", "is a JSON object"),
    ('{"a": 1}', "[]", "question a is not an object"),
    ('{"a": {"isBalanced": true}}', '[{"questionId": "a", "prediction": "x"}]', "question a: no field answer"),
    ('{"a": {"isBalanced": true, "answer": "x", "types": {"structural": "query"}}}',
     '[{"questionId": "a", "prediction": "x"}]', "no field question"),
    ("{", "[]", "not JSON"),
    ("{}", '{"a": "b"}', "JSON array"),
    ("{}", '[{"questionId": "a"}]', "record 0"),
])
def test_bad_files(tmp_path, questions, predictions, message):
    (tmp_path / "q.json").write_text(questions)
    (tmp_path / "p.json").write_text(predictions)
    proc = run("--questions", str(tmp_path / "q.json"), "--predictions", str(tmp_path / "p.json"))
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_missing_file(tmp_path):
    proc = run("--questions", str(tmp_path / "nope.json"), "--predictions", str(tmp_path / "p.json"))
    assert proc.returncode == 1 and "nope.json" in proc.stderr


def test_help_names_what_needs_other_files():
    proc = run("--help")
    assert proc.returncode == 0
    assert "--choices" in proc.stdout and "Grounding needs the scene" in proc.stdout
