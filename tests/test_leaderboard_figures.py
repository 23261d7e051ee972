"""Per-system figures: spectrograms and ITD/ILD comparison from a tiny dataset the test writes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_leaderboard_fixtures import write_result  # noqa: E402

from leaderboard.build import build_leaderboard  # noqa: E402
from leaderboard.collect import collect  # noqa: E402
from leaderboard.figures import itd_ild, system_figures  # noqa: E402
from tas_bench.data.geometry import direction_words  # noqa: E402
from tas_bench.data.manifest import write_manifest  # noqa: E402
from tas_bench.runtime.audio_io import write_wav  # noqa: E402

SR = 16000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _delayed(x: np.ndarray, lag: int, gain_r: float) -> np.ndarray:
    """Binaural pair: right = left delayed by ``lag`` samples and scaled by ``gain_r``."""
    right = np.concatenate([np.zeros(lag), x[: len(x) - lag]]) * gain_r
    return np.stack([x, right])


def make_dataset(root: Path, n: int = 4) -> tuple[Path, Path]:
    data, pred = root / "data", root / "pred"
    rng = np.random.default_rng(3)
    clips = []
    for i in range(n):
        cid = f"c{i}"
        x = np.clip(0.2 * rng.standard_normal(SR // 2), -0.9, 0.9)
        write_wav(data / "wav" / f"{cid}.wav", _delayed(x, 4 + i, 0.5), SR)
        write_wav(pred / f"{cid}.wav", _delayed(x, 2 + i, 0.7), SR)
        az = 60.0
        clips.append({
            "id": cid, "split": "test", "audio": f"wav/{cid}.wav", "sample_rate": SR,
            "duration": 0.5, "category": "single_doa_de",
            "sources": [{"label": "noise", "azimuth": az, "elevation": 10.0, "distance": 2.0,
                         "direction": list(direction_words(az, 10.0)),
                         "provenance": {"package": "test", "file": "rng", "licence": "CC0"}}],
            "prompt": "noise on the left", "prompt_type": "A", "qa": [], "hrtf": None,
            "room": None, "seed": i,
        })
    write_manifest(data, clips)
    return data, pred


def test_itd_ild_hand_case() -> None:
    x = np.random.default_rng(0).standard_normal(4000)
    itd, ild = itd_ild(_delayed(x, 8, 0.5), SR)
    assert itd == pytest.approx(8 / SR * 1e6)  # right lags left by 8 samples = 500 µs
    assert ild == pytest.approx(20 * np.log10(2.0), abs=0.05)  # right at half amplitude
    itd, _ = itd_ild(_delayed(x, 40, 1.0), SR)  # 2.5 ms is outside the ±1 ms search range
    assert abs(itd) <= 1000.0


def test_figures_from_folders(tmp_path: Path) -> None:
    data, pred = make_dataset(tmp_path)
    root = tmp_path / "res"
    write_result(root, "sys", system="sys", per_clip={"stft": [1.0, 1.1, 0.9, 1.0]},
                 ids=["c0", "c1", "c2", "c3"], dataset_path=str(data), predictions_path=str(pred))
    (r,) = collect(root).results
    fs = system_figures(r, max_clips=2)
    assert fs.problems == []
    titles = [f.title for f in fs.figures]
    assert titles == ["Spectrograms, clip c0", "Spectrograms, clip c1", "ITD / ILD: prediction vs reference"]
    assert all(f.png.startswith(PNG_MAGIC) for f in fs.figures)
    assert "computed here" in fs.figures[-1].caption  # per_clip.csv has no ITD/ILD columns
    assert fs.figures[0].data_uri().startswith("data:image/png;base64,iVBOR")


def test_figures_use_per_clip_cues_when_present(tmp_path: Path) -> None:
    data, pred = make_dataset(tmp_path, n=2)
    root = tmp_path / "res"
    write_result(root, "sys", system="sys", ids=["c0", "c1"], dataset_path=str(data),
                 predictions_path=str(pred),
                 per_clip={"itd_pred_us": [100.0, 200.0], "itd_ref_us": [110.0, 190.0],
                           "ild_pred_db": [3.0, 4.0], "ild_ref_db": [3.5, 4.5]})
    (r,) = collect(root).results
    fs = system_figures(r)
    assert len(fs.figures) == 3 and "Source: per_clip.csv" in fs.figures[-1].caption


def test_missing_folders_are_reported_not_raised(tmp_path: Path) -> None:
    root = tmp_path / "res"
    write_result(root, "sys", system="sys", per_clip={"stft": [1.0, 2.0]})
    s = build_leaderboard(root, tmp_path / "board")
    html = (tmp_path / "board" / "index.html").read_text(encoding="utf-8")
    assert "dataset folder /nonexistent/dataset not found: no figures" in html
    assert s.n_measured == 1


def test_page_embeds_figures_as_data_uris(tmp_path: Path) -> None:
    data, pred = make_dataset(tmp_path, n=2)
    root = tmp_path / "res"
    write_result(root, "sys", system="sys", per_clip={"stft": [1.0, 1.1]}, ids=["c0", "c1"],
                 dataset_path=str(data), predictions_path=str(pred))
    build_leaderboard(root, tmp_path / "board", max_figure_clips=1)
    html = (tmp_path / "board" / "index.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == 2
    assert not re.search(r'(src|href)="(https?:|//)', html)  # no external assets or links
    assert re.findall(r'src="([^"]*)"', html) and all(
        u.startswith("data:image/png;base64,") for u in re.findall(r'src="([^"]*)"', html))
    assert "<link rel=\"stylesheet\"" not in html and "<script src" not in html
