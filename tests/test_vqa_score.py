"""Tests for tools/vqa_score.py (official VQA accuracy).

Every expected value below was worked out by hand from the rules of the official
evaluator (see the module docstring of tools/vqa_score.py), not by running the code.
"""
import copy
import importlib.util
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOOL = os.path.join(ROOT, "tools", "vqa_score.py")

_spec = importlib.util.spec_from_file_location("vqa_score", TOOL)
vs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vs)


# ---------------------------------------------------------------------------
# Builders for files in exactly the real VQA v2 formats
# ---------------------------------------------------------------------------

def make_answers(texts, confidence="yes"):
    return [{"answer": t, "answer_confidence": confidence, "answer_id": i + 1}
            for i, t in enumerate(texts)]


def make_dataset(items, task_type="Open-Ended"):
    """items: list of (question_id, question_type, answer_type, [10 GT answers], prediction).

    Returns (questions, annotations, results) as JSON-ready objects.
    """
    questions = {
        "info": {"year": 2017, "version": "2.0", "description": "test",
                 "contributor": "test", "url": "http://example.invalid",
                 "date_created": "2017-04-26 17:07:13"},
        "task_type": task_type,
        "data_type": "mscoco",
        "data_subtype": "val2014",
        "questions": [],
        "license": {"url": "http://creativecommons.org/licenses/by/4.0/",
                    "name": "Creative Commons Attribution 4.0 International License"},
    }
    annotations = {
        "info": questions["info"], "license": questions["license"],
        "data_subtype": "val2014", "data_type": "mscoco", "annotations": [],
    }
    results = []
    for qid, qtype, atype, gts, pred in items:
        image_id = qid // 1000
        questions["questions"].append(
            {"question_id": qid, "image_id": image_id, "question": "What is it?"})
        annotations["annotations"].append({
            "question_id": qid, "image_id": image_id, "question_type": qtype,
            "answer_type": atype, "multiple_choice_answer": gts[0],
            "answers": make_answers(gts) if gts and isinstance(gts[0], str) else gts,
        })
        results.append({"question_id": qid, "answer": pred})
    return questions, annotations, results


def write_files(tmp_path, questions, annotations, results):
    paths = []
    for name, obj in (("questions.json", questions), ("annotations.json", annotations),
                      ("results.json", results)):
        p = tmp_path / name
        if isinstance(obj, str):
            p.write_text(obj, encoding="utf-8")
        else:
            p.write_text(json.dumps(obj), encoding="utf-8")
        paths.append(str(p))
    return paths


def run_cli(paths, *extra):
    q, a, r = paths
    return subprocess.run([sys.executable, TOOL, "--questions", q, "--annotations", a,
                           "--results", r] + list(extra),
                          capture_output=True, text=True, timeout=60)


def basic_items():
    # qid, question_type, answer_type, GT answers, prediction, hand-computed score
    return [
        (1000, "is the", "yes/no", ["yes"] * 10, "yes"),                       # 1.0
        (1001, "how many", "number", ["2"] * 3 + ["3"] * 7, "two"),            # k=3 -> 0.9
        (2000, "what color is the", "other", ["red"] * 2 + ["blue"] * 8, "Red"),  # k=2 -> 0.6
        (2001, "how many", "number", ["4"] * 10, "5"),                         # 0.0
    ]


# ---------------------------------------------------------------------------
# 1-2. Normalisation only when the GT answers differ
# ---------------------------------------------------------------------------

def test_identical_gt_is_exact_and_case_sensitive():
    assert vs.score_question(["yes"] * 10, "Yes") == 0.0
    assert vs.score_question(["yes"] * 10, "yes") == 1.0


def test_identical_gt_prediction_not_normalised_either():
    # nothing is normalised, so neither punctuation, numbers nor articles help
    assert vs.score_question(["yes"] * 10, "yes.") == 0.0
    assert vs.score_question(["two"] * 10, "2") == 0.0
    assert vs.score_question(["dog"] * 10, "a dog") == 0.0


def test_gt_identical_after_whitespace_cleanup_counts_as_identical():
    # "yes\n" becomes "yes" before the set() test, so no normalisation happens
    assert vs.score_question(["yes"] * 9 + ["yes\n"], "Yes") == 0.0
    assert vs.score_question(["yes"] * 9 + ["\tyes "], "yes") == 1.0


