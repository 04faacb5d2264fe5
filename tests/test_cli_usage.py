"""build/ban as a new user meets it: help for every command, --version, the model given either
way, usage errors that name the option at fault, make help."""
import json
import os
import re
import subprocess

import numpy as np
import pytest

from conftest import ROOT, fixture_path, run_ban
from test_ground import data  # noqa: F401 (the grounding fixture: a store, Sentences, Annotations)
from vqa_files import GOLDEN_IDS, G2_JSON, golden_store, questions_json, write_json

COMMANDS = ["info", "quantize", "tokenize", "run", "encode", "ask", "easyvqa-eval", "demo", "vqa", "ground",
            "features import", "features info", "serve", "bench"]
EASYVQA = os.path.join(ROOT, "examples", "models", "easyvqa.ban")
G2 = np.load(fixture_path("ban_ref_g2.npz"))


def listed_commands():
    """The commands `ban help` lists, in its order."""
    out = run_ban("help").stdout
    return [m.group(1) for m in re.finditer(r"^  (\S+(?: (?:import|info))?)\s{2,}", out.split("commands:")[1], re.M)]


def test_help_lists_every_command():
    assert listed_commands() == COMMANDS
    assert run_ban("--help").stdout == run_ban("help").stdout == run_ban("-h").stdout
    proc = run_ban(check=False)
    assert proc.returncode == 2 and "commands:" in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("name", COMMANDS)
def test_help_of_each_command(name):
    """ban CMD --help and ban help CMD print the same: usage, every option with its help, an example."""
    words = name.split()
    text = run_ban(*words, "--help").stdout
    assert text == run_ban("help", *words).stdout == run_ban(*words, "-h").stdout
    assert text.startswith("usage: ban %s " % name)
    assert "\noptions:\n" in text and "\nexample:\n  ban %s" % name in text
    assert re.search(r"^  --help\s+this help$", text, re.M)
    options = re.findall(r"^  (--[a-z-]+)", text, re.M)
    assert len(options) == len(set(options))
    # the options the help names are the ones the parser knows: each is accepted (or wants a value)
    for opt in options:
        if opt == "--help":
            continue
        proc = run_ban(*words, opt, check=False)
        assert "unknown option" not in proc.stderr, (name, opt, proc.stderr)
    # the model can be named either way where the command takes one
    takes_model = name in ("info", "quantize", "tokenize", "run", "encode", "ask", "easyvqa-eval", "demo", "vqa", "ground",
                           "serve")
    assert ("--model MODEL.ban" in text) == takes_model
    # --help wins over everything else on the line
    assert run_ban(*words, "--bogus", "--help").stdout == text


def test_help_of_a_group_and_unknown_names():
    both = run_ban("help", "features").stdout
    assert "usage: ban features import" in both and "usage: ban features info" in both
    assert run_ban("features", "--help").stdout == both
    proc = run_ban("help", "frobnicate", check=False)
    assert proc.returncode == 2 and "unknown command 'frobnicate'" in proc.stderr
    proc = run_ban("features", check=False)
    assert proc.returncode == 2 and "'ban features' needs a subcommand: import or info" in proc.stderr
    proc = run_ban("features", "export", check=False)
    assert proc.returncode == 2 and "unknown subcommand 'ban features export': import or info" in proc.stderr


def test_version_names_the_formats_and_kernels():
    out = run_ban("--version").stdout
    lines = out.split("\n")
    ban_h = open(os.path.join(ROOT, "ban.h")).read()
    version = re.search(r'#define BAN_VERSION "([^"]+)"', ban_h).group(1)
    file_version = re.search(r"#define BAN_FILE_VERSION (\d+)", ban_h).group(1)
    store_version = re.search(r"#define STORE_VERSION (\d+)", open(os.path.join(ROOT, "examples", "store.h")).read())
    assert lines[0] == "ban %s (ban.h %s)" % (version, version)
    assert ".ban format version %s" % file_version in out
    assert "feature stores:  version %s" % store_version.group(1) in out
    kernels = [l for l in lines if l.startswith("kernels:")][0]
    assert "plain C" in kernels
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if re.search(r"\bavx2\b", flags) and re.search(r"\bfma\b", flags):
        assert "AVX2+FMA" in kernels
    assert ("AVX-512" in kernels) == bool(re.search(r"\bavx512f\b", flags) and re.search(r"\bavx2\b", flags))
    capped = run_ban("--version", env={"BAN_SIMD": "none"}).stdout
    assert "plain C used for models in panels (BAN_SIMD=none)" in capped
    if "AVX2+FMA" in kernels:
        avx2 = run_ban("--version", env={"BAN_SIMD": "avx2"}).stdout
        assert "AVX2+FMA used for models in panels (BAN_SIMD=avx2)" in avx2


