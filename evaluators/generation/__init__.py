"""Generation metrics (FD, FAD, KL, IS) after haoheliu/audioldm_eval, with PANNs Cnn14 and
VGGish backbones whose weights come from the local weights store (:mod:`tas_bench.runtime.weights`).

Importing this package is cheap; the evaluator lives in
:mod:`evaluators.generation.evaluator` and is registered lazily as ``"generation"``.
"""
