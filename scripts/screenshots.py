"""Screenshots of the console for the README, made by the browser test (not by hand).

    python scripts/screenshots.py [--out docs/screenshots]

Runs `tests/e2e/browser/test_console.py` with `RUNGS_SCREENSHOTS` set: the test saves the
queue and the case page at 1440×900 and 375×667 as it goes (queue-desktop.png,
case-desktop.png, queue-phone.png, case-phone.png).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args()
    env = {**os.environ, "RUNGS_SCREENSHOTS": str(Path(args.out).resolve())}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    test = "tests/e2e/browser/test_console.py::test_sign_in_see_act_escalate_sign_out"
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q", test]
    done = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    if done.returncode == 0:
        for png in sorted(Path(args.out).glob("*.png")):
            print(png.relative_to(ROOT) if png.is_relative_to(ROOT) else png)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
