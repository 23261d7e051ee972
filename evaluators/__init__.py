"""Metric plugins for tas-bench. See :mod:`evaluators.base` for the API and
:data:`evaluators.registry.EVALUATORS` for the registry."""
