"""make install / make uninstall into temporary prefixes: the files, libban.so's soname and
exports, the installed Python package reproducing the golden vectors with no source tree in
sight, and examples/simple.c built through the installed ban.pc."""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import BUILD, ROOT, fixture_path
from test_python_asan import LIBRARY, needs_asan

if needs_asan(LIBRARY):
    pytest.skip("%s is built with AddressSanitizer (see tests/test_python_asan.py)" % LIBRARY,
                allow_module_level=True)

VERSION = re.search(r'#define BAN_VERSION "(.*)"', open(os.path.join(ROOT, "ban.h")).read()).group(1)
SITE = os.path.join("lib", "python3", "dist-packages")
MODULES = sorted(f for f in os.listdir(os.path.join(ROOT, "python", "ban")) if f.endswith(".py"))
INSTALLED = {"include/ban.h": 0o644, "lib/libban.so.%s" % VERSION: 0o644, "lib/pkgconfig/ban.pc": 0o644,
             "bin/ban": 0o755, **{"%s/ban/%s" % (SITE, m): 0o644 for m in MODULES}}
LINKS = {"lib/libban.so.0": "libban.so.%s" % VERSION, "lib/libban.so": "libban.so.0"}
# somebody else's files in the prefix, which uninstall must leave
OTHERS = ["lib/libother.so.1", "bin/other", "include/other.h", "%s/other/__init__.py" % SITE,
          "lib/pkgconfig/other.pc"]


def clean_env(**extra):
    """No make jobserver from an enclosing make, no BAN_LIBRARY, nothing of the source tree."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "BAN_LIBRARY", "PYTHONPATH", "LD_LIBRARY_PATH")}
    env.update(extra)
    return env


def make(*args):
    proc = subprocess.run(["make", "-s", "-C", ROOT, "BUILD=%s" % BUILD] + list(args), capture_output=True,
                          text=True, env=clean_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def files_under(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = os.readlink(p) if os.path.islink(p) else os.stat(p).st_mode & 0o777
    return out


def with_others(prefix):
    for f in OTHERS:
        os.makedirs(os.path.dirname(os.path.join(prefix, f)), exist_ok=True)
        open(os.path.join(prefix, f), "w").write("not ban's\n")


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    p = str(tmp_path_factory.mktemp("install") / "usr-local")
    with_others(p)
    make("install", "PREFIX=%s" % p)
    return p


def test_install_writes_exactly_its_files(prefix):
    got = files_under(prefix)
    assert {k: v for k, v in got.items() if k not in OTHERS} == {**INSTALLED, **LINKS}
    lib = os.path.join(prefix, "lib", "libban.so.0")
    dyn = subprocess.run(["readelf", "-d", lib], capture_output=True, text=True).stdout
    assert re.search(r"\(SONAME\)\s+Library soname: \[libban\.so\.0\]", dyn)
    assert "[libopenblas.so.0]" in dyn
    exported = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True).stdout.split("\n")
    names = [line.split()[-1] for line in exported if line.strip()]
    assert "ban_forward" in names and "ban_tokenize" in names and "ban_encode" in names
    assert [n for n in names if not n.startswith("ban_")] == []
    header = open(os.path.join(ROOT, "ban.h")).read()
    assert sorted(names) == sorted(set(re.findall(r"^BANDEF [^(]*?\b(ban_\w+)\(", header, re.M)))


def local_includes(name, seen=None):
    """The examples/ headers a file includes with quotes, transitively (ban.h, "../ban.h", aside)."""
    seen = set() if seen is None else seen
    for header in re.findall(r'^#include "([^"/]+)"', open(os.path.join(ROOT, "examples", name)).read(), re.M):
        if header not in seen and header != "ban.h":  # the installed one
            seen.add(header)
            local_includes(header, seen)
    return sorted(seen)


def pkg_config(prefix, *args):
    proc = subprocess.run(["pkg-config"] + list(args) + ["ban"], capture_output=True, text=True,
                          env=clean_env(PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig")))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_pkg_config_builds_and_runs_simple_c(prefix, exported, tmp_path):
    """examples/simple.c (its `#include "ban.h"` found through the installed ban.pc, npy.h and its
    own includes beside it) built as `cc $(pkg-config --cflags ban) app.c $(pkg-config --libs ban)`, twice: as it is
    (its own copy of the implementation) and without its BAN_IMPLEMENTATION (calling libban.so)."""
    import numpy as np
    assert pkg_config(prefix, "--modversion") == [VERSION]
    cflags, libs = pkg_config(prefix, "--cflags"), pkg_config(prefix, "--libs")
    assert cflags == ["-I%s/include" % prefix]
    assert libs == ["-L%s/lib" % prefix, "-lban", "-lopenblas", "-lm", "-lpthread"]
    source = open(os.path.join(ROOT, "examples", "simple.c")).read()
    assert '#include "ban.h"' in source and "#define BAN_IMPLEMENTATION " in source
    for header in local_includes("simple.c"):  # npy.h and what it includes, beside the program
        shutil.copy(os.path.join(ROOT, "examples", header), tmp_path / header)
    g2 = np.load(fixture_path("ban_ref_g2.npz"))
    cfg = json.load(open(fixture_path("ban_ref_g2.json")))
    for variant, text in [("own", source), ("shared", source.replace("#define BAN_IMPLEMENTATION ", "// "))]:
        app = tmp_path / ("app_%s.c" % variant)
        app.write_text(text)
        exe = str(tmp_path / variant)
        cc = subprocess.run(["cc", "-std=c11", "-O1"] + cflags + [str(app), "-o", exe] + libs, capture_output=True,
                            text=True, env=clean_env())
        assert cc.returncode == 0, cc.stderr
        undefined = subprocess.run(["nm", "-u", exe], capture_output=True, text=True).stdout
        assert ("ban_forward" in undefined) == (variant == "shared")
        for i in (0, 2):
            v, b = str(tmp_path / ("v%d.npy" % i)), str(tmp_path / ("b%d.npy" % i))
            np.save(v, g2["v"][i:i + 1])
            np.save(b, g2["b"][i:i + 1])
            run = subprocess.run([exe, exported["g2"], v, b, cfg["questions"][i]], capture_output=True, text=True,
                                 env=clean_env(LD_LIBRARY_PATH=os.path.join(prefix, "lib")))
            assert run.returncode == 0 and run.stdout == cfg["predicted_answers"][i] + "\n", run.stderr


GOLDEN = r"""
import json, os, sys
import numpy as np
import ban
root, fixtures, g2, flickr = sys.argv[1:5]
z = np.load(os.path.join(fixtures, "ban_ref_g2.npz"))
r = ban.Model(g2).vqa(z["v"], z["b"], tokens=z["q"], attention=True)
fl = np.load(os.path.join(fixtures, "ban_ref_flickr.npz"))
g = ban.Model(flickr).ground(fl["v"], fl["b"], tokens=fl["q"], entities=fl["e"])
maps = [line.split()[-1] for line in open("/proc/self/maps") if "libban" in line]
print(json.dumps({"file": ban.__file__, "library": ban.library(), "mapped": sorted(set(maps)),
                  "tree_on_path": [p for p in sys.path if os.path.abspath(p or ".").startswith(root)],
                  "logits": float(np.abs(r.logits - z["logits"]).max()),
                  "attention": float(np.abs(r.attention - z["att"]).max()), "answers": r.answers,
                  "grounding": float(np.abs(g.logits - fl["att_logits"]).max())}))
