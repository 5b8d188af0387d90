"""``modelroute calibrate`` as a user runs it: progress on stderr, the held-out report and what
was written on stdout, the written policy valid for ``modelroute validate``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.calibrate.support import DATA, NEEDS_DATA, VECTORS

pytestmark = NEEDS_DATA


def _calibrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelroute", "calibrate", *args],
                          capture_output=True, text=True, timeout=600)


def test_the_command_reports_the_held_out_split_and_writes_the_policy_fitted_on_every_prompt(tmp_path: Path) -> None:
    run = _calibrate("--data", str(DATA), "--target", "0.97", "--out", str(tmp_path), "--vectors", str(VECTORS))
    assert run.returncode == 0, run.stderr
    for stage in ("embedding", "fitting (with cascades)", "fitting (embedding alone)", "refitting on every prompt"):
        assert stage in run.stderr
    out = run.stdout
    assert "fitted on the training split: 3 regions (2 served by answer" in out
    assert "held-out split (25% of the prompts):" in out
    assert "embedding router + cascades" in out and "always gpt-4-1106-preview (baseline)" in out
    assert "fitted on 2205 prompts" in out
    policy = tmp_path / "policy.yaml"
    assert (tmp_path / "library.npz").exists()
    check = subprocess.run([sys.executable, "-m", "modelroute", "validate", str(policy)], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("args", [["--target", "1.5"], ["--target", "0.97", "--holdout", "1"]])
def test_out_of_range_settings_are_refused(tmp_path: Path, args: list[str]) -> None:
    run = _calibrate("--data", str(DATA), "--out", str(tmp_path), *args)
    assert run.returncode == 2 and "--target must be in (0, 1] and --holdout in [0, 1)" in run.stderr
    assert not (tmp_path / "policy.yaml").exists()