def test_differing_gt_normalises_gt_and_prediction():
    # 9 x "yes" + "no": normalised, "Yes" -> "yes" matches 9 answers -> 1.0
    assert vs.score_question(["yes"] * 9 + ["no"], "Yes") == 1.0
    # GT normalised too: "Two", "two." and "2" all become "2"
    assert vs.score_question(["Two", "two.", "2", "3", "3", "3", "3", "3", "3", "3"],
                             "2") == pytest.approx(0.9)
    # the prediction gets number words, articles and punctuation handled
    assert vs.score_question(["dog"] * 4 + ["cat"] * 6, "A Dog!") == 1.0


# ---------------------------------------------------------------------------
# 3. Punctuation rules
# ---------------------------------------------------------------------------

def test_punct_followed_by_space_is_deleted():
    assert vs.process_punctuation("hello! world") == "hello world"
    assert vs.process_punctuation("red, blue") == "red blue"


def test_punct_preceded_by_space_is_deleted():
    assert vs.process_punctuation("hi ?there") == "hi there"
    assert vs.process_punctuation("a (b") == "a b"


def test_punct_otherwise_replaced_by_space():
    assert vs.process_punctuation("black-and-white") == "black and white"
    assert vs.process_punctuation("yes/no") == "yes no"
    assert vs.process_punctuation("red,blue") == "red blue"
    assert vs.process_punctuation("(yes)") == " yes "


def test_punct_decided_per_character_on_the_original_string():
    # "!" is followed by a space -> deleted; "-" is not -> replaced by a space
    assert vs.process_punctuation("a-b! c") == "a b c"
    # ";" is handled before "-" (list order); deleting ";" or replacing "/" by a
    # space puts a space next to "-" in the output, but the rule for "-" still
    # looks at the original string, where "-" has no space beside it
    assert vs.process_punctuation("x ;-y") == "x  y"
    assert vs.process_punctuation("a/-b") == "a  b"


def test_digit_comma_digit_anywhere_deletes_all_punctuation():
    assert vs.process_punctuation("1,000 dogs!") == "1000 dogs"
    assert vs.process_punctuation("dogs-cats 1,000") == "dogscats 1000"
    # without the digit,digit pattern the same string gets spaces
    assert vs.process_punctuation("dogs-cats 1, 000") == "dogs cats 1 000"


def test_apostrophe_colon_and_others_are_left_alone():
    assert vs.process_punctuation("2:30") == "2:30"
    assert vs.process_punctuation("girl's") == "girl's"
    assert vs.process_punctuation("#1 $5 50% a&b *~^|") == "#1 $5 50% a&b *~^|"


# ---------------------------------------------------------------------------
# Periods: not followed by a digit, at most 32 removed
# ---------------------------------------------------------------------------

def test_period_not_followed_by_digit_is_removed():
    assert vs.process_punctuation("yes.") == "yes"
    assert vs.process_punctuation("e.g.") == "eg"
    assert vs.process_punctuation("...") == ""


def test_period_followed_by_digit_is_kept_and_broken_lookbehind():
    assert vs.process_punctuation(".5") == ".5"
    assert vs.process_punctuation("3.5") == "3.5"
    assert vs.process_punctuation("a.5") == "a.5"
    assert vs.process_punctuation("..5") == ".5"
    # the lookbehind meant to protect "3." does not work: the period goes
    assert vs.process_punctuation("3.") == "3"


def test_at_most_32_periods_are_removed():
    assert vs.process_punctuation("." * 40) == "." * 8
    assert vs.process_punctuation("." * 32) == ""
    assert vs.process_punctuation("." * 33) == "."
    # 33 removable periods: the last one survives
    assert vs.process_punctuation("a." * 33) == "a" * 32 + "a."
    # periods followed by a digit do not use up the budget
    assert vs.process_punctuation(".1" * 40) == ".1" * 40
    assert vs.process_punctuation(".1" * 5 + "x." * 33) == ".1" * 5 + "x" * 32 + "x."


def test_period_cap_in_a_scored_question():
    long_gt = "ok" + "." * 40            # normalised to "ok" + 8 periods
    gts = [long_gt] * 4 + ["no"] * 6
    # the prediction gets the same treatment: 40 periods -> 8 left -> matches
    assert vs.score_question(gts, "ok" + "." * 40) == 1.0
    # 8 periods are all removed from the prediction -> "ok" -> no match
    assert vs.score_question(gts, "ok" + "." * 8) == 0.0
    assert vs.score_question(gts, "ok") == 0.0


# ---------------------------------------------------------------------------
# Number words, articles, contractions
# ---------------------------------------------------------------------------