"""


def test_installed_package_reproduces_the_golden_vectors(prefix, exported, tmp_path):
    """From the prefix alone: run from elsewhere, with only its dist-packages on the path, no
    BAN_LIBRARY and no LD_LIBRARY_PATH."""
    site = os.path.join(prefix, SITE)
    proc = subprocess.run([sys.executable, "-c", GOLDEN, ROOT, os.path.dirname(fixture_path("x")), exported["g2"],
                           exported["flickr"]], capture_output=True, text=True, cwd=str(tmp_path),
                          env=clean_env(PYTHONPATH=site))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["file"] == os.path.join(site, "ban", "__init__.py")
    assert out["library"] == os.path.join(prefix, "lib", "libban.so.0")
    assert out["mapped"] == [os.path.join(prefix, "lib", "libban.so.%s" % VERSION)]
    assert out["tree_on_path"] == []
    assert out["logits"] <= 1e-4 and out["attention"] <= 1e-5 and out["grounding"] <= 1e-4
    assert out["answers"] == json.load(open(fixture_path("ban_ref_g2.json")))["predicted_answers"]


def test_installed_cli(prefix, exported):
    proc = subprocess.run([os.path.join(prefix, "bin", "ban"), "info", exported["g2"]], capture_output=True,
                          text=True, env=clean_env())
    assert proc.returncode == 0 and "task:               vqa" in proc.stdout, proc.stderr


def test_uninstall_removes_exactly_what_install_wrote(tmp_path):
    p = str(tmp_path / "prefix")
    with_others(p)
    before = files_under(p)
    make("install", "PREFIX=%s" % p)
    # an import writes bytecode beside the package: uninstall takes it too
    env = clean_env(PYTHONPATH=os.path.join(p, SITE))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run([sys.executable, "-c", "import ban, ban.store"], capture_output=True, text=True,
                          cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(os.path.join(p, SITE, "ban", "__pycache__"))
    make("uninstall", "PREFIX=%s" % p)
    assert files_under(p) == before
    assert not os.path.exists(os.path.join(p, SITE, "ban"))


def test_destdir_stages_a_package(tmp_path):
    stage = str(tmp_path / "stage")
    make("install", "DESTDIR=%s" % stage, "PREFIX=/usr")
    got = files_under(stage)
    assert got == {"usr/" + k: v for k, v in {**INSTALLED, **LINKS}.items()}
    pc = open(os.path.join(stage, "usr", "lib", "pkgconfig", "ban.pc")).read()
    assert "prefix=/usr\n" in pc and "Version: %s\n" % VERSION in pc
    make("uninstall", "DESTDIR=%s" % stage, "PREFIX=/usr")
    assert files_under(stage) == {}
