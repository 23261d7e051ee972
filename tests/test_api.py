"""The Python API (``import tas_bench``) against the command line on the same tiny data:
every function gives what the matching ``tas-bench`` command gives (same files, same bytes,
same error messages), and importing the package loads no torch."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datagen import make_dataset, write_predictions

import tas_bench
from tas_bench.pipeline.cli import main
from tas_bench.runtime.errors import TasBenchError

ROOT = Path(__file__).resolve().parent.parent
EVS = ["signal", "cues"]
#: The only run-dependent field of results.json: the wall-clock time the run finished
#: (``created_utc``, second resolution). Everything else (code commit, package versions,
#: resolved dataset/prediction paths) is the same for two runs in one process.
RUN_DEPENDENT = ("created_utc",)


def _masked(path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    for k in RUN_DEPENDENT:
        assert k in doc
        doc[k] = "<masked>"
    return doc


def _cli_error(capsys, args: list[str]) -> str:  # noqa: ANN001
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("tas-bench: error: ") and err.count("\n") == 1
    return err[len("tas-bench: error: "):].rstrip("\n")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path, Path]:  # noqa: ANN001
    """A 4-clip dataset, mono predictions, and the CLI's results folder for them."""
    base = tmp_path_factory.mktemp("api")
    data, pred, res = base / "data", base / "pred", base / "cli-res"
    recs = make_dataset(data, n=4, seconds=0.5)
    write_predictions(pred, data, recs, mode="mono")
    assert main(["score", "--data", str(data), "--pred", str(pred), "--out", str(res),
                 "--evaluators", *EVS, "--no-progress", "--no-cache"]) == 0
    return data, pred, res


