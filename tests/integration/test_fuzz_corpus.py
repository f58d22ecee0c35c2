"""The fuzz harness's seed corpus and every crash input found so far (fuzz/corpus/TARGET) replay
through the normal build of `fulcrum-fuzz` without a crash. (scripts/fuzz runs the
coverage-guided fuzzer itself; `make test` runs it briefly after this suite.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import binary

CORPUS = Path(__file__).resolve().parents[2] / "fuzz" / "corpus"


@pytest.mark.parametrize("target", ["infer", "json", "config", "onnx", "plog"])
def test_corpus_replays_without_a_crash(target):
    folder = CORPUS / target
    assert any(folder.iterdir()), f"{folder} is empty"
    done = subprocess.run([binary("fulcrum-fuzz"), target, str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "none crashed" in done.stdout