def test_number_words():
    assert vs.process_digit_article("two dogs") == "2 dogs"
    assert vs.process_digit_article("none") == "0"
    assert vs.process_digit_article("zero") == "0"
    assert vs.process_digit_article("ten") == "10"
    assert vs.process_digit_article("Three") == "3"
    assert vs.process_digit_article("eleven twenty") == "eleven twenty"
    assert vs.process_digit_article("twofold") == "twofold"


def test_articles_are_dropped():
    assert vs.process_digit_article("a dog") == "dog"
    assert vs.process_digit_article("An apple") == "apple"
    assert vs.process_digit_article("THE") == ""
    assert vs.process_digit_article("on the table") == "on table"
    assert vs.process_digit_article("  many   spaces ") == "many spaces"


def test_contractions():
    assert vs.process_digit_article("dont") == "don't"
    assert vs.process_digit_article("Dont know") == "don't know"
    assert vs.process_digit_article("whats that") == "what's that"
    assert vs.process_digit_article("oclock") == "o'clock"
    # whole tokens only
    assert vs.process_digit_article("dontcare") == "dontcare"


def test_contraction_keys_with_capitals_never_match():
    assert "Im" in vs.CONTRACTIONS and "Ive" in vs.CONTRACTIONS
    assert vs.process_digit_article("Im") == "im"
    assert vs.process_digit_article("Ive") == "ive"
    assert vs.process_digit_article("Id've") == "id've"


def test_contraction_somebody_d_goes_the_wrong_way():
    assert vs.process_digit_article("somebody'd") == "somebodyd"
    assert vs.process_digit_article("somebodyd") == "somebodyd"
    assert vs.process_digit_article("wed") == "wed"  # no "wed" key


def test_contraction_table_size_and_samples():
    assert len(vs.CONTRACTIONS) == 120
    assert vs.CONTRACTIONS["twas"] == "'twas"
    assert vs.CONTRACTIONS["'ows'at"] == "'ow's'at"
    assert vs.CONTRACTIONS["weve"] == "we've"
    assert len(vs.PUNCTUATION) == 21


# ---------------------------------------------------------------------------
# Newlines and tabs
# ---------------------------------------------------------------------------

def test_newline_and_tab_replaced_then_stripped():
    assert vs.clean_whitespace("\tyes\n") == "yes"
    assert vs.clean_whitespace("red\nblue\tgreen") == "red blue green"
    assert vs.normalize_answer("\t Two \n") == "2"
    assert vs.normalize_answer("red\nblue") == "red blue"
    assert vs.score_question(["yes"] * 10, "\tyes\n") == 1.0


# ---------------------------------------------------------------------------
# Leave one annotator out
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("k, expected", [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9),
                                         (4, 1.0), (7, 1.0), (10, 1.0)])
def test_leave_one_out_values(k, expected):
    gts = ["cat"] * k + ["dog"] * (10 - k) if k < 10 else ["cat"] * 10
    assert vs.score_question(gts, "cat") == pytest.approx(expected, abs=1e-12)
    assert vs.score_question(make_answers(gts), "cat") == pytest.approx(expected, abs=1e-12)


def test_leave_one_out_compares_whole_dicts():
    # three identical dicts (same answer_id) are all left out together
    red = {"answer": "red", "answer_confidence": "yes", "answer_id": 1}
    blues = [{"answer": "blue", "answer_confidence": "yes", "answer_id": i} for i in range(2, 9)]
    # each of the 3 reds sees 0 reds, each of the 7 blues sees 3 -> 7/10
    assert vs.score_question([dict(red) for _ in range(3)] + blues, "red") == pytest.approx(0.7)
    # with distinct answer_ids it is the usual k=3 value
    distinct = [dict(red, answer_id=10 + i) for i in range(3)] + blues
    assert vs.score_question(distinct, "red") == pytest.approx(0.9)
    # ten identical dicts: nobody is left to agree with, even for the exact answer
    assert vs.score_question([dict(red, answer="yes") for _ in range(10)], "yes") == 0.0


def test_other_than_ten_answers():
    # 3 answers a, a, b, prediction a: 1/3, 1/3, 2/3 -> mean 4/9
    assert vs.score_question(["a1", "a1", "b"], "a1") == pytest.approx(4 / 9)


# ---------------------------------------------------------------------------
# Breakdown and rounding
# ---------------------------------------------------------------------------

