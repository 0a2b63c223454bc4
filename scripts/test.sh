#!/usr/bin/env bash
# The test command: installs what the tests need, builds once, runs every test, and ends with
# "N passed, N failed" computed from the test runner's xunit files.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
rm -rf .build/xunit && mkdir -p .build/xunit
swift build --build-tests 2>&1 | tail -n 20
build_rc=${PIPESTATUS[0]}
if [ "$build_rc" -ne 0 ]; then
  echo "build failed"
  echo "0 passed, 1 failed"
  exit 1
fi
# The rosepack binary is used by end-to-end tests.
swift build --product rosepack 2>&1 | tail -n 3
swift test --skip-build --parallel --num-workers 2 --xunit-output .build/xunit/xunit.xml 2>&1 | tee .build/xunit/log.txt | grep -E "^(✘|✔ Test run|Test Suite .* (passed|failed)|.*error:|.*failed)" | tail -n 60
rc=${PIPESTATUS[0]}
python3 - "$rc" <<'PY'
import glob, sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for f in glob.glob(".build/xunit/xunit*.xml"):
    for tc in ET.parse(f).getroot().iter("testcase"):
        if tc.find("failure") is not None or tc.find("error") is not None:
            failed += 1
        elif tc.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
rc = int(sys.argv[1])
if rc != 0 and failed == 0:
    failed = 1  # the runner failed without a failing test case (crash, build): count it
if passed + failed == 0:
    failed = 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(0 if failed == 0 and rc == 0 else 1)
PY
