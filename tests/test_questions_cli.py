"""Questions read as text, one rule in every command (ban run --questions, ask, vqa,
easyvqa-eval): an empty question, or one with no word in the model's vocabulary, is an error;
words outside the vocabulary are read as the unknown word, with a warning on stderr that
counts and names them. (An empty line of ban run --questions used to be answered "no".)"""
import json
import os

import numpy as np
import pytest

from conftest import ROOT, fixture_path, run_ban
from vqa_files import GOLDEN_IDS, G2_JSON, golden_store, leftovers, questions_json, write_json

G2 = np.load(fixture_path("ban_ref_g2.npz"))
EASYVQA = os.path.join(ROOT, "examples", "models", "easyvqa.ban")
QUESTIONS = G2_JSON["questions"]  # the golden model's six questions: "man's" gives a word it does not know ('s)
KNOWN = ["What color is the shirt?"] + QUESTIONS[1:]  # every word known


def run_questions(tmp_path, exported, lines, check=False):
    d = tmp_path / "in"
    d.mkdir(exist_ok=True)
    np.save(d / "v.npy", G2["v"])
    np.save(d / "b.npy", G2["b"])
    q = d / "questions.txt"
    q.write_text("".join(line + "\n" for line in lines))
    proc = run_ban("run", exported["g2"], "--features", d / "v.npy", "--spatials", d / "b.npy", "--questions", q,
                   "--logits", tmp_path / "l.npy", "--answers-out", "-", check=check)
    return proc, str(q)


@pytest.mark.parametrize("line,message", [
    ("", "the question is empty"),
    ("   ", "the question is empty: \"   \""),
    ("?,?", "the question is empty: \"?,?\""),
    ("zorb blarg?", "no word of the question is in the model's vocabulary (2 unknown): \"zorb blarg?\""),
])
def test_run_refuses_empty_and_unknown_questions(tmp_path, exported, line, message):
    lines = list(KNOWN)
    lines[3] = line
    proc, path = run_questions(tmp_path, exported, lines)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == "ban: error: %s:4: %s\n" % (path, message), proc.stderr
    assert not (tmp_path / "l.npy").exists()


def test_run_warns_of_unknown_words_and_reads_them_as_the_unknown_id(tmp_path, exported):
    lines = list(KNOWN)
    lines[1] = "how many zorbs are there in the picture, blarg?"
    proc, path = run_questions(tmp_path, exported, lines, check=True)
    assert proc.stderr == ("ban: warning: %s:2: 2 of its 9 words are not in the model's vocabulary (zorbs, blarg); "
                           "read as the unknown word\n" % path)
    # the same logits as the tokens ban tokenize gives, unknown ids and all
    ids = run_ban("tokenize", exported["g2"], "--pad", 14, *lines).stdout.split("\n")[:-1]
    tokens = np.array([[int(t) for t in row.split()] for row in ids], np.int32)
    assert (tokens == 47).sum() == 2  # the golden vocabulary's unknown id
    np.save(tmp_path / "q.npy", tokens)
    run_ban("run", exported["g2"], "--features", tmp_path / "in" / "v.npy", "--spatials", tmp_path / "in" / "b.npy",
            "--tokens", tmp_path / "q.npy", "--logits", tmp_path / "l2.npy")
    assert np.array_equal(np.load(tmp_path / "l.npy"), np.load(tmp_path / "l2.npy"))


def test_the_warning_names_what_it_can_print(tmp_path, exported):
    """A word with a control character is named without it (the terminal sees no escape)."""
    lines = list(KNOWN)
    lines[0] = "what color is the \x1b[31mzorb shirt?"
    proc, path = run_questions(tmp_path, exported, lines, check=True)
    assert "\x1b" not in proc.stderr and "( [31mzorb)" in proc.stderr


def test_tokenize_shows_any_question_as_it_is(exported):
    """ban tokenize is the tokenizer on its own: no policy, nothing refused."""
    assert run_ban("tokenize", exported["g2"], "", "zorb").stdout == "\n47\n"


# ---- ban vqa ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return golden_store(tmp_path_factory.mktemp("questions_store"))


