"""The evaluator registry. Built-ins are lazy entries; third parties use the entry-point
group ``tas_bench.evaluators`` or ``EVALUATORS.register``."""

from __future__ import annotations

from tas_bench.runtime import runs
from tas_bench.runtime.registry import Registry

EVALUATORS: Registry = Registry("evaluator", "tas_bench.evaluators")

# name -> "module:attr"; importing a plugin happens only when it is used.
_BUILTIN = {
    "signal": "evaluators.signal:SignalEvaluator",
    "cues": "evaluators.cues:SpatialCueEvaluator",
    "generation": "evaluators.generation.evaluator:GenerationEvaluator",
    "spatial_qa": "evaluators.spatial_qa.evaluator:SpatialQAEvaluator",
}
for _name, _ref in _BUILTIN.items():
    EVALUATORS.register(_name, _ref)

# The spatial-QA assessor is trained and registered like the systems (tas_bench.runtime.runs).
runs.register_kind(runs.KindSpec(
    "assessor", role="assessor",
    description="spatial-QA assessor: Spatial-AST-shaped encoder + Q-Former + causal LM",
    train="evaluators.spatial_qa.train:train_assessor_run",
    load="evaluators.spatial_qa.assessor:load_assessor_run"))