def test_breakdown_per_answer_and_question_type():
    q, a, r = make_dataset(basic_items())
    out = vs.evaluate(q, a, r)
    assert out["overall"] == 62.5                 # (1 + 0.9 + 0.6 + 0) / 4
    assert out["perAnswerType"] == {"yes/no": 100.0, "number": 45.0, "other": 60.0}
    assert out["perQuestionType"] == {"is the": 100.0, "how many": 45.0,
                                      "what color is the": 60.0}
    # keys in order of first appearance in the annotations
    assert list(out["perAnswerType"]) == ["yes/no", "number", "other"]
    assert list(out) == ["overall", "perAnswerType", "perQuestionType"]


def test_leave_one_out_values_end_to_end():
    items = []
    for k in range(5):
        gts = ["cat"] * k + ["dog"] * (10 - k)
        items.append((3000 + k, "type k=%d" % k, "other", gts, "cat"))
    out = vs.evaluate(*make_dataset(items))
    assert out["perQuestionType"] == {"type k=0": 0.0, "type k=1": 30.0, "type k=2": 60.0,
                                      "type k=3": 90.0, "type k=4": 100.0}
    assert out["overall"] == 56.0                 # (0 + .3 + .6 + .9 + 1) / 5


def test_average_before_rounding():
    items = [(1000, "how many", "number", ["1"] * 10, "1"),
             (1001, "how many", "number", ["1"] * 10, "2"),
             (1002, "how many", "number", ["1"] * 10, "3"),
             (1003, "is the", "yes/no", ["yes"] * 10, "yes")]
    out = vs.evaluate(*make_dataset(items))
    assert out["perQuestionType"] == {"how many": 33.33, "is the": 100.0}
    # mean over questions (2/4), not over types ((33.33 + 100) / 2 = 66.67)
    assert out["overall"] == 50.0
    assert out["perAnswerType"] == {"number": 33.33, "yes/no": 100.0}


def test_rounding_is_python3_half_even():
    # 1 right out of 32 -> exactly 3.125 -> 3.12 (Python 2 would give 3.13);
    # 3 right out of 32 -> exactly 9.375 -> 9.38 (tie to the even 8)
    items = []
    for i in range(32):
        items.append((1000 + i, "what is", "other", ["cat"] * 10, "cat" if i == 0 else "dog"))
    for i in range(32):
        items.append((5000 + i, "how many", "number", ["3"] * 10, "3" if i < 3 else "4"))
    out = vs.evaluate(*make_dataset(items))
    assert out["perAnswerType"] == {"other": 3.12, "number": 9.38}
    assert out["perQuestionType"] == {"what is": 3.12, "how many": 9.38}
    assert out["overall"] == 6.25                 # 4 / 64


def test_evaluate_does_not_modify_inputs():
    q, a, r = make_dataset(basic_items() + [(3000, "what", "other", ["Dog."] * 5 + ["dog"] * 5, "dog")])
    before = copy.deepcopy((q, a, r))
    vs.evaluate(q, a, r)
    assert (q, a, r) == before


def test_multiple_choice_answer_must_be_a_choice():
    q, a, r = make_dataset([(1000, "is the", "yes/no", ["yes"] * 10, "yes")],
                           task_type="Multiple Choice")
    q["questions"][0]["multiple_choices"] = ["yes", "no"]
    assert vs.evaluate(q, a, r)["overall"] == 100.0
    r[0]["answer"] = "maybe"
    with pytest.raises(vs.VQAScoreError, match="multiple_choices"):
        vs.evaluate(q, a, r)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def test_cli_json(tmp_path):
    proc = run_cli(write_files(tmp_path, *make_dataset(basic_items())), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == {"overall": 62.5,
                   "perAnswerType": {"yes/no": 100.0, "number": 45.0, "other": 60.0},
                   "perQuestionType": {"is the": 100.0, "how many": 45.0,
                                       "what color is the": 60.0}}


def test_cli_readable_report(tmp_path):
    proc = run_cli(write_files(tmp_path, *make_dataset(basic_items())))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "62.50" in text
    i_overall = text.index("Overall")
    i_ans = text.index("Per Answer Type")
    i_q = text.index("Per Question Type")
    assert i_overall < i_ans < i_q
    assert "number : 45.00" in text[i_ans:i_q]
    assert "what color is the : 60.00" in text[i_q:]


def test_cli_help():
    proc = subprocess.run([sys.executable, TOOL, "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    assert "--questions" in proc.stdout and "--results" in proc.stdout and "--json" in proc.stdout


def test_cli_missing_argument_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, TOOL, "--questions", "q.json"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------
# Errors: message on stderr naming the file, exit status 2, no traceback
# ---------------------------------------------------------------------------

def assert_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    for needle in needles:
        assert needle in proc.stderr, (needle, proc.stderr)


def dataset_of(n):
    return make_dataset([(1000 + i, "what", "other", ["cat"] * 10, "cat") for i in range(n)])


def test_error_missing_ids(tmp_path):
    q, a, r = dataset_of(8)
    r = [x for x in r if x["question_id"] not in (1002, 1005)]
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "results.json", "missing", "1002", "1005", "2 question id(s)",
                 "6 results", "8 annotated")


def test_error_missing_ids_lists_only_a_few(tmp_path):
    q, a, r = dataset_of(20)
    proc = run_cli(write_files(tmp_path, q, a, r[:2]))
    assert_error(proc, "18 question id(s)", "missing: 1002, 1003, 1004, 1005, 1006, ...")
    assert "1019" not in proc.stderr


def test_error_extra_ids(tmp_path):
    q, a, r = dataset_of(3)
    r.append({"question_id": 99, "answer": "cat"})
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "results.json", "extra: 99", "1 question id(s)")


def test_error_duplicated_ids(tmp_path):
    q, a, r = dataset_of(3)
    r.append({"question_id": 1001, "answer": "dog"})
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "results.json", "duplicated: 1001", "4 results", "3 annotated")


