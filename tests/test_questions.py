"""The questions files (examples/questions.h): VQA's and GQA's formats, ids held exactly,
memory bounded by what the questions need, files that are not regular refused.

Each file is read through the fuzz target's replay driver (build/fuzz/replay_questions with
FUZZ_QUESTIONS_REPORT set prints what the reader returns; the target itself checks the reader
against cJSON and against the same file read in chunks of 7 bytes) and compared with what
Python's json module reads from the same file; `ban vqa` is run where the command matters."""
import json
import os

import pytest

from conftest import fuzz_report, run_ban, run_ban_capped
from vqa_files import GOLDEN_IDS, G2_JSON, golden_fields, questions_json, write_json, write_tsv


def read(path):
    """(format or None, [question dicts] or the refusal's message) as the reader sees the file."""
    lines = fuzz_report("questions", path, FUZZ_QUESTIONS_REPORT="1")
    if lines[0].startswith("refused: "):
        return None, lines[0][len("refused: "):]
    fmt, n = lines[0].split()
    items = [json.loads(line) for line in lines[1:1 + int(n)]]
    assert len(items) == int(n)
    return fmt, items


def gqa_file(questions):
    """questions: (question id, image id, text, answer or None) -> a file as GQA's testdev_balanced_questions.json."""
    doc = {}
    for qid, image, text, answer in questions:
        q = {"semantic": [{"operation": "select", "dependencies": [], "argument": "bag (3057)"}],
             "entailed": [], "equivalent": [qid], "question": text, "imageId": image, "isBalanced": True,
             "groups": {"global": None, "local": "13-bag_left"}, "semanticStr": "select: bag (3057)",
             "annotations": {"answer": {}, "question": {"2": "3057"}, "fullAnswer": {}},
             "types": {"detailed": "positionVerify", "semantic": "rel", "structural": "verify"},
             "fullAnswer": "Yes, the bag is on the left."}
        if answer is not None:
            q["answer"] = answer
        doc[qid] = q
    return doc


def test_vqa_file_reads_as_json_does(tmp_path):
    items = [(262148000, 262148, "Where is he looking?"), (262148001, 262148, "What are the people doing?"),
             (393225000, 393225, "Is the bowl full?"), (1, 2, "caf\u00e9 \U0001F600 \"quoted\" \\ / \n\t")]
    path = write_json(tmp_path / "q.json", questions_json(items))
    fmt, got = read(path)
    assert fmt == "vqa"
    assert [(q["question_id"], q["image_id"], q["question"]) for q in got] == items
    assert [(q["question_key"], q["image_key"], q["answer"]) for q in got] == [(str(a), str(b), None)
                                                                             for a, b, _ in items]


def test_gqa_file_reads_as_json_does(tmp_path):
    questions = [("20968981", "n161313", "Is the bag on the left?", "yes"),
                 ("05451384", "2354786", "What color is the car?", "red"),  # leading zero: the key as written
                 ("201640614", "2354786", "Who wears the hat?", None)]     # the test files have no answers
    path = write_json(tmp_path / "testdev_balanced_questions.json", gqa_file(questions))
    fmt, got = read(path)
    assert fmt == "gqa"
    assert [(q["question_key"], q["image_key"], q["question"], q["answer"]) for q in got] == questions
    assert all(q["question_id"] == 0 and q["image_id"] == 0 for q in got)
    with open(path) as f:  # and in the order Python's json keeps them
        assert [q["question_key"] for q in got] == list(json.load(f))


