"""ban serve over real HTTP: the routes (http.client), every refusal of issue 14 one by one (raw
sockets where http.client would not send the request), 64 concurrent clients whose answers equal
`ban ask` (the easy-VQA model, pixels) and `ban vqa` (the reference's golden model, a feature
store), grounding equal to `ban ground --json`, and SIGTERM in the middle of load: every request
the server read is answered in full, none lost or cut; and 1,500 random and mutated requests,
each answered with a status of its own. The browser test is test_serve_browser.py.

Nothing here depends on timing but through generous timeouts: a stalled client is closed by the
server's own timeout (10 s), which the test waits for up to 40 s while the other tests run."""
import base64
import http.client
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time
import zlib

import numpy as np
import pytest

from conftest import ROOT, ban_binary, run_ban
from test_easyvqa import dataset_dir

MODEL = os.path.join(ROOT, "examples", "models", "easyvqa.ban")
QUESTION = "what is the red shape?"
TIMEOUT_S = 10          # the server's: a connection silent this long is closed
CONNECTIONS = 256       # the server's: connections open at once


class Server:
    """build/ban serve MODEL on a port the system picks; stop() sends a signal and returns the exit
    status. Its stderr goes to a file (a pipe could fill and block it)."""

    def __init__(self, tmp, model, *args):
        self.log_path = str(tmp / ("serve-%d.log" % time.monotonic_ns()))
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([ban_binary(), "serve", str(model), "--port", "0"] + [str(a) for a in args],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        m = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)\n", line)
        if not m:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("ban serve did not start (%r):\n%s" % (line, self.stderr()))
        self.port = int(m.group(1))

    def stderr(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """sig (None: none, the process was signalled already), then its exit status"""
        if sig and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.log.close()


def call(port, method, path, body=None, headers=None, timeout=60):
    """One request on a new connection: (status, headers with lower-case names, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def post(port, path, body):
    status, headers, data = call(port, "POST", path, body, {"Content-Type": "application/json"})
    assert headers["content-type"] == "application/json", headers
    return status, headers, json.loads(data)


def healthy(port):
    status, _, data = call(port, "GET", "/health")
    assert status == 200 and json.loads(data)["status"] == "ok", (status, data)


def read_until_closed(s):
    """Everything the server sends on s until it closes the connection (or the socket's timeout)."""
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return got
            got += chunk
    except (ConnectionResetError, socket.timeout):
        return got
    finally:
        s.close()


def raw(port, data, timeout=30):
    """Bytes sent on a socket of their own, and all the server answers until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    return read_until_closed(s)


def run_clients(port, n, plan):
    """n clients at once, each on a thread and a keep-alive connection of its own, client k sending
    the requests plan(k) lists, [(path, body, expected)]: every (status, JSON answer, expected)
    (an error raised in a client fails the test)."""
    results, errors, start = [], [], threading.Barrier(n)

    def client(k):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            start.wait()
            for path, body, expected in plan(k):
                conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                r = conn.getresponse()
                results.append((r.status, json.loads(r.read()), expected))
            conn.close()
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    return results


def split_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    return status, headers, body


def b64(data):
    return base64.b64encode(data).decode("ascii")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width, height):
    """A PNG whose header announces width x height and whose data holds one row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 7)) +
            png_chunk(b"IEND", b""))


def bmp_missing_rows(width=8, height=8):
    """A 24-bit BMP whose header announces more rows than it holds."""
    row = (width * 3 + 3) // 4 * 4
    header = b"BM" + struct.pack("<IHHI", 54 + row * height, 0, 0, 54) + struct.pack(
        "<IiiHHIIiiII", 40, width, height, 1, 24, 0, row * height, 2835, 2835, 0, 0)
    return header + b"\x80" * (row * 2)


# ---- the easy-VQA model: pixels ------------------------------------------------------------------

def ask(image, question):
    """ban ask's answer and its top 5 [(answer, probability as printed)]."""
    lines = run_ban("ask", MODEL, "--image", image, "--question", question, "--top-k", 5).stdout.splitlines()
    assert lines[0].startswith("answer: ")
    return lines[0][len("answer: "):], [tuple(l.split()[1:3]) for l in lines[1:6]]


