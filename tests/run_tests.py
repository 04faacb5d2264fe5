#!/usr/bin/env python3
"""Run every test suite of the project and print one summary line.

    python3 tests/run_tests.py [--build DIR] [--only c|py] [PYTEST_ARGS...]

Suites:
  * C test programs build/test_* (TAP output: "ok N - name" / "not ok N - name"; a line
    "ok N - name # SKIP reason" counts as neither), build/test_fuzz (tests/fuzz/run.py) among them;
  * the Python tests in tests/test_*.py, through pytest (its JUnit XML report is read).

The last line printed is "N passed, N failed" (what CI counts); the exit status is
non-zero when anything failed or a suite could not run.
"""
import argparse
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TAP_LINE = re.compile(r"^(not ok|ok)\b")
TAP_SKIP = re.compile(r"#\s*skip\b", re.IGNORECASE)  # "ok N - name # SKIP reason": neither passed nor failed


def run_c_suite(path):
    """Run one TAP-speaking C test program; returns (passed, failed, skipped)."""
    print("== %s" % os.path.relpath(path, ROOT), flush=True)
    proc = subprocess.Popen([path], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    passed = failed = skipped = 0
    for line in proc.stdout:
        sys.stdout.write(line)
        m = TAP_LINE.match(line)
        if m:
            if m.group(1) == "ok" and TAP_SKIP.search(line):
                skipped += 1
            elif m.group(1) == "ok":
                passed += 1
            else:
                failed += 1
    rc = proc.wait()
    if rc != 0 and failed == 0:
        # a crash or an early exit is a failure even if every printed test passed
        print("not ok - %s exited with status %d" % (os.path.basename(path), rc))
        failed += 1
    return passed, failed, skipped


def run_pytest(build, extra):
    report = os.path.join(build, "pytest.xml")
    if os.path.exists(report):
        os.remove(report)
    print("== pytest tests/", flush=True)
    env = dict(os.environ, BAN_BUILD=os.path.abspath(build))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "--junitxml", report, os.path.join(HERE)] + extra
    rc = subprocess.call(cmd, cwd=ROOT, env=env)
    if not os.path.exists(report):
        print("not ok - pytest produced no report (exit status %d)" % rc)
        return 0, 1
    passed = failed = 0
    for case in ET.parse(report).getroot().iter("testcase"):
        outcome = [c.tag for c in case]
        if "failure" in outcome or "error" in outcome:
            failed += 1
        elif "skipped" in outcome:
            continue
        else:
            passed += 1
    if rc not in (0, 1) and failed == 0:
        failed += 1  # interrupted or internal error
    return passed, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", choices=["c", "py"])
    args, extra = ap.parse_known_args()
    passed = failed = skipped = 0
    if args.only in (None, "c"):
        progs = sorted(p for p in os.listdir(args.build)
                       if p.startswith("test_") and os.access(os.path.join(args.build, p), os.X_OK)
                       and not p.endswith((".o", ".xml")))
        for p in progs:
            ok, bad, skip = run_c_suite(os.path.join(args.build, p))
            passed += ok
            failed += bad
            skipped += skip
    if args.only in (None, "py"):
        ok, bad = run_pytest(args.build, extra)
        passed += ok
        failed += bad
    if skipped:
        print("(%d C tests skipped: see their '# SKIP' lines)" % skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
