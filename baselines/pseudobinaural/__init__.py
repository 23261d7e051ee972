"""Text-conditioned PseudoBinaural (Mono2Binaural audio U-Net + text at the bottleneck).

Modules: ``config`` (presets, checked config), ``model`` (U-Net, STFT), ``data`` (training
windows), ``train`` (accelerate loop, resumable), ``system`` (inference as a tas-bench System).
The text encoders live in :mod:`tas_bench.runtime.text`; run folders, checkpoints, the metrics log and
registration in :mod:`tas_bench.runtime.runs` (shared with every trainable kind).
"""
