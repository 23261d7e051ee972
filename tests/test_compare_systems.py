"""Dataset subsets (tas_bench.data.subset) and benchmarks/compare_systems.py: hand cases, the
refusals, and one end-to-end run through the script on tiny generated data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from datagen import clip_record, make_dataset
from scriptload import load_benchmark

from leaderboard.significance import BootstrapConfig, paired_bootstrap
from tas_bench.data.manifest import dataset_fingerprint, load_dataset, write_manifest
from tas_bench.data.subset import single_source_test, subset_dataset
from tas_bench.runtime.errors import TasBenchError


def _mixed_dataset(root: Path) -> list[dict]:
    """Four single-source test clips, one two-source test clip and one single-source val clip."""
    recs = make_dataset(root, n=4)
    two = clip_record("pair000", "test", recs[0]["audio"], 16000, 1.0, 60.0,
                      category="double_doa_de")
    second = dict(two["sources"][0], label="bell", azimuth=300.0, direction=["right", "front", "above"])
    two["sources"] = [two["sources"][0], second]
    val = clip_record("val000", "val", recs[1]["audio"], 16000, 1.0, -60.0)
    recs = [*recs, two, val]
    write_manifest(root, recs)
    return recs


def test_subset_keeps_single_source_test_lines_byte_for_byte(tmp_path: Path) -> None:
    _mixed_dataset(tmp_path / "d")
    out = subset_dataset(tmp_path / "d", tmp_path / "s", keep=single_source_test)
    ds = load_dataset(out)
    assert [c.id for c in ds.clips] == ["clip000", "clip001", "clip002", "clip003"]
    src_lines = (tmp_path / "d" / "manifest.jsonl").read_text().splitlines()
    sub_lines = (out / "manifest.jsonl").read_text().splitlines()
    assert sub_lines == [ln for ln in src_lines if json.loads(ln)["id"].startswith("clip")]
    for c in ds.clips:  # the same audio bytes
        assert (out / c.audio).read_bytes() == (tmp_path / "d" / c.audio).read_bytes()
    fp = dataset_fingerprint(out)
    subset_dataset(tmp_path / "d", out, keep=single_source_test)  # a rerun is accepted
    assert dataset_fingerprint(out) == fp


def test_subset_refusals(tmp_path: Path) -> None:
    _mixed_dataset(tmp_path / "d")
    subset_dataset(tmp_path / "d", tmp_path / "s", keep=single_source_test)
    with pytest.raises(TasBenchError, match="another subset"):
        subset_dataset(tmp_path / "d", tmp_path / "s", keep=lambda c: c.split == "test")
    with pytest.raises(TasBenchError, match="no clip"):
        subset_dataset(tmp_path / "d", tmp_path / "t", keep=lambda c: False)
    assert not (tmp_path / "t" / "manifest.jsonl").exists()


def test_compare_hand_case() -> None:
    mod = load_benchmark("compare_systems")
    ids = [f"c{i}" for i in range(6)]
    per_clip = {
        "base": pd.DataFrame({"id": ids, "acc": [0, 1, 0, 0, 1, np.nan], "err": [3.0] * 6,
                              "itd_pred_us": [1.0] * 6, "acc_ref": [1.0] * 6}),
        "sys": pd.DataFrame({"id": ids, "acc": [1, 1, 0, 1, 1, 1], "err": [1.0] * 5 + [np.nan],
                             "itd_pred_us": [0.0] * 6, "acc_ref": [1.0] * 6}),
    }
    metrics = pd.DataFrame({"per_clip": [True] * 4, "higher_is_better": [True, False, False, True]},
                           index=["acc", "err", "itd_pred_us", "acc_ref"])
    rows = {(r["system"], r["metric"]): r for r in mod.compare(per_clip, metrics, "base", 500, 3)}
    acc = rows[("sys", "acc")]
    assert acc["n"] == 5  # c5 is NaN for base: not shared
    assert acc["mean"] == pytest.approx(0.8) and acc["against_mean"] == pytest.approx(0.4)
    assert acc["diff"] == pytest.approx(0.4)
    want = paired_bootstrap({k: v for k, v in zip(ids[:5], [1, 1, 0, 1, 1], strict=True)},
                            {k: v for k, v in zip(ids[:5], [0, 1, 0, 0, 1], strict=True)},
                            higher_is_better=True, config=BootstrapConfig(500, 3))
    assert acc["p"] == want.p_value
    err = rows[("sys", "err")]
    assert err["n"] == 5 and err["diff"] == pytest.approx(2.0)  # lower is better: positive
    assert err["p"] == 0.0
    assert np.isnan(rows[("base", "acc")]["p"])  # the against-system is not tested on itself
    assert ("sys", "itd_pred_us") not in rows  # a cue itself ranks nothing
    ceiling = rows[("sys", "acc_ref")]  # measured on the references: shown, not tested
    assert ceiling["mean"] == 1.0 and np.isnan(ceiling["p"])


def test_compare_systems_end_to_end(tmp_path: Path, private_cache: Path) -> None:
    mod = load_benchmark("compare_systems")
    _mixed_dataset(tmp_path / "d")
    out = tmp_path / "cmp"
    rc = mod.main(["--data", str(tmp_path / "d"), "--out", str(out), "--systems", "mono-mono",
                   "--against", "pseudobinaural-demo", "--single-source", "--bootstrap", "200"])
    assert rc == 0
    rows = list(csv.DictReader(open(out / "comparison.csv")))
    lr = {r["system"]: r for r in rows if r["metric"] == "lr_correct"}
    assert set(lr) == {"mono-mono", "pseudobinaural-demo"}
    assert int(lr["mono-mono"]["n"]) == 4  # the two-source and the val clip are left out
    assert float(lr["mono-mono"]["mean"]) == 0.0  # no interaural cue: never a side
    doc = json.loads((out / "comparison.json").read_text())
    assert doc["dataset_fingerprint"] == dataset_fingerprint(out / "data")
    assert set(doc["systems"]) == {"mono-mono", "pseudobinaural-demo"}
    again = tmp_path / "cmp2"
    assert mod.main(["--data", str(tmp_path / "d"), "--out", str(again), "--systems", "mono-mono",
                     "--against", "pseudobinaural-demo", "--single-source",
                     "--bootstrap", "200"]) == 0
    assert (again / "comparison.csv").read_bytes() == (out / "comparison.csv").read_bytes()


def test_compare_systems_bad_data_is_one_message(tmp_path: Path, capsys) -> None:
    mod = load_benchmark("compare_systems")
    (tmp_path / "empty").mkdir()
    rc = mod.main(["--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o"),
                   "--systems", "mono-mono", "--against", "mono-mono", "--single-source"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_pool_tests_the_clips_of_several_runs_as_one_split(tmp_path: Path, private_cache: Path,
                                                             capsys) -> None:
    mod = load_benchmark("compare_systems")
    make_dataset(tmp_path / "d1", n=4)
    make_dataset(tmp_path / "d2", n=3)  # another dataset: another fingerprint
    args = ["--systems", "mono-mono", "--against", "pseudobinaural-demo", "--bootstrap", "200"]
    for k in ("1", "2"):
        assert mod.main(["--data", str(tmp_path / f"d{k}"), "--out", str(tmp_path / f"c{k}"),
                         *args]) == 0
    one = {(r["system"], r["metric"]): r for r in csv.DictReader(open(tmp_path / "c1" / "comparison.csv"))}
    two = {(r["system"], r["metric"]): r for r in csv.DictReader(open(tmp_path / "c2" / "comparison.csv"))}
    pool = tmp_path / "pool"
    assert mod.main(["--pool", str(tmp_path / "c1"), str(tmp_path / "c2"), "--out", str(pool),
                     *args]) == 0
    rows = {(r["system"], r["metric"]): r for r in csv.DictReader(open(pool / "comparison.csv"))}
    for key in (("pseudobinaural-demo", "lr_correct"), ("mono-mono", "itd_error_us")):
        n1, n2 = int(one[key]["n"]), int(two[key]["n"])
        assert int(rows[key]["n"]) == n1 + n2 == 7
        want = (n1 * float(one[key]["mean"]) + n2 * float(two[key]["mean"])) / (n1 + n2)
        assert float(rows[key]["mean"]) == pytest.approx(want)
    doc = json.loads((pool / "comparison.json").read_text())
    assert [r["clips"] for r in doc["pooled"]] == [4, 3]
    assert doc["pooled"][0]["dataset_fingerprint"] == dataset_fingerprint(tmp_path / "d1")
    capsys.readouterr()
    # the same split twice would count its clips twice: refused, one message
    assert mod.main(["--pool", str(tmp_path / "c1"), str(tmp_path / "c1"), "--out",
                     str(tmp_path / "p2"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "pooled once" in err and "Traceback" not in err
    # results of another revision than the registered system's are never pooled
    with pytest.raises(TasBenchError, match="revision"):
        mod.pooled_per_clip([tmp_path / "c1"], ["mono-mono", "pseudobinaural-demo"],
                            "pseudobinaural-demo",
                            {"mono-mono": "0000000000000000", "pseudobinaural-demo": None})
