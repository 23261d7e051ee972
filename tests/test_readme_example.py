"""The README's "From Python" example runs as printed (in a fresh process, in a temporary
folder) and does what the text says: a metrics DataFrame, a per-clip ILD plot, the tables."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_example(readme: Path = ROOT / "README.md") -> str:
    """The first ```python block of the README section "From Python"."""
    text = readme.read_text(encoding="utf-8")
    m = re.search(r"^## From Python\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert m, "README has no '## From Python' section"
    block = re.search(r"^```python\n(.*?)^```", m.group(1), flags=re.S | re.M)
    assert block, "no ```python block in the 'From Python' section"
    return block.group(1)


def test_readme_python_example_runs(tmp_path: Path) -> None:
    code = readme_example()
    assert "tas_bench.score(" in code and "ild_error_db" in code  # the example the issue asks for
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg",
           "TAS_BENCH_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    # the clips table, the metrics DataFrame and the leaderboard table were printed
    assert "source1_azimuth" in out and "ci_low" in out and "ild_error_db" in out
    assert re.search(r"^stft\s+\d", out, flags=re.M) and "mono-mono" in out and "published" in out
    png = tmp_path / "ild_error.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000
    doc = json.loads((tmp_path / "results" / "mono-mono" / "results.json").read_text())
    assert doc["system"]["name"] == "mono-mono" and doc["dataset"]["n_clips"] == 8
    assert set(doc["evaluators"]) == {"signal", "cues"}


def test_example_extraction(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n## From Python\ntext\n```bash\nls\n```\n```python\nprint(1)\n```\n"
                      "## Next\n```python\nprint(2)\n```\n", encoding="utf-8")
    assert readme_example(readme) == "print(1)\n"
