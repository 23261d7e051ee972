"""The evaluator registry. Built-ins are lazy entries; third parties use the entry-point
group ``tas_bench.evaluators`` or ``EVALUATORS.register``."""

from __future__ import annotations

from tas_bench.registry import Registry

EVALUATORS: Registry = Registry("evaluator", "tas_bench.evaluators")

# name -> "module:attr"; importing a plugin happens only when it is used.
_BUILTIN = {
    "signal": "evaluators.signal:SignalEvaluator",
    "cues": "evaluators.cues:SpatialCueEvaluator",
    "generation": "evaluators.generation.evaluator:GenerationEvaluator",
}
for _name, _ref in _BUILTIN.items():
    EVALUATORS.register(_name, _ref)