def test_ids_beyond_2p53_are_held_exactly(tmp_path):
    """A double rounds 9007199254740993 to ...992: the two would collide. Held exactly, they do not;
    beyond int64 is refused."""
    big = 9007199254740993
    path = tmp_path / "q.json"
    path.write_text('{"questions": [{"question_id": %d, "image_id": %d, "question": "a?"}, '
                    '{"question_id": %d, "image_id": 9223372036854775807, "question": "b?"}]}' % (big, big, big - 1))
    fmt, got = read(path)
    assert fmt == "vqa" and [q["question_id"] for q in got] == [big, big - 1]
    assert [q["question_key"] for q in got] == [str(big), str(big - 1)]
    assert [q["image_id"] for q in got] == [big, 9223372036854775807]
    for text, message in [
        ('{"questions": [{"question_id": 9223372036854775808, "image_id": 1, "question": "a"}]}',
         'questions[0]: "question_id" is missing or not a whole number (a JSON integer of 64 bits)'),
        ('{"questions": [{"question_id": 1, "image_id": -9223372036854775809, "question": "a"}]}',
         'questions[0] (question 1): "image_id" is missing or not a whole number'),
        ('{"questions": [{"question_id": 1e3, "image_id": 1, "question": "a"}]}',
         'questions[0]: "question_id" is missing or not a whole number'),
        ('{"questions": [{"question_id": 5.0, "image_id": 1, "question": "a"}]}',
         'questions[0]: "question_id" is missing or not a whole number'),
    ]:
        path.write_text(text)
        verdict, got = read(path)
        assert verdict is None and got.startswith("q.json: " + message), got


TRUNCATED = '{"questions": [{"question_id": 1, "image_id": 2, "question": "wh'
GARBAGE = '{"questions": [{"question_id": 1, "image_id": 2, "question": "a"}]} x'
CONTROL = '{"questions": [{"question_id": 1, "image_id": 2, "question": "a\tb"}]}'


@pytest.mark.parametrize("name,text,message", [
    # malformed JSON: where (the column of the byte, counted from 1) and what
    ("truncated", TRUNCATED, "malformed JSON at line 1, column %d: the file ends inside a string (the file ends "
     "there: truncated?)" % (len(TRUNCATED) + 1)),
    ("garbage after", GARBAGE, "malformed JSON at line 1, column %d: more after the end of the JSON object"
     % len(GARBAGE)),
    ("control character", CONTROL, "malformed JSON at line 1, column %d: a control character inside a string"
     % (CONTROL.index("\t") + 1)),
    ("nested too deep", '{"junk": %s%s, "questions": []}' % ("[" * 1001, "]" * 1001),
     "malformed JSON at line 1, column 1010: nested more than 1000 levels deep"),
    ("second line", '{"questions": [\n  {"question_id": 1,, "image_id": 2}]}',
     "malformed JSON at line 2, column 21: expected a string key"),
    # JSON, but not the questions
    ("NUL escape", '{"questions": [{"question_id": 1, "image_id": 2, "question": "a\\u0000b"}]}',
     'questions[0] (question 1): "question" is missing or not a string: it holds a NUL (\\u0000)'),
    ("lone surrogate", '{"questions": [{"question_id": 1, "image_id": 2, "question": "\\udc00"}]}',
     'questions[0] (question 1): "question" is missing or not a string: it holds a lone surrogate escape'),
    ("question too long", '{"questions": [{"question_id": 1, "image_id": 2, "question": "%s"}]}' % ("a" * 65536),
     'questions[0] (question 1): "question" is missing or not a string: it is longer than 65535 bytes'),
    ("field twice", '{"questions": [{"question_id": 1, "image_id": 2, "image_id": 3, "question": "a"}]}',
     'questions[0]: "image_id" appears twice'),
    ("two arrays", '{"questions": [], "questions": []}', 'two "questions" arrays'),
    ("question id twice", '{"questions": [{"question_id": 4, "image_id": 2, "question": "a"}, '
     '{"question_id": 4, "image_id": 3, "question": "b"}]}',
     "question_id 4 appears twice (questions[0] and questions[1]); a results file holds each question once"),
    ("GQA question id twice", '{"7": {"imageId": "n1", "question": "a"}, "7": {"imageId": "n2", "question": "b"}}',
     "question 7 appears twice (members 0 and 1)"),
    # a GQA file with good questions, then a bad one: named as a GQA question
    ("GQA image id with a slash", '{"7": {"imageId": "n1", "question": "a"}, "8": {"imageId": "../x", "question": "b"}}',
     "question 8: \"imageId\" '../x' is not 1 to 64 letters, digits, '_', '-' or '.'"),
    ("GQA question id not an id", '{"7": {"imageId": "1", "question": "a"}, "a b": {"imageId": "1", "question": "b"}}',
     "the question id \"a b\" (member 1) is not 1 to 64 letters, digits, '_', '-' or '.'"),
    ("GQA without its question", '{"7": {"imageId": "1", "question": "a"}, "8": {"imageId": "1"}}',
     'question 8: "question" is missing'),
    # the first member is not a question: neither format
    ("GQA numeric image id", '{"7": {"imageId": 2354786, "question": "a"}}',
     'expected an object with a "questions" array (a VQA questions file) or of questions by id (a GQA questions '
     'file): question 7: "imageId" is not a string'),
    ("neither format", '{"annotations": []}', 'expected an object with a "questions" array (a VQA questions file) or '
     'of questions by id (a GQA questions file): "annotations" (member 0) is not a question object'),
    ("empty GQA", '{}', "the file holds no questions"),
])
def test_bad_files_are_refused_with_the_reason(tmp_path, name, text, message):
    path = tmp_path / "q.json"
    path.write_text(text)
    assert read(path) == (None, "q.json: " + message)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("questions")
    tsv = write_tsv(tmp / "a.tsv", [golden_fields(i) for i in range(6)])
    out = tmp / "golden.store"
    run_ban("features", "import", "--tsv", tsv, "--output", out)
    return str(out)