@pytest.fixture(scope="module")
def pairs():
    """16 (image, question) pairs of easy-VQA's test split with ban ask's answers."""
    data = dataset_dir()
    questions = json.load(open(os.path.join(data, "test", "questions.json")))
    out = []
    for image in range(8):
        path = os.path.join(data, "test", "images", "%d.png" % image)
        for q in [q for q, _, i in questions if i == image][:2]:
            answer, top = ask(path, q)
            out.append({"image": path, "b64": b64(open(path, "rb").read()), "question": q, "answer": answer,
                        "top": top})
    return out


@pytest.fixture(scope="module")
def pixel_server(tmp_path_factory):
    """The easy-VQA model served with 1 worker, batches of up to 8, and from the start one client
    that stalls mid-request (test_a_stalled_client_is_timed_out, the last test, checks it)."""
    server = Server(tmp_path_factory.mktemp("serve"), MODEL, "--workers", 1, "--max-batch", 8)
    stalled = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT_S * 4)
    stalled.sendall(b"POST /v1/answer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"question\": ")
    server.stalled = stalled
    yield server
    stalled.close()
    rc = server.stop()
    assert rc == 0, server.stderr()


def test_routes(pixel_server):
    port = pixel_server.port
    healthy(port)
    status, headers, data = call(port, "GET", "/v1/model")
    info = json.loads(data)
    assert status == 200 and info["task"] == "vqa" and info["input"] == "pixels"
    assert info["image"] == {"width": 64, "height": 64, "grid": [8, 8], "formats": ["PNG", "BMP"]}
    assert info["config"]["glimpses"] == 2 and info["config"]["answers"] == len(info["answers"]) == 13
    assert info["conventions"]["probability"] == "softmax" and info["conventions"]["question_padding"] == "masked"
    assert info["server"]["workers"] == 1 and info["server"]["max_batch"] == 8
    status, headers, page = call(port, "GET", "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert b"/v1/answer" in page and b"<canvas" in page
    assert not re.search(rb"(src|href)\s*=\s*['\"]?(https?:)?//", page)  # nothing from the network
    status, headers, _ = call(port, "HEAD", "/health")
    assert status == 200


def test_metrics_are_prometheus_text(pixel_server, pairs):
    port = pixel_server.port
    p = pairs[0]
    assert post(port, "/v1/answer", {"question": p["question"], "image": p["b64"]})[0] == 200
    status, headers, data = call(port, "GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    text = data.decode()
    sample = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [0-9.e+-]+$')
    for line in text.splitlines():
        assert line.startswith("# HELP ") or line.startswith("# TYPE ") or sample.match(line), line
    for name in ("ban_requests_total", "ban_errors_total", "ban_request_duration_seconds", "ban_batch_questions",
                 "ban_queue_questions", "ban_workers_busy"):
        assert "# TYPE %s " % name in text
    answered = int(re.search(r'ban_requests_total\{route="/v1/answer",status="200"\} (\d+)', text).group(1))
    assert answered >= 1
    assert re.search(r'ban_request_duration_seconds_bucket\{route="/v1/answer",le="\+Inf"\} (\d+)', text)
    assert int(re.search(r"ban_batch_questions_count (\d+)", text).group(1)) >= 1
    assert "ban_workers 1\n" in text


def check_answer(got, pair):
    """A server answer against ban ask's: the answer, the top 5, and their probabilities to the 4
    decimals ask prints (a batch of other shapes may differ in the last bits: ban vqa's own
    batching test allows 1e-5; on this machine they are the same bits)."""
    assert got["answer"] == pair["answer"], (got, pair)
    assert [t["answer"] for t in got["top_k"]] == [a for a, _ in pair["top"]], (got, pair)
    assert all(abs(t["probability"] - float(p)) <= 5e-5 + 1e-6 for t, (_, p) in zip(got["top_k"], pair["top"]))


def test_answers_equal_ban_ask(pixel_server, pairs):
    for p in pairs:
        status, _, got = post(pixel_server.port, "/v1/answer", {"question": p["question"], "image": p["b64"]})
        assert status == 200, got
        check_answer(got, p)
        assert got["question"] == p["question"] and len(got["entropy"]) == 2 and got["ms"] > 0
        assert "attention" not in got


def test_several_questions_in_one_request(pixel_server, pairs):
    one_image = [p for p in pairs if p["image"] == pairs[2]["image"]]
    status, _, got = post(pixel_server.port, "/v1/answer",
                          {"questions": [p["question"] for p in one_image], "image": one_image[0]["b64"]})
    assert status == 200 and len(got["answers"]) == len(one_image)
    for g, p in zip(got["answers"], one_image):
        assert g["question"] == p["question"]
        check_answer(g, p)


def test_attention_entropy_words_and_glimpses(pixel_server, pairs):
    p = pairs[0]
    status, _, got = post(pixel_server.port, "/v1/answer",
                          {"question": p["question"] + " zebra", "image": p["b64"], "attention": True, "top_k": 13})
    assert status == 200, got
    assert [w["word"] for w in got["words"]] == p["question"].rstrip("?").split() + ["zebra"]
    assert [w["known"] for w in got["words"]] == [True] * (len(got["words"]) - 1) + [False]
    att = np.array(got["attention"])
    n = len(got["words"])
    assert att.shape == (2, 64, n) and got["positions"] == n  # a masked model: the question's own positions
    assert np.abs(att.sum(axis=(1, 2)) - 1).max() < 1e-5
    entropy = -(att * np.log(np.where(att > 0, att, 1))).sum(axis=(1, 2))
    assert np.abs(entropy - np.array(got["entropy"])).max() < 1e-4
    assert len(got["top_k"]) == 13 and abs(sum(t["probability"] for t in got["top_k"]) - 1) < 1e-4
    assert got["image"] == {"width": 64, "height": 64, "grid": [8, 8]}
    status, _, one = post(pixel_server.port, "/v1/answer",
                          {"question": p["question"], "image": p["b64"], "glimpses": 1, "attention": True})
    assert status == 200 and len(one["entropy"]) == 1 and len(one["attention"]) == 1
    status, _, none = post(pixel_server.port, "/v1/answer", {"question": p["question"], "image": p["b64"], "top_k": 0})
    assert status == 200 and none["top_k"] == [] and none["answer"] == p["answer"]
    status, _, url = post(pixel_server.port, "/v1/answer", {"question": p["question"],
                                                            "image": "data:image/png;base64," + p["b64"]})
    assert status == 200 and url["answer"] == p["answer"]  # a data URL, as a browser's FileReader gives it


def refusals(port, image):
    """(name, body, field, words of the message): every 400 of POST /v1/answer on a pixel model."""
    png = base64.b64decode(image)
    q = QUESTION
    return [
        ("not JSON", b'{"question": ', None, "not JSON"),
        ("empty body", b"", None, "not JSON"),
        ("a list", b"[1, 2]", None, "must be a JSON object"),
        ("a string", b'"what?"', None, "must be a JSON object"),
        ("two values", b'{"question": "a"} {}', None, "more than one JSON value"),
        ("deep nesting", b"[" * 100000, None, "not JSON"),
        ("unknown field", {"question": q, "image": image, "toop_k": 5}, None, '"toop_k" is not a field'),
        ("repeated field", ('{"question": "a", "question": "%s", "image": "%s"}' % (q, image)).encode(), "question",
         "given twice"),
        ("no question", {"image": image}, "question", "missing"),
        ("question not a string", {"question": 5, "image": image}, "question", "must be a string"),
        ("question and questions", {"question": q, "questions": [q], "image": image}, "questions", "not both"),
        ("questions not a list", {"questions": q, "image": image}, "questions", "must be a list of strings"),
        ("questions empty", {"questions": [], "image": image}, "questions", "an empty list"),
        ("questions more than a batch", {"questions": [q] * 9, "image": image}, "questions", "more than 8 questions"),
        ("a question of the list", {"questions": [q, 7], "image": image}, "questions", "questions[1]: must be"),
        ("empty question", {"question": "", "image": image}, "question", "the question is empty"),
        ("no known word", {"question": "zebra xylophone?", "image": image}, "question",
         "no word of the question is in the model's vocabulary"),
        ("invalid UTF-8", b'{"question": "what \xff shape?", "image": "' + image.encode() + b'"}', "question",
         "not valid UTF-8"),
        ("no image", {"question": q}, "image", "missing"),
        ("image not a string", {"question": q, "image": [1]}, "image", "must be a string"),
        ("an image id to a pixel model", {"question": q, "image_id": "42"}, "image_id", "this model reads pixels"),
        ("invalid base64", {"question": q, "image": "iVBORw0K!!!!"}, "image", "character '!' (byte 0x21) at 8"),
        ("base64 cut short", {"question": q, "image": image[:-3]}, "image", "not a multiple of 4"),
        ("base64 after its padding", {"question": q, "image": b64(b"ab") + "QQ=="}, "image", "padding '=' at"),
        ("base64 wrapped in lines", {"question": q, "image": image[:76] + "\n" + image[76:]}, "image", "not base64"),
        ("a data URL of no base64", {"question": q, "image": "data:image/png," + image}, "image", "data URL"),
        ("not an image", {"question": q, "image": b64(b"plain text, no picture")}, "image", "not a PNG or BMP image"),
        ("a truncated PNG", {"question": q, "image": b64(png[:len(png) // 2])}, "image", "truncated"),
        ("a PNG of 100000 x 100000 pixels", {"question": q, "image": b64(png_header_only(100000, 100000))}, "image",
         "100000 x 100000 pixels: refused"),
        ("a JPEG", {"question": q, "image": b64(b"\xff\xd8\xff\xe0" + bytes(64))}, "image", "a JPEG image: not"),
        ("a BMP short of its rows", {"question": q, "image": b64(bmp_missing_rows())}, "image", "truncated BMP"),
        ("top_k negative", {"question": q, "image": image, "top_k": -1}, "top_k", "whole number in 0..13"),
        ("top_k a fraction", {"question": q, "image": image, "top_k": 2.5}, "top_k", "whole number"),
        ("top_k a string", {"question": q, "image": image, "top_k": "5"}, "top_k", "whole number"),
        ("top_k past the answers", {"question": q, "image": image, "top_k": 14}, "top_k", "whole number"),
        ("glimpses 0", {"question": q, "image": image, "glimpses": 0}, "glimpses", "whole number in 1..2"),
        ("glimpses past the model's", {"question": q, "image": image, "glimpses": 3}, "glimpses", "in 1..2"),
        ("attention not a boolean", {"question": q, "image": image, "attention": "yes"}, "attention",
         "true or false"),
    ]


def test_every_refusal_is_a_400_naming_the_field(pixel_server, pairs):
    port = pixel_server.port
    for name, body, field, words in refusals(port, pairs[0]["b64"]):
        status, _, got = post(port, "/v1/answer", body)
        assert status == 400, (name, got)
        assert got["field"] == field and words in got["error"], (name, got)
        if field:
            assert got["error"].startswith(field), (name, got)
        healthy(port)


def test_routes_methods_and_lengths(pixel_server):
    port = pixel_server.port
    status, _, data = call(port, "GET", "/v2/answer")
    assert status == 404 and "no route /v2/answer" in json.loads(data)["error"]
    status, headers, data = call(port, "GET", "/v1/answer")
    assert status == 405 and headers["allow"] == "POST"
    status, headers, data = call(port, "POST", "/health", b"{}")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, _, got = post(port, "/v1/ground", {"image_id": "1", "sentence": "[/EN#1/people A man] ."})
    assert status == 400 and "this model answers questions" in got["error"]
    # a body without Content-Length (chunked): 411
    status, _, body = split_response(raw(port, b"POST /v1/answer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                                               b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
    assert status == 411 and "Content-Length" in json.loads(body)["error"]
    healthy(port)


def test_random_and_mutated_requests_all_get_an_answer(pixel_server, pairs):
    """1,500 requests, seeded: valid ones with bytes flipped, cut or inserted (JSON tokens among
    them), random objects of the request's fields with values of every JSON type, and random
    bytes, on every route and method: each gets a status of its own (never a 5xx, never a dropped
    connection), a refusal of /v1/answer is JSON naming what is wrong, and /health holds."""
    import random
    rng = random.Random(14)
    port = pixel_server.port
    image = pairs[0]["b64"]
    good = [{"question": pairs[0]["question"], "image": image},
            {"questions": [p["question"] for p in pairs[:3]], "image": image, "top_k": 3, "attention": True,
             "glimpses": 1}]
    values = [None, True, 0, -1, 2 ** 63, 1e308, "", "x" * 3000, [], {}, [1, 2], {"a": 1}, "\u00e9", 3.5,
              image[:100], ["q"] * 300]
    tokens = [b"{", b"}", b"[", b"]", b'"', b"\\u0000", b"1e999", b"-0", b"null", b"\xff\xfe", b",", b":", b"9" * 40]

    def mutated():
        b = bytearray(json.dumps(rng.choice(good)).encode())
        for _ in range(rng.randint(1, 8)):
            op, i = rng.random(), rng.randrange(len(b) + 1)
            if op < 0.4 and i < len(b):
                b[i] = rng.randrange(256)
            elif op < 0.6:
                del b[i:i + rng.randint(1, 50)]
            elif op < 0.8:
                b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
            else:
                b[i:i] = rng.choice(tokens)
        return bytes(b)

    def fields():
        keys = ["question", "questions", "image", "image_id", "top_k", "glimpses", "attention", "sentence", "other"]
        return json.dumps({k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 5))}).encode()

    routes = ["/v1/answer"] * 6 + ["/v1/ground", "/", "/v1/model", "/metrics", "/nope", "/v1/answer/"]
    methods = ["POST"] * 12 + ["GET", "PUT", "DELETE", "HEAD"]
    seen = {}
    for n in range(1500):
        kind = rng.random()
        body = (mutated() if kind < 0.45 else fields() if kind < 0.8 else
                bytes(rng.randrange(256) for _ in range(rng.randint(0, 500))) if kind < 0.9 else
                json.dumps(rng.choice(good)).encode())
        method, route = rng.choice(methods), rng.choice(routes)
        status, headers, data = call(port, method, route, body, {"Content-Type": "application/json"})
        seen[status] = seen.get(status, 0) + 1
        assert status in (200, 400, 404, 405), (n, method, route, body[:200], status, data[:300])
        if route == "/v1/answer" and method == "POST":
            got = json.loads(data)
            assert ("answer" in got or "answers" in got) if status == 200 else got["error"], (n, body[:200], got)
    assert seen.get(200, 0) > 50 and seen.get(400, 0) > 300, seen  # both answers and refusals were reached
    healthy(port)
    assert pixel_server.proc.poll() is None


def test_a_body_over_the_limit_is_refused_unread(pixel_server):
    """The header announces 17 MB (the limit is 16): the 413 comes before a byte of the body is sent,
    and the connection closes (nothing of the body is read)."""
    port = pixel_server.port
    status, headers, body = split_response(raw(port, b"POST /v1/answer HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                                     b"application/json\r\nContent-Length: %d\r\n\r\n" % (17 << 20)))
    assert status == 413 and "more than the 16777216 this server reads" in json.loads(body)["error"]
    status, _, body = split_response(raw(port, b"POST /v1/answer HTTP/1.1\r\nHost: x\r\nContent-Length: "
                                               b"99999999999999999999999\r\n\r\n"))
    assert status == 413
    healthy(port)


def test_64_concurrent_clients_get_ban_asks_answers(pixel_server, pairs):
    """64 clients at once, 4 requests each on their own keep-alive connection, some with several
    questions: every answer is ban ask's."""
    port = pixel_server.port

    def plan(k):
        for i in range(4):
            p = pairs[(k + 5 * i) % len(pairs)]
            if i < 3:
                yield "/v1/answer", {"question": p["question"], "image": p["b64"]}, [p]
            else:  # both questions about its image, in one request
                two = [x for x in pairs if x["image"] == p["image"]]
                yield "/v1/answer", {"questions": [x["question"] for x in two], "image": p["b64"]}, two

    results = run_clients(port, 64, plan)
    assert len(results) == 256
    for status, got, expected in results:
        assert status == 200, got
        for g, p in zip(got.get("answers", [got]), expected):
            check_answer(g, p)
    healthy(port)


def test_the_connection_limit(pixel_server):
    """More connections than the limit: those past it are closed at once; the server goes on."""
    port, held = pixel_server.port, []
    try:
        for _ in range(CONNECTIONS + 16):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        closed = 0
        for s in held[-16:]:  # the last ones are past the limit (one more is the stalled client)
            try:
                closed += s.recv(1) == b""
            except ConnectionResetError:
                closed += 1
        assert closed == 16
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 30
    while True:  # the server sees the closed connections go
        try:
            healthy(port)
            break
        except (ConnectionError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# ---- a full queue, and a stalled client -----------------------------------------------------------

def test_a_full_queue_is_a_503_with_retry_after(tmp_path, pairs):
    """One worker, batches of 1, a queue of 1: 48 requests written at once on 48 connections. The
    worker takes one, one may wait, the others are refused; every request is answered one way or
    the other, and correctly."""
    server = Server(tmp_path, MODEL, "--workers", 1, "--max-batch", 1, "--max-queue", 1)
    try:
        p = pairs[0]
        body = json.dumps({"questions": [p["question"]], "image": p["b64"]}).encode()
        request = b"POST /v1/answer HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body), body)
        socks = [socket.create_connection(("127.0.0.1", server.port), timeout=60) for _ in range(48)]
        for s in socks:
            s.sendall(request)
        codes = []
        for s in socks:
            status, headers, data = split_response(read_until_closed(s))
            codes.append(status)
            got = json.loads(data)
            if status == 503:
                assert headers["retry-after"] == "1" and "--max-queue 1" in got["error"], got
            else:
                assert status == 200, got
                check_answer(got["answers"][0], p)
        assert 503 in codes and 200 in codes, codes
        healthy(server.port)
    finally:
        assert server.stop() == 0, server.stderr()


def test_a_stalled_client_is_timed_out(pixel_server, pairs):
    """The client that stalled mid-body when the module started held no worker (every test above
    was answered by the one worker meanwhile): the server closes it after its timeout."""
    s = pixel_server.stalled
    deadline = time.monotonic() + TIMEOUT_S * 4
    got = b""
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        got += chunk
    assert time.monotonic() < deadline, "the stalled connection is still open"
    assert not got.startswith(b"HTTP/1.1 200"), got
    p = pairs[1]
    status, _, answer = post(pixel_server.port, "/v1/answer", {"question": p["question"], "image": p["b64"]})
    assert status == 200
    check_answer(answer, p)


# ---- SIGTERM under load ---------------------------------------------------------------------------

NOT_ACCEPTED = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)


def test_sigterm_under_load_answers_everything_it_read(tmp_path, pairs):
    """32 clients in a loop; SIGTERM once 64 answers are in. Every request is answered in full (and
    correctly), or was never accepted (refused or reset before a byte of reply, only after the
    signal); the server exits 0 and has answered exactly what the clients received."""
    server = Server(tmp_path, MODEL, "--workers", 2, "--max-batch", 8)
    answered, other, lock, signalled = [], [], threading.Lock(), threading.Event()
    enough = threading.Event()

    def client(k):
        conn, i = None, 0
        while True:
            p = pairs[(k + i) % len(pairs)]
            i += 1
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
                conn.request("POST", "/v1/answer", json.dumps({"question": p["question"], "image": p["b64"]}),
                             {"Content-Type": "application/json"})
                r = conn.getresponse()
                data = r.read()  # IncompleteRead if cut: a failure, kept below
                got = json.loads(data)
                with lock:
                    answered.append((r.status, got, p))
                    if len(answered) >= 64:
                        enough.set()
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except NOT_ACCEPTED as e:
                with lock:
                    other.append(("not accepted", signalled.is_set(), repr(e)))
                if conn is not None:
                    conn.close()
                if isinstance(e, ConnectionRefusedError):
                    return
                conn = None
            except Exception as e:
                with lock:
                    other.append(("failed", signalled.is_set(), repr(e)))
                return

    threads = [threading.Thread(target=client, args=(k,)) for k in range(32)]
    for t in threads:
        t.start()
    assert enough.wait(120), server.stderr()
    signalled.set()
    server.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(120)
    rc = server.stop(sig=None)  # no second signal: it would stop the server at once
    log = server.stderr()
    assert rc == 0, log
    assert [o for o in other if o[0] == "failed"] == [], other
    assert all(after for _, after, _ in other), other  # refusals only once the signal came
    for status, got, p in answered:
        assert status == 200, got
        check_answer(got, p)
    m = re.search(r"stopped: (\d+) requests read, (\d+) answered \((.*)\)", log)
    assert m, log
    assert int(m.group(1)) == int(m.group(2)) == len(answered), (log, len(answered))
    assert m.group(3) == "200: %d" % len(answered)
    assert "SIGTERM: accepting no more connections" in log


# ---- a model of box features: the golden VQA model and a store --------------------------------------

@pytest.fixture(scope="module")
def vqa_case(exported, tmp_path_factory):
    """The golden model, the six golden images in a store, 36 questions (each image with each of the
    fixture's questions) and what ban vqa answers to them (top 5, attention)."""
    from vqa_files import G2_JSON, GOLDEN_IDS, golden_store, questions_json, write_json
    tmp = tmp_path_factory.mktemp("serve_vqa")
    store = golden_store(tmp)
    qs = [(image * 100 + k, image, text) for image in GOLDEN_IDS for k, text in enumerate(G2_JSON["questions"])]
    qfile = write_json(tmp / "questions.json", questions_json(qs))
    run_ban("vqa", exported["g2"], "--features", store, "--questions", qfile, "--output", tmp / "results.json",
            "--top-k", 5, "--attention", tmp / "att")
    results = {r["question_id"]: r for r in json.load(open(str(tmp / "results.json")))}
    cases = [{"image_id": image, "question": text, "result": results[qid],
              "attention": np.load(str(tmp / "att" / ("%d.npy" % qid)))} for qid, image, text in qs]
    return {"store": store, "cases": cases, "tmp": tmp}


def test_store_model_answers_equal_ban_vqa(exported, vqa_case):
    """64 concurrent clients over the 36 questions (ids as numbers and as strings): answers, top 5
    and attention maps are ban vqa's."""
    cases = vqa_case["cases"]
    server = Server(vqa_case["tmp"], exported["g2"], "--features", vqa_case["store"], "--workers", 2,
                    "--max-batch", 16)
    try:
        status, _, info = call(server.port, "GET", "/v1/model")
        info = json.loads(info)
        assert info["input"] == "features" and info["conventions"]["probability"] == "sigmoid"
        assert sorted(info["store"]["ids"]) == sorted(str(c["image_id"]) for c in cases[::6])
        def plan(k):
            for i in range(3):
                c = cases[(k + 13 * i) % len(cases)]
                image_id = c["image_id"] if i % 2 else str(c["image_id"])  # a number, or a string
                yield "/v1/answer", {"question": c["question"], "image_id": image_id, "attention": True}, c

        results = run_clients(server.port, 64, plan)
        assert len(results) == 192
        for status, got, c in results:
            assert status == 200, got
            assert got["answer"] == c["result"]["answer"]
            assert [t["answer"] for t in got["top_k"]] == [t["answer"] for t in c["result"]["top_k"]]
            assert max(abs(t["probability"] - u["probability"]) for t, u in zip(got["top_k"], c["result"]["top_k"])) \
                <= 1e-5
            att = np.array(got["attention"], np.float32)
            assert att.shape == c["attention"].shape == (2, len(got["image"]["boxes"]), 14)
            assert np.abs(att - c["attention"]).max() <= 1e-6
            assert got["positions"] == 14 and len(got["words"]) < 14
            assert str(got["image"]["id"]) == str(c["image_id"])
        for name, body, field, words in [
                ("an image not in the store", {"question": "what?", "image_id": 31337}, "image_id",
                 "'31337' is not in the store (6 images)"),
                ("leading zeros", {"question": "what?", "image_id": "09"}, "image_id", "not in the store"),
                ("not an id", {"question": "what?", "image_id": "a/b"}, "image_id", "not an image id"),
                ("an id of a bad type", {"question": "what?", "image_id": [9]}, "image_id", "must be a string"),
                ("a negative number", {"question": "what?", "image_id": -9}, "image_id", "whole number in 0..2^53"),
                ("no image id", {"question": "what?"}, "image_id", "missing"),
                ("pixels to a model of box features", {"question": "what?", "image": "AAAA"}, "image",
                 "this model reads box features")]:
            status, _, got = post(server.port, "/v1/answer", body)
            assert status == 400 and got["field"] == field and words in got["error"], (name, got)
            healthy(server.port)
    finally:
        assert server.stop() == 0, server.stderr()


# ---- grounding: the golden Flickr30k model ------------------------------------------------------------

def test_ground_equals_ban_ground_json(exported, tmp_path):
    from test_ground import COUNTS, FL, IMAGES, S1000, S3000, H, W, grid_boxes
    from vqa_files import tsv_fields, write_tsv
    recs = [tsv_fields(iid, W, H, grid_boxes(COUNTS[ex]), FL["v"][ex, :COUNTS[ex]]) for iid, ex in IMAGES.items()]
    store = tmp_path / "flickr.store"
    run_ban("features", "import", "--tsv", write_tsv(tmp_path / "f.tsv", recs), "--output", store)
    cases = [(3000, S3000.split("\n")[0], 5), (1000, S1000.strip(), 0), (2000, "[/EN#8/animals number] bus .", 3),
             (3000, "[/EN#1/people Two men] and [/EN#2/people Two] dogs [/EN#0/notvisual there] .", 2)]
    expected = []
    for image, sentence, k in cases:
        out = run_ban("ground", exported["flickr"], "--features", store, "--image", image, "--sentence", sentence,
                      "--json", "--top-k", k).stdout
        expected.append(json.loads(out))
    server = Server(tmp_path, exported["flickr"], "--features", store, "--max-batch", 4)
    try:
        def plan(k):
            for i in range(4):
                image, sentence, top = cases[(k + i) % len(cases)]
                yield "/v1/ground", {"image_id": image, "sentence": sentence, "top_k": top}, (k + i) % len(cases)

        results = run_clients(server.port, 16, plan)
        assert len(results) == 64
        for status, got, i in results:
            assert status == 200, got
            assert got.pop("ms") > 0
            scores = [[b.pop("score") for b in p["boxes"]] for p in got["phrases"]]
            want = json.loads(json.dumps(expected[i]))
            want_scores = [[b.pop("score") for b in p["boxes"]] for p in want["phrases"]]
            assert got == want  # every key, rank, index and box
            assert all(abs(a - b) <= 1e-5 for x, y in zip(scores, want_scores) for a, b in zip(x, y))
        for name, body, field, words in [
                ("no sentence", {"image_id": 3000}, "sentence", "missing"),
                ("bad markup", {"image_id": 3000, "sentence": "[/EN#1/people a man"}, "sentence", "unclosed"),
                ("no entity", {"image_id": 3000, "sentence": "a man ."}, "sentence", "no entity to ground"),
                ("too many entities", {"image_id": 3000, "sentence": " ".join(
                    "[/EN#%d/other bus]" % (i + 1) for i in range(17))}, "sentence", "17 entities, more than 16"),
                ("unknown image", {"image_id": 4000, "sentence": "[/EN#1/people a man] ."}, "image_id",
                 "not in the store"),
                ("a question", {"image_id": 3000, "question": "what?"}, None, '"question" is not a field')]:
            status, _, got = post(server.port, "/v1/ground", body)
            assert status == 400 and got["field"] == field and words in got["error"], (name, got)
        status, _, got = post(server.port, "/v1/answer", {"question": "what?", "image_id": 3000})
        assert status == 400 and "this model grounds phrases" in got["error"]
        healthy(server.port)
    finally:
        assert server.stop() == 0, server.stderr()


def test_usage_errors(exported, tmp_path):
    proc = run_ban("serve", MODEL, "--features", tmp_path / "x.store", "--port", 0, check=False)
    assert proc.returncode == 1 and "--features is for models of box features" in proc.stderr
    proc = run_ban("serve", exported["g2"], "--port", 0, check=False)
    assert proc.returncode == 1 and "--features STORE is required" in proc.stderr
    proc = run_ban("serve", MODEL, "--max-batch", 64, "--max-queue", 8, check=False)
    assert proc.returncode == 2 and "--max-queue 8 is less than --max-batch 64" in proc.stderr
    proc = run_ban("serve", MODEL, "--workers", 0, check=False)
    assert proc.returncode == 2 and "--workers must be a whole number in 1..64" in proc.stderr
    proc = run_ban("serve", MODEL, "--host", "no.such.host.invalid", "--port", 0, check=False)
    assert proc.returncode == 1 and "--host no.such.host.invalid" in proc.stderr
