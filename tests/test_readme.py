"""The README runs as written: its Quick start block, line by line from the top of the tree,
and its C program is examples/simple.c exactly."""
import os
import re
import subprocess

import pytest

from conftest import BUILD, ROOT

README = open(os.path.join(ROOT, "README.md")).read()


def block(title, lang):
    """The first ```lang block after the heading `## title`."""
    m = re.search(r"^## %s\n.*?^```%s\n(.*?)^```$" % (re.escape(title), lang), README, re.S | re.M)
    assert m, "README: no ```%s block under '## %s'" % (lang, title)
    return m.group(1)


def test_the_c_program_is_simple_c():
    assert block("Use it from C", "c") == open(os.path.join(ROOT, "examples", "simple.c")).read()


def test_quick_start_runs_as_written():
    if os.path.realpath(BUILD) != os.path.realpath(os.path.join(ROOT, "build")):
        pytest.skip("the Quick start builds and uses build/ (this run tests %s)" % BUILD)
    script = block("Quick start", "sh")
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, MAKEFLAGS=""))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "24 of 24 answers right" in out                                   # the demo
    assert "answer: triangle" in out                                          # ask: shape2 is a triangle
    assert "task:               vqa" in out                                  # ban info of the export
    assert os.path.getsize(os.path.join(ROOT, "build", "quick", "attention.png")) > 1000
    import numpy as np
    assert np.load(os.path.join(ROOT, "build", "quick", "logits.npy")).shape == (2, 30)
    assert len(out.rstrip("\n").splitlines()[-3:]) == 3                       # run's two answers, simple's one