def test_import_loads_no_torch() -> None:
    code = ("import sys, tas_bench\n"
            "assert 'torch' not in sys.modules, 'import tas_bench imported torch'\n"
            "assert 'pandas' not in sys.modules, 'import tas_bench imported pandas'\n"
            "assert callable(tas_bench.score) and tas_bench.Results\n"  # the API module itself
            "assert 'torch' not in sys.modules, 'tas_bench.pipeline.api imported torch'\n"
            "print(sorted(tas_bench.__all__))\n"
            # importing the submodules of the same names does not hide the functions
            "from tas_bench.data.simulate import simulate_dataset\n"
            "import tas_bench.pipeline.generate, tas_bench.pipeline.api as api\n"
            "assert tas_bench.simulate is api.simulate and tas_bench.generate is api.generate\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "'score'" in proc.stdout and "'TasBenchError'" in proc.stdout
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tas_bench.nope  # noqa: B018


def test_score_then_save_writes_the_cli_bytes(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    data, pred, cli = tiny
    res = tas_bench.score(data, pred, evaluators=EVS, use_cache=False)  # out=None: nothing written
    assert res.path is None and not (tmp_path / "api").exists()
    res.save(tmp_path / "api")
    assert (tmp_path / "api" / "per_clip.csv").read_bytes() == (cli / "per_clip.csv").read_bytes()
    assert _masked(tmp_path / "api" / "results.json") == _masked(cli / "results.json")
    # out= writes the same, and the in-memory document is then the file's content
    res2 = tas_bench.score(tas_bench.load_dataset(data), pred, evaluators=EVS, use_cache=False,
                           out=tmp_path / "api2")
    assert (tmp_path / "api2" / "per_clip.csv").read_bytes() == (cli / "per_clip.csv").read_bytes()
    assert res2.doc == json.loads((tmp_path / "api2" / "results.json").read_text(encoding="utf-8"))
    assert _masked(tmp_path / "api2" / "results.json") == _masked(cli / "results.json")


def test_load_results_round_trips_bytes(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    _, _, cli = tiny
    res = tas_bench.load_results(cli)
    res.save(tmp_path / "copy")  # nothing is run-dependent here: every byte is equal
    for name in ("per_clip.csv", "results.json"):
        assert (tmp_path / "copy" / name).read_bytes() == (cli / name).read_bytes(), name


def test_metrics_and_per_clip_frames(tiny) -> None:  # noqa: ANN001
    data, pred, cli = tiny
    doc = json.loads((cli / "results.json").read_text(encoding="utf-8"))
    res = tas_bench.load_results(cli)
    m = res.metrics
    assert sorted(m.index) == sorted(doc["metrics"])
    assert list(m.index) == list(res.per_clip.columns[2:])  # per-clip column order
    fresh = tas_bench.score(data, pred, evaluators=EVS, use_cache=False).metrics
    pd.testing.assert_frame_equal(fresh, m)  # in memory (not saved) = read back from the files
    assert list(m.columns) == ["evaluator", "mean", "std", "ci_low", "ci_high", "n",
                               "higher_is_better", "unit", "per_clip", "description"]
    for name, d in doc["metrics"].items():
        row = m.loc[name]
        assert row["mean"] == d["mean"] and row["std"] == d["std"] and row["n"] == d["n"]
        assert (row["ci_low"], row["ci_high"]) == tuple(d["ci95"])
        assert bool(row["higher_is_better"]) == d["higher_is_better"] and row["unit"] == d["unit"]
    assert m.loc["snr", "higher_is_better"] and not m.loc["stft", "higher_is_better"]
    assert m.loc["itd_error_us", "unit"] == "us"
    # per_clip is per_clip.csv: same ids, same floats (empty cell = NaN)
    pc = res.per_clip
    with open(cli / "per_clip.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(pc["id"]) == [r["id"] for r in rows] == ["clip000", "clip001", "clip002", "clip003"]
    for col in pc.columns[2:]:
        want = [float(r[col]) if r[col] else math.nan for r in rows]
        np.testing.assert_array_equal(pc[col].to_numpy(), np.array(want))
    # the per-clip mean is the metric's mean
    assert pc["stft"].mean() == pytest.approx(m.loc["stft", "mean"], rel=1e-12)
    assert res.system["name"] == "pred" and res.dataset["split"] == "test" and res.invalid == []


def test_options_and_invalid_predictions(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    data, pred, _ = tiny
    a = tas_bench.score(data, pred, evaluators=["signal"], options={"signal": {"normalize": False}},
                        use_cache=False)
    b = tas_bench.score(data, pred, evaluators=["signal"], options=["signal.normalize=false"],
                        use_cache=False)
    assert a.doc["evaluators"]["signal"]["config"]["normalize"] is False
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    # a bad prediction does not raise: it is listed, as the CLI lists it (and exits 1)
    bad = tmp_path / "pred"
    bad.mkdir()
    for p in pred.glob("*.wav"):
        (bad / p.name).write_bytes(p.read_bytes())
    (bad / "clip001.wav").write_bytes(b"RIFF0000WAVE")
    res = tas_bench.score(data, bad, evaluators=["signal"], use_cache=False, out=tmp_path / "api")
    assert [i["id"] for i in res.invalid] == ["clip001"] and len(res.per_clip) == 3
    assert main(["score", "--data", str(data), "--pred", str(bad), "--out", str(tmp_path / "cli"),
                 "--evaluators", "signal", "--no-progress", "--no-cache"]) == 1
    assert (tmp_path / "api" / "per_clip.csv").read_bytes() == (tmp_path / "cli" / "per_clip.csv").read_bytes()
    assert _masked(tmp_path / "api" / "results.json") == _masked(tmp_path / "cli" / "results.json")


def test_errors_carry_the_cli_messages(tiny, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    data, pred, _ = tiny
    cases = [
        (lambda: tas_bench.score(tmp_path / "nope", pred),
         ["score", "--data", str(tmp_path / "nope"), "--pred", str(pred), "--out", str(tmp_path / "o")]),
        (lambda: tas_bench.score(data, tmp_path / "nopred", evaluators=["signal"]),
         ["score", "--data", str(data), "--pred", str(tmp_path / "nopred"), "--out",
          str(tmp_path / "o"), "--evaluators", "signal"]),
        (lambda: tas_bench.score(data, pred, evaluators=["generation"]),
         ["score", "--data", str(data), "--pred", str(pred), "--out", str(tmp_path / "o"),
          "--evaluators", "generation"]),
        (lambda: tas_bench.score(data, pred, options=["signal.normalize"]),
         ["score", "--data", str(data), "--pred", str(pred), "--out", str(tmp_path / "o"),
          "--set", "signal.normalize"]),
        (lambda: tas_bench.generate("no-such-system", data, out=tmp_path / "g"),
         ["generate", "--system", "no-such-system", "--data", str(data), "--out", str(tmp_path / "g")]),
        (lambda: tas_bench.simulate(tmp_path / "s", n_train=0, n_val=0, n_test=0),
         ["simulate", "--out", str(tmp_path / "s"), "--n-train", "0", "--n-val", "0", "--n-test", "0"]),
        (lambda: tas_bench.simulate(tmp_path / "s", workers=0),
         ["simulate", "--out", str(tmp_path / "s"), "--workers", "0"]),
        (lambda: tas_bench.leaderboard(tmp_path / "nores"),
         ["leaderboard", "--results", str(tmp_path / "nores"), "--out", str(tmp_path / "b")]),
        (lambda: tas_bench.leaderboard(tmp_path, bootstrap=0),
         ["leaderboard", "--results", str(tmp_path), "--out", str(tmp_path / "b"), "--bootstrap", "0"]),
    ]
    for call, args in cases:
        with pytest.raises(TasBenchError) as exc:
            call()
        assert str(exc.value) == _cli_error(capsys, args), args
    with pytest.raises(TasBenchError, match="missing results.json"):
        tas_bench.load_results(tmp_path)
    with pytest.raises(TasBenchError, match="no manifest.jsonl"):
        tas_bench.load_dataset(tmp_path)


def test_simulate_and_load_dataset_match_the_cli(tmp_path: Path) -> None:
    opts = dict(n_train=2, n_val=0, n_test=4, duration=0.5, seed=7)
    ds = tas_bench.simulate(tmp_path / "api", workers=1, **opts)
    assert main(["simulate", "--out", str(tmp_path / "cli"), "--n-train", "2", "--n-val", "0",
                 "--n-test", "4", "--duration", "0.5", "--seed", "7", "--workers", "1",
                 "--quiet"]) == 0
    for name in ("manifest.jsonl", "dataset.json"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    cli = tas_bench.load_dataset(tmp_path / "cli")
    assert ds.fingerprint == cli.fingerprint
    pd.testing.assert_frame_equal(ds.clips.drop(columns=[]), cli.clips)
    c = ds.clips
    assert list(c.columns[:5]) == ["id", "split", "category", "prompt", "prompt_type"]
    assert len(c) == 6 and list(ds.split("test")["split"]) == ["test"] * 4
    lines = [json.loads(x) for x in (tmp_path / "cli" / "manifest.jsonl").read_text().splitlines()]
    for (_, row), rec in zip(c.iterrows(), lines):
        assert row["id"] == rec["id"] and row["prompt"] == rec["prompt"]
        assert row["n_sources"] == len(rec["sources"])
        for k, s in enumerate(rec["sources"], start=1):
            assert row[f"source{k}_azimuth"] == s["azimuth"]
            assert row[f"source{k}_elevation"] == s["elevation"]
            assert row[f"source{k}_distance"] == s["distance"]
            assert row[f"source{k}_label"] == s["label"]
        if len(rec["sources"]) == 1 and "source2_azimuth" in c.columns:
            assert math.isnan(row["source2_azimuth"])


def test_generate_and_systems_match_the_cli(tiny, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    data, _, _ = tiny
    p = tas_bench.generate("mono-mono", data, out=tmp_path / "api")
    assert (p.system, p.clips, p.generated) == ("mono-mono", 4, 4)
    assert main(["generate", "--system", "mono-mono", "--data", str(data), "--out",
                 str(tmp_path / "cli"), "--no-progress"]) == 0
    names = sorted(x.name for x in (tmp_path / "cli").iterdir())
    assert names == sorted(x.name for x in (tmp_path / "api").iterdir())
    for n in names:
        assert (tmp_path / "api" / n).read_bytes() == (tmp_path / "cli" / n).read_bytes(), n
    # a loaded system spatializes as generate does: L = R = m/2 for Mono-Mono
    system = tas_bench.load_system("mono-mono")
    m = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    y = system.spatialize(m, "a dog barks on the left", 16000)
    np.testing.assert_allclose(y, np.stack([m / 2, m / 2]), atol=1e-7)
    # list_systems: the cards `tas-bench ls systems` prints, as a DataFrame
    df = tas_bench.list_systems()
    capsys.readouterr()
    assert main(["ls", "systems"]) == 0
    listed = [ln.split(" (")[0] for ln in capsys.readouterr().out.splitlines()]
    assert list(df["name"]) == listed
    assert list(df.columns[:5]) == ["name", "status", "reason", "revision", "description"]
    assert set(df["status"]) == {"ok"}
    rev = df.set_index("name").loc["mono-mono", "revision"]
    assert rev == system.card()["revision"]


def test_leaderboard_frames_are_the_cli_tables(tmp_path: Path) -> None:
    from test_leaderboard_fixtures import small_board

    root = small_board(tmp_path / "res")
    frames = tas_bench.leaderboard(root, bootstrap=200)
    assert main(["leaderboard", "--results", str(root), "--out", str(tmp_path / "board"),
                 "--no-figures", "--bootstrap", "200"]) == 0
    assert sorted(frames) == ["extended", "table2", "table3", "table4"]
    for tid, df in frames.items():
        with open(tmp_path / "board" / f"{tid}.csv", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert list(df.columns) == list(rows[0].keys()), tid
        assert len(df) == len(rows)
        assert set(df["source"]) == ({"published", "measured"} if tid != "extended" else {"measured"})
        for (_, got), want in zip(df.iterrows(), rows):
            for col, text in want.items():
                v = got[col]
                if col.endswith(" significant"):
                    assert bool(v) == (text == "†")
                elif isinstance(v, float):
                    if text in ("", "—", "–"):
                        assert math.isnan(v), (tid, col)
                    else:  # the CSV shows the number rounded to the column's decimals
                        decimals = len(text.split(".")[1]) if "." in text else 0
                        assert abs(v - float(text)) <= 0.5 * 10 ** -decimals + 1e-12, (tid, col)
                else:
                    assert v == text, (tid, col)
    t2 = frames["table2"]
    pub = t2[t2["source"] == "published"].set_index("method")
    assert pub.loc["TAS (ours)", "FD"] == 4.93 and pub.loc["Mono-Mono", "DOA"] == 19.66