def test_unknown_simd_cap_is_a_warning():
    proc = run_ban("--version", env={"BAN_SIMD": "avx9"})
    assert "ban: warning: BAN_SIMD is not one of avx512, avx2, none: ignored" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "(BAN_SIMD=avx9)" in proc.stderr


# ---- the model as the first argument or as --model, for every command that takes one -------------

def save(tmp_path, name, arr):
    path = tmp_path / (name + ".npy")
    np.save(path, arr)
    return str(path)


@pytest.fixture(scope="module")
def vqa_store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("usage_vqa")
    store = golden_store(tmp)
    questions = write_json(tmp / "q.json", questions_json(
        [(GOLDEN_IDS[i] * 1000 + 7, GOLDEN_IDS[i], q) for i, q in enumerate(G2_JSON["questions"])]))
    return {"store": str(store), "questions": str(questions)}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The demo's drawings, and an easy-VQA split made of them."""
    tmp = tmp_path_factory.mktemp("usage_shapes")
    run_ban("demo", "--out", tmp / "images")
    os.makedirs(tmp / "split" / "images")
    for i in range(2):
        os.link(tmp / "images" / ("shape%d.png" % i), tmp / "split" / "images" / ("%d.png" % i))
    (tmp / "split" / "questions.json").write_text(json.dumps([["what shape is in the image?", "circle", 0],
                                                              ["what color is the shape?", "blue", 1]]))
    return tmp


def both_ways(tmp_path, name, model, *args, outputs=()):
    """Run `ban name model args` and `ban name --model model args`: the same stdout and outputs."""
    seen = []
    for way in ("positional", "option"):
        d = tmp_path / way
        d.mkdir(parents=True)
        argv = [str(a).replace("{out}", str(d)) for a in args]
        words = name.split()
        proc = run_ban(*words, model, *argv) if way == "positional" else run_ban(*words, *argv, "--model", model)
        seen.append((proc.stdout, [open(d / o, "rb").read() for o in outputs]))
    assert seen[0] == seen[1]
    assert seen[0][0] or outputs
    return seen[0]


def test_model_either_way_info_tokenize_demo(tmp_path, exported):
    both_ways(tmp_path / "info", "info", exported["g2"])
    out, _ = both_ways(tmp_path / "tok", "tokenize", exported["g2"], "--pad", 5, "what color is the shirt?")
    assert out == "0 1 2 3 4\n"
    out, _ = both_ways(tmp_path / "demo", "demo", EASYVQA)
    assert out.rstrip().endswith("24 of 24 answers right")
    default = run_ban("demo").stdout  # the default model is the same file, named relative to the checkout
    assert default.startswith("examples/models/easyvqa.ban: ") and default.split(":", 1)[1] == out.split(":", 1)[1]


def test_model_either_way_run_and_encode(tmp_path, exported):
    v, b, q = save(tmp_path, "v", G2["v"]), save(tmp_path, "b", G2["b"]), save(tmp_path, "q", G2["q"])
    _, (logits,) = both_ways(tmp_path / "run", "run", exported["g2"], "--features", v, "--spatials", b, "--tokens", q,
                             "--logits", "{out}/l.npy", outputs=["l.npy"])
    assert np.abs(np.load(tmp_path / "run" / "option" / "l.npy") - G2["logits"]).max() <= 1e-4
    px = save(tmp_path, "px", np.zeros((2, 64, 64, 3), np.uint8))
    both_ways(tmp_path / "enc", "encode", EASYVQA, "--pixels", px, "--features-out", "{out}/f.npy", outputs=["f.npy"])


def test_model_either_way_ask_and_easyvqa_eval(tmp_path, shapes):
    out, _ = both_ways(tmp_path / "ask", "ask", EASYVQA, "--image", shapes / "images" / "shape0.png", "--question",
                       "what shape is in the image?", "--top-k", 2)
    assert out.startswith("answer: circle\n")
    out, _ = both_ways(tmp_path / "eval", "easyvqa-eval", EASYVQA, "--data", shapes / "split", "--json")
    assert json.loads(out)["questions"] == 2


def test_model_either_way_vqa(tmp_path, exported, vqa_store):
    _, (results,) = both_ways(tmp_path, "vqa", exported["g2"], "--features", vqa_store["store"], "--questions",
                              vqa_store["questions"], "--output", "{out}/r.json", outputs=["r.json"])
    assert [r["answer"] for r in json.loads(results)] == G2_JSON["predicted_answers"]