def vqa(exported, store, tmp_path, items, check=False):
    q = write_json(tmp_path / "q.json", questions_json(items))
    return run_ban("vqa", exported["g2"], "--features", store, "--questions", q, "--output", tmp_path / "r.json",
                   check=check), str(q)


@pytest.mark.parametrize("text,message", [
    ("", "the question is empty"),
    ("zorb?", "no word of the question is in the model's vocabulary (1 unknown): \"zorb?\""),
])
def test_vqa_refuses_empty_and_unknown_questions(tmp_path, exported, store, text, message):
    items = [(GOLDEN_IDS[i] * 1000 + 7, GOLDEN_IDS[i], q) for i, q in enumerate(KNOWN)]
    items[2] = (9123, GOLDEN_IDS[2], text)
    proc, path = vqa(exported, store, tmp_path, items)
    assert proc.returncode == 1
    assert proc.stderr == "ban: error: %s: question 9123: %s\n" % (path, message), proc.stderr
    assert leftovers(tmp_path) == ["q.json"]


def test_vqa_warns_by_question_id_and_counts_the_rest(tmp_path, exported, store):
    """The golden questions as they are (the reference's own first question has a word its
    vocabulary lacks), then eight more with one unknown word each: five named, the rest counted."""
    items = [(GOLDEN_IDS[i] * 1000 + 7, GOLDEN_IDS[i], q) for i, q in enumerate(QUESTIONS)]
    items += [(100 + k, GOLDEN_IDS[k % 6], "what color is the zorb%d?" % k) for k in range(8)]
    proc, path = vqa(exported, store, tmp_path, items, check=True)
    warnings = [line for line in proc.stderr.split("\n") if line.startswith("ban: warning:")]
    assert warnings[0] == ("ban: warning: %s: question %d: 1 of its 7 words is not in the model's vocabulary ('s); "
                           "read as the unknown word" % (path, GOLDEN_IDS[0] * 1000 + 7))
    assert warnings[1:5] == ["ban: warning: %s: question %d: 1 of its 5 words is not in the model's vocabulary "
                             "(zorb%d); read as the unknown word" % (path, 100 + k, k) for k in range(4)]
    assert warnings[5:] == ["ban: warning: 4 more questions with words not in the model's vocabulary"]
    results = json.loads((tmp_path / "r.json").read_text())
    assert [r["answer"] for r in results[:6]] == G2_JSON["predicted_answers"] and len(results) == 14


# ---- ban ask, ban easyvqa-eval --------------------------------------------------------------------

@pytest.fixture(scope="module")
def shape(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("questions_shapes")
    run_ban("demo", "--out", tmp)
    return tmp


@pytest.mark.parametrize("question,message", [
    ("", "--question: the question is empty\n"),
    ("zorb blarg", "--question: no word of the question is in the model's vocabulary (2 unknown): \"zorb blarg\"\n"),
])
def test_ask_refuses_empty_and_unknown_questions(shape, question, message):
    proc = run_ban("ask", EASYVQA, "--image", shape / "shape0.png", "--question", question, check=False)
    assert proc.returncode == 1 and proc.stdout == "" and proc.stderr == "ban: error: " + message, proc.stderr


def test_ask_warns_of_unknown_words(shape):
    proc = run_ban("ask", EASYVQA, "--image", shape / "shape0.png", "--question", "what zorb shape is in the image?",
                   "--top-k", 0)
    assert proc.stdout == "answer: circle\n"
    assert proc.stderr == ("ban: warning: --question: 1 of its 7 words is not in the model's vocabulary (zorb); "
                           "read as the unknown word\n")


def test_easyvqa_eval_names_the_question(tmp_path, shape):
    split = tmp_path / "split"
    os.makedirs(split / "images")
    os.link(shape / "shape0.png", split / "images" / "0.png")
    (split / "questions.json").write_text(json.dumps([["what shape is in the image?", "circle", 0], ["", "circle", 0]]))
    proc = run_ban("easyvqa-eval", EASYVQA, "--data", split, check=False)
    assert proc.returncode == 1
    assert proc.stderr == "ban: error: %s/questions.json: question 1: the question is empty\n" % split
