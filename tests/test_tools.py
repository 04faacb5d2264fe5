"""Every tool of the README's Tools table is there, executable, with --help."""
import os
import re
import subprocess

import pytest

from conftest import ROOT

README = open(os.path.join(ROOT, "README.md")).read()
TABLE = README[README.index("## Tools"):README.index("## Layout")]
LISTED = re.findall(r"^\| `((?:tools|examples)/[\w.]+\.py)` \|", TABLE, re.M)


def test_the_table_lists_every_tool():
    scripts = sorted("tools/" + f for f in os.listdir(os.path.join(ROOT, "tools"))
                     if f.endswith(".py") and "__main__" in open(os.path.join(ROOT, "tools", f)).read())
    assert sorted(t for t in LISTED if t.startswith("tools/")) == scripts


@pytest.mark.parametrize("tool", LISTED)
def test_executable_with_help(tool):
    path = os.path.join(ROOT, tool)
    assert os.access(path, os.X_OK), tool
    assert open(path).readline().startswith("#!/usr/bin/python3"), tool
    proc = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stderr