def test_error_malformed_json(tmp_path):
    q, a, _ = dataset_of(2)
    bad = '[{"question_id": 1000, "answer": "cat"},\n {"question_id": 1001 "answer": "cat"}]'
    proc = run_cli(write_files(tmp_path, q, a, bad))
    assert_error(proc, "results file", "results.json", "malformed JSON", "line 2")


def test_error_malformed_json_in_annotations(tmp_path):
    q, _, r = dataset_of(2)
    proc = run_cli(write_files(tmp_path, q, '{"annotations": [', r))
    assert_error(proc, "annotations file", "annotations.json", "malformed JSON", "line 1")


def test_error_answer_not_a_string(tmp_path):
    q, a, r = dataset_of(2)
    r[1]["answer"] = 5
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "results.json", "results[1].answer must be a string", "integer")


@pytest.mark.parametrize("bad_id", ["1000", 1000.0, True, None])
def test_error_question_id_not_an_int(tmp_path, bad_id):
    q, a, r = dataset_of(2)
    r[0]["question_id"] = bad_id
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "results.json", "results[0].question_id must be an integer")


def test_error_results_not_a_list(tmp_path):
    q, a, r = dataset_of(2)
    proc = run_cli(write_files(tmp_path, q, a, {"results": r}))
    assert_error(proc, "results.json", "must be an array")


def test_error_result_missing_answer_key(tmp_path):
    q, a, r = dataset_of(2)
    del r[1]["answer"]
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "results.json", "results[1] has no key 'answer'")


def test_error_annotation_missing_key(tmp_path):
    q, a, r = dataset_of(2)
    del a["annotations"][1]["answer_type"]
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "annotations.json", "annotations[1] has no key 'answer_type'")


def test_error_gt_answer_not_a_string(tmp_path):
    q, a, r = dataset_of(2)
    a["annotations"][0]["answers"][3]["answer"] = ["cat"]
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "annotations.json", "annotations[0].answers[3].answer must be a string")


def test_error_questions_missing_top_level_key(tmp_path):
    q, a, r = dataset_of(2)
    del q["license"]
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "questions.json", "has no key 'license'")


def test_error_questions_and_annotations_disagree_on_ids(tmp_path):
    q, a, r = dataset_of(3)
    q["questions"][2]["question_id"] = 7777
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "annotations.json", "questions.json", "disagree", "1002", "7777")


def test_error_questions_and_annotations_disagree_on_image(tmp_path):
    q, a, r = dataset_of(3)
    q["questions"][1]["image_id"] = 42
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "disagree", "image_id", "question 1001")


def test_error_duplicated_annotation(tmp_path):
    q, a, r = dataset_of(2)
    a["annotations"].append(copy.deepcopy(a["annotations"][0]))
    proc = run_cli(write_files(tmp_path, q, a, r))
    assert_error(proc, "annotations.json", "question_id 1000 appears more than once")


def test_error_missing_file(tmp_path):
    q, a, r = write_files(tmp_path, *dataset_of(2))
    proc = run_cli((q, a, str(tmp_path / "nope.json")))
    assert_error(proc, "nope.json", "cannot read")


def test_evaluate_raises_clear_error():
    q, a, r = dataset_of(2)
    r.pop()
    with pytest.raises(vs.VQAScoreError, match="missing: 1001"):
        vs.evaluate(q, a, r)