def test_model_either_way_ground(tmp_path, exported, data):  # noqa: F811
    out, _ = both_ways(tmp_path / "one", "ground", exported["flickr"], "--features", data["store"], "--image", 3000,
                       "--sentences", data["root"] / "Sentences" / "3000.txt", "--line", 1, "--json")
    assert json.loads(out)["image_id"] == "3000"
    both_ways(tmp_path / "split", "ground", exported["flickr"], "--features", data["store"], "--split",
              data["split"], "--annotations-dir", data["root"], "--output", "{out}/P.json", outputs=["P.json"])


# ---- usage errors name what is wrong ----------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["info"], "a model is required: ban info MODEL.ban ..., or --model MODEL.ban"),
    (["info", "a.ban", "--model", "b.ban"], "the model is given twice: 'a.ban' and --model 'b.ban'"),
    (["info", "--model", "a.ban", "--model", "b.ban"], "--model is given twice ('a.ban' and 'b.ban')"),
    (["info", "a.ban", "b.ban"], "unexpected argument 'b.ban'"),
    (["run", "m.ban", "--features", "v.npy", "--tokens", "q.npy"], "--logits OUT.npy is required"),
    (["run", "m.ban", "--features", "v.npy", "--logits", "l.npy"], "--tokens or --questions is required"),
    (["run", "m.ban", "--tokens", "q.npy", "--logits", "l.npy"], "--features or --pixels is required"),
    (["run", "m.ban", "--features", "v.npy", "--pixels", "p.npy", "--tokens", "q.npy", "--logits", "l.npy"],
     "give --features or --pixels, not both"),
    (["run", "m.ban", "--features", "v.npy", "--tokens", "q.npy", "--questions", "q.txt", "--logits", "l.npy"],
     "give --tokens or --questions, not both"),
    (["run", "m.ban", "--features", "v.npy", "--questions", "q.txt", "--token-counts", "n.npy", "--logits", "l.npy"],
     "--token-counts goes with --tokens"),
    (["run", "m.ban", "--features", "v.npy", "--tokens", "q.npy", "--logits", "l.npy", "--batch", "0"],
     "--batch must be a whole number in 1..4096 (got '0')"),
    (["run", "m.ban", "--features", "v.npy", "--tokens", "q.npy", "--logits", "l.npy", "--batch", "2", "--batch", "3"],
     "--batch is given twice"),
    (["run", "m.ban", "--features"], "--features needs a value (v.npy)"),
    (["vqa", "m.ban", "--features", "s", "--output", "r.json"], "--questions FILE is required"),
    (["vqa", "m.ban", "--output", "r.json"], "--features STORE and --questions FILE are required"),
    (["ask", "m.ban", "--image", "x.png"], "--question TEXT is required"),
    (["ask", "m.ban", "--image", "x.png", "--question", "what?", "--attention-png", "att.jpg"],
     "--attention-png att.jpg: the picture is written as PNG, so its name must end in .png"),
    (["ground", "m.ban", "--features", "s"], "--image ID or --split SPLIT.txt is required"),
    (["ground", "m.ban", "--features", "s", "--image", "1", "--split", "t.txt"], "not both"),
    (["ground", "m.ban", "--features", "s", "--image", "1"], "--sentence TEXT, or --sentences FILE"),
    (["features", "import", "--output", "x.store"], "--tsv or --npz-dir is required"),
    (["features", "info"], "the store is required: ban features info STORE"),
    (["bench"], "--preset NAME is required"),
    (["encode", "m.ban", "--pixels", "p.npy"], "--features-out f.npy is required"),
])
def test_usage_errors_name_the_option(args, message):
    proc = run_ban(*args, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.rstrip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("ban: ") and message in lines[0], proc.stderr
    command = args[0] if args[0] != "features" else "features " + args[1] if len(args) > 1 else "features"
    assert lines[0].endswith("(see 'ban %s --help')" % command), proc.stderr


def test_pytorch_checkpoint_points_at_the_exporter():
    for name in ("ban_ref_g2.pth", "ban_ref_g2.legacy.pth"):
        proc = run_ban("info", fixture_path(name), check=False)
        assert proc.returncode == 1 and "not a ban.h model file" in proc.stderr
        assert "PyTorch checkpoint (.pth/.pkl): convert it with tools/ban_export.py" in proc.stderr
        assert proc.stderr.count("tools/ban_export.py") == 1, proc.stderr                  # said once


def test_make_help_lists_every_target():
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    proc = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT, "help"], capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[1] for line in proc.stdout.splitlines()]
    makefile = open(os.path.join(ROOT, "Makefile")).read()
    phony = re.search(r"^\.PHONY:(.*)$", makefile, re.M).group(1).split()
    assert sorted(listed) == sorted(phony)
