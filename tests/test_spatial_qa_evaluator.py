"""The spatial_qa evaluator: gaps per category, unparseable answers, reference-answer cache,
answers file, assessor identity, requirements."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datagen import src

from evaluators.base import ClipInput
from evaluators.spatial_qa.evaluator import SpatialQAEvaluator
from tas_bench.data.manifest import Clip, Dataset, QAItem
from tas_bench.runtime.cache import OutputCache
from tas_bench.runtime.errors import TasBenchError


def _clip(cid: str, qa: list[tuple[str, str, str, str]]) -> Clip:
    return Clip(id=cid, split="test", audio=f"{cid}.wav", sample_rate=32000, duration=0.25,
                category="single_doa_de", sources=[src("dog", 90.0, 20.0, 2.0)], prompt="p",
                prompt_type="A", qa=[QAItem(q, a, cat, qt) for q, a, cat, qt in qa],
                hrtf=None, room=None, seed=0)


QA = [("Where is the dog?", "left, front, above", "DOA", "DOA"),
      ("How far away is the dog?", "2m", "DE", "DISTANCE")]


class _Scripted(SpatialQAEvaluator):
    """Answers scripted by the audio: rows whose first sample is 1.0 are the reference."""

    def __init__(self, ref: list[str], pred: list[str], **kw: object) -> None:
        super().__init__(**kw)
        self.ref_answers, self.pred_answers = ref, pred
        self.calls = {"ref": 0, "pred": 0}

    def identity(self) -> dict:
        return {"name": "scripted", "revision": "0", "sha256": "0" * 64, "llm": None,
                "encoder_preset": "cpu", "files": {}}

    def _answers(self, audio, questions):  # noqa: ANN001, ANN202
        out = []
        for x, qs in zip(audio, questions):
            is_ref = float(x[0, 0]) == 1.0
            self.calls["ref" if is_ref else "pred"] += 1
            out.append((self.ref_answers if is_ref else self.pred_answers)[: len(qs)])
        return out


def _inputs(clips: list[Clip]) -> list[ClipInput]:
    ref = np.zeros((2, 8000))
    ref[:, 0] = 1.0
    pred = np.zeros((2, 8000))
    return [ClipInput(c, pred, ref, 32000) for c in clips]


def test_gaps_are_hand_computed_per_category() -> None:
    ev = _Scripted(["left, front, above", "2.4m"], ["right, front, above", "5m"])
    out = ev.process_batch(_inputs([_clip("a", QA)]))[0].values
    assert out["doa_acc_ref"] == 1.0 and out["doa_acc_pred"] == 0.0 and out["doa_gap"] == 100.0
    assert out["de_acc_ref"] == 1.0 and out["de_acc_pred"] == 0.0 and out["de_gap"] == 100.0
    assert np.isnan(out["direction_gap"]) and np.isnan(out["distance_gap"])
    assert out["unparseable_pred"] == 0.0 and out["unknown_items"] == 0.0


def test_unparseable_answer_is_wrong_and_counted_never_a_crash() -> None:
    ev = _Scripted(["left, front, above", "2m"], ["¯\\_(ツ)_/¯", ""])
    out = ev.process_batch(_inputs([_clip("a", QA)]))[0].values
    assert out["doa_acc_pred"] == 0.0 and out["de_acc_pred"] == 0.0
    assert out["unparseable_pred"] == 1.0 and out["unparseable_ref"] == 0.0


def test_unknown_category_is_left_out_and_counted() -> None:
    qa = QA + [("What is it?", "dog", "CLASSIFICATION", "CLASSIFICATION")]
    ev = _Scripted(["left, front, above", "2m"], ["left, front, above", "2m"])
    out = ev.process_batch(_inputs([_clip("a", qa)]))[0].values
    assert out["unknown_items"] == 1.0 and out["doa_gap"] == 0.0


def test_reference_answers_are_cached_once_for_every_system(tmp_path: Path) -> None:
    ev = _Scripted(["left, front, above", "2m"], ["right, front, above", "2m"])
    ev.aux_cache = OutputCache(tmp_path / "cache")
    clips = [_clip("a", QA), _clip("b", QA)]
    ev.process_batch(_inputs(clips))
    assert ev.calls == {"ref": 2, "pred": 2}
    ev.pred_answers = ["left, front, above", "9m"]  # "another system"
    out = ev.process_batch(_inputs(clips))
    assert ev.calls == {"ref": 2, "pred": 4}  # reference answers served from the cache
    assert out[0].values["doa_gap"] == 0.0 and out[0].values["de_gap"] == 100.0


def test_answers_file_holds_every_answer() -> None:
    ev = _Scripted(["left, front, above", "2m"], ["right, front, above", "3m"])
    clips = [_clip("a", QA), _clip("b", QA)]
    outs = ev.process_batch(_inputs(clips))
    files = ev.result_files({c.id: o for c, o in zip(clips, outs)})
    lines = [json.loads(x) for x in files["qa_answers.jsonl"].decode().splitlines()]
    assert [(r["clip"], r["category"]) for r in lines] == [("a", "DOA"), ("a", "DE"), ("b", "DOA"),
                                                            ("b", "DE")]
    assert lines[0]["answer_pred"] == "right, front, above" and lines[0]["correct_pred"] is False
    assert lines[1]["truth"] == "2m" and lines[1]["correct_ref"] is True


def test_dataset_without_qa_is_skipped_with_the_reason() -> None:
    ev = _Scripted([], [])
    ds = Dataset(root=Path("."), clips=[_clip("a", [])], info={})
    assert ev.check_requirements(ds) == "the dataset has no QA items"


def test_bad_options_and_unknown_assessor() -> None:
    with pytest.raises(TasBenchError, match="max_new_tokens"):
        SpatialQAEvaluator(max_new_tokens=0)
    ev = SpatialQAEvaluator(assessor="no-such-assessor")
    ds = Dataset(root=Path("."), clips=[_clip("a", QA)], info={})
    assert "no assessor named 'no-such-assessor'" in ev.check_requirements(ds)


def test_real_assessor_run_identity_and_batch_invariant_answers(tmp_path: Path) -> None:
    """A tiny assessor trained by the project's own code: identity, batch = one-by-one."""
    from qa_tiny import make_qa_dataset, train_tiny

    data = make_qa_dataset(tmp_path / "data")
    rec = train_tiny(data, tmp_path / "run")
    ev = SpatialQAEvaluator(assessor=str(tmp_path / "run"), max_new_tokens=4)
    info = ev.weights_info()[f"assessor:{tmp_path / 'run'}"]
    assert info["revision"] == rec["revision"] and info["sha256"] == rec["checkpoint_sha256"]
    ref = np.random.default_rng(0).standard_normal((2, 8000)) * 0.1
    batch = [ClipInput(_clip(c, QA), ref * (i + 1), ref, 32000) for i, c in enumerate("abc")]
    together = ev.process_batch(batch)
    alone = [ev.process_batch([b])[0] for b in batch]
    assert [o.arrays["answers"].tobytes() for o in together] == \
        [o.arrays["answers"].tobytes() for o in alone]


