"""ban.h compiles as C99 and as C++ (an stb-style header is included from both), warning-free,
and with BAN_STATIC every function is static."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

SOURCE = '#define BAN_IMPLEMENTATION\n%s#include "ban.h"\nint main(void) { return ban_argmax((const float[]){0}, 1); }\n'


def compile_ok(compiler, flags, src, tmp_path, suffix):
    path = tmp_path / ("t" + suffix)
    path.write_text(src)
    proc = subprocess.run([compiler] + flags + ["-I", ROOT, "-c", str(path), "-o", str(tmp_path / "t.o")],
                          capture_output=True, text=True)
    return proc


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_c99_pedantic(tmp_path, compiler):
    if not shutil.which(compiler):
        pytest.skip("%s not installed" % compiler)
    proc = compile_ok(compiler, ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"], SOURCE % "", tmp_path, ".c")
    assert proc.returncode == 0, proc.stderr


def test_cplusplus(tmp_path):
    cxx = shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        pytest.skip("no C++ compiler")
    src = ('#define BAN_IMPLEMENTATION\n#include "ban.h"\n'
           'int main() { float x[2] = {0, 1}; return ban_argmax(x, 2) - 1; }\n')
    proc = compile_ok(cxx, ["-std=c++11", "-Wall", "-Wextra", "-Werror"], src, tmp_path, ".cpp")
    assert proc.returncode == 0, proc.stderr


def test_ban_static_leaves_no_external_symbols(tmp_path):
    proc = compile_ok("cc", ["-std=c99", "-O1", "-Wall", "-Wno-unused-function"],
                      SOURCE % "#define BAN_STATIC\n", tmp_path, ".c")
    assert proc.returncode == 0, proc.stderr
    nm = subprocess.run(["nm", "--defined-only", "-g", str(tmp_path / "t.o")], capture_output=True, text=True).stdout
    exported = sorted(line.split()[-1] for line in nm.splitlines() if line.strip())
    assert exported == ["main"], exported
