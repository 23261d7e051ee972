"""Text-conditioned PseudoBinaural (Mono2Binaural audio U-Net + text at the bottleneck).

Modules: ``config`` (presets, checked config), ``text_encoder`` (scratch / local FLAN-T5),
``model`` (U-Net, STFT), ``data`` (training windows), ``checkpoint`` (safetensors + JSON),
``train`` (accelerate loop, resumable), ``system`` (inference as a tas-bench System).
"""