def test_cli_score_writes_gaps_and_answers_file(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Through `tas-bench score`: Table 2's gap metrics, qa_answers.jsonl listed in results.json,
    reference answers computed once for two systems; the API writes the same files."""
    import shutil

    from datagen import write_predictions
    from qa_tiny import make_qa_dataset, train_tiny

    from tas_bench.pipeline import api
    from tas_bench.pipeline.cli import main
    from tas_bench.runtime.fileio import sha256_file

    data = make_qa_dataset(tmp_path / "data", n=8, n_val=2)
    train_tiny(data, tmp_path / "run")
    recs = [json.loads(x) for x in (data / "manifest.jsonl").read_text().splitlines()]
    for r in recs:  # score the val clips as the "test" split of a copy
        r["split"] = "test" if r["split"] == "val" else r["split"]
    test_data = tmp_path / "test-data"
    shutil.copytree(data, test_data)
    (test_data / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    tests = [r for r in recs if r["split"] == "test"]
    write_predictions(tmp_path / "pred", test_data, tests)
    args = ["score", "--data", str(test_data), "--pred", str(tmp_path / "pred"),
            "--evaluators", "spatial_qa", "--set", f"spatial_qa.assessor={tmp_path / 'run'}",
            "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "res")]) == 0
    doc = json.loads((tmp_path / "res" / "results.json").read_text())
    for m in ("doa_gap", "doa_acc_ref", "doa_acc_pred", "unparseable_pred"):
        assert m in doc["metrics"], m
    answers = tmp_path / "res" / "qa_answers.jsonl"
    assert doc["files"]["qa_answers.jsonl"] == sha256_file(answers)
    assert len(answers.read_text().splitlines()) == len(tests)  # one DOA item per clip
    assert doc["evaluators"]["spatial_qa"]["weights"]
    # the copied predictions equal the references: every gap is 0
    assert doc["metrics"]["doa_gap"]["mean"] == 0.0
    res = api.score(test_data, tmp_path / "pred", evaluators=["spatial_qa"],
                    options={"spatial_qa": {"assessor": str(tmp_path / "run")}},
                    cache_dir=tmp_path / "cache")
    res.save(tmp_path / "res-api")
    assert (tmp_path / "res-api" / "qa_answers.jsonl").read_bytes() == answers.read_bytes()
    assert api.load_results(tmp_path / "res").files["qa_answers.jsonl"] == answers.read_bytes()