def test_ban_vqa_keeps_ids_beyond_2p53(exported, store, tmp_path):
    """Two ids a double cannot tell apart: both answered, written exactly (earlier, the second was
    refused as a repeat of the first)."""
    big = 9007199254740993
    items = [(big, GOLDEN_IDS[0], G2_JSON["questions"][0]), (big - 1, GOLDEN_IDS[1], G2_JSON["questions"][1])]
    questions = write_json(tmp_path / "q.json", questions_json(items))
    out = tmp_path / "results.json"
    run_ban("vqa", "--model", exported["g2"], "--features", store, "--questions", questions, "--output", out)
    assert '"question_id": %d,' % big in out.read_text()
    results = json.loads(out.read_text())
    assert [r["question_id"] for r in results] == [big, big - 1]
    assert [r["answer"] for r in results] == G2_JSON["predicted_answers"][:2]


def test_ban_vqa_refuses_what_is_not_a_regular_file(exported, store, tmp_path):
    out = tmp_path / "results.json"
    fifo = tmp_path / "questions.fifo"
    os.mkfifo(fifo)  # nobody writes to it: opening it must not wait for a writer
    for path in ("/dev/zero", str(fifo)):
        proc = run_ban("vqa", "--model", exported["g2"], "--features", store, "--questions", path, "--output", out,
                       check=False, timeout=60)
        assert proc.returncode == 1
        assert "ban: error: %s: not a regular file" % path in proc.stderr, proc.stderr
    assert not out.exists()


def test_ban_vqa_answers_a_gqa_file_in_gqa_s_format(exported, store, tmp_path):
    """A GQA questions file (string question ids) is answered into GQA's predictions format."""
    items = [("q%d" % i, str(GOLDEN_IDS[i]), q, "yes") for i, q in enumerate(G2_JSON["questions"])]
    path = write_json(tmp_path / "testdev_balanced_questions.json", gqa_file(items))
    out = tmp_path / "p.json"
    run_ban("vqa", "--model", exported["g2"], "--features", store, "--questions", path, "--output", out)
    assert json.loads(out.read_text()) == [{"questionId": "q%d" % i, "prediction": a}
                                           for i, a in enumerate(G2_JSON["predicted_answers"])]


def test_a_key_nobody_reads_costs_no_memory(exported, store, tmp_path):
    """20 MB of small values under a key nobody reads, then the questions: answered within 256 MB of
    address space in all (the model, OpenBLAS and the store included). cJSON's tree of that key
    took 40 times the file (800 MB); a 100 MB file took 4 GB."""
    items = [(i, GOLDEN_IDS[i], q) for i, q in enumerate(G2_JSON["questions"])]
    path = tmp_path / "junk.json"
    with open(path, "w") as f:
        f.write('{"junk": [' + "0," * (10 * 1000 * 1000) + '0], "questions": ')
        json.dump(questions_json(items)["questions"], f)
        f.write("}")
    out = tmp_path / "results.json"
    proc = run_ban_capped(256, "vqa", "--model", exported["g2"], "--features", store, "--questions", path,
                          "--output", out)
    assert proc.returncode == 0, proc.stderr
    assert [r["answer"] for r in json.loads(out.read_text())] == G2_JSON["predicted_answers"]
