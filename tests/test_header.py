"""ban.h compiles as C99 and as C++ (an stb-style header is included from both), warning-free
under -Wall -Wextra -Werror with gcc, g++, clang and clang++ at -O0, -O2 and -O3 (users build it
those ways: GCC's optimisers see uninitialised paths the front end does not), and with
BAN_STATIC every function is static."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

SOURCE_C = '#define BAN_IMPLEMENTATION\n%s#include "ban.h"\nint main(void) { return ban_argmax((const float[]){0}, 1); }\n'
SOURCE_CXX = ('#define BAN_IMPLEMENTATION\n#include "ban.h"\n'
              'int main() { float x[2] = {0, 1}; return ban_argmax(x, 2) - 1; }\n')


def compile_ok(compiler, flags, src, tmp_path, suffix):
    path = tmp_path / ("t" + suffix)
    path.write_text(src)
    proc = subprocess.run([compiler] + flags + ["-I", ROOT, "-c", str(path), "-o", str(tmp_path / "t.o")],
                          capture_output=True, text=True)
    return proc


@pytest.mark.parametrize("level", ["-O0", "-O2", "-O3"])
@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_c99_pedantic(tmp_path, compiler, level):
    if not shutil.which(compiler):
        pytest.skip("%s not installed" % compiler)
    proc = compile_ok(compiler, ["-std=c99", level, "-Wall", "-Wextra", "-Wpedantic", "-Werror"], SOURCE_C % "",
                      tmp_path, ".c")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("level", ["-O0", "-O2", "-O3"])
@pytest.mark.parametrize("compiler", ["g++", "clang++"])
def test_cplusplus(tmp_path, compiler, level):
    if not shutil.which(compiler):
        pytest.skip("%s not installed" % compiler)
    proc = compile_ok(compiler, ["-std=c++11", level, "-Wall", "-Wextra", "-Werror"], SOURCE_CXX, tmp_path, ".cpp")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("options", ["#define BAN_NO_SIMD\n", "#define BAN_NO_THREADS\n#define BAN_NO_MMAP\n",
                                     "#define BAN_MAX_BOXES 4096\n#define BAN_MAX_BATCH 16\n"])
def test_options_build_warning_free(tmp_path, options):
    proc = compile_ok("gcc", ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"], SOURCE_C % options, tmp_path, ".c")
    assert proc.returncode == 0, proc.stderr


def test_only_one_of_malloc_and_free_is_an_error(tmp_path):
    proc = compile_ok("gcc", ["-std=c99"], SOURCE_C % "#define BAN_MALLOC(n) malloc(n)\n", tmp_path, ".c")
    assert proc.returncode != 0 and "BAN_MALLOC and BAN_FREE" in proc.stderr, proc.stderr
    both = "#include <stdlib.h>\n#define BAN_MALLOC(n) malloc(n)\n#define BAN_FREE(p) free(p)\n"
    assert compile_ok("gcc", ["-std=c99", "-Wall", "-Werror"], SOURCE_C % both, tmp_path, ".c").returncode == 0


def test_ban_static_leaves_no_external_symbols(tmp_path):
    proc = compile_ok("cc", ["-std=c99", "-O1", "-Wall", "-Wno-unused-function"],
                      SOURCE_C % "#define BAN_STATIC\n", tmp_path, ".c")
    assert proc.returncode == 0, proc.stderr
    nm = subprocess.run(["nm", "--defined-only", "-g", str(tmp_path / "t.o")], capture_output=True, text=True).stdout
    exported = sorted(line.split()[-1] for line in nm.splitlines() if line.strip())
    assert exported == ["main"], exported
