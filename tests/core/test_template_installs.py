"""The plugin template installs outside the workspace: a copy of it is a distribution."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    return subprocess.run(["bash", str(ROOT / ".ci" / "uv")], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_copy_of_the_template_installs_outside_the_workspace(tmp_path: Path) -> None:
    copy = tmp_path / "plait-mine"
    shutil.copytree(ROOT / "plugins" / "_template", copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    # offline, into this interpreter's environment (plait is installed there): the copy must
    # build and resolve without the repository's workspace
    done = subprocess.run([uv(), "pip", "install", "--python", sys.executable, "--dry-run",
                           "--offline", "."], cwd=copy, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "+ plait-example @ file://" in done.stderr + done.stdout
