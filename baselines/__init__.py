"""Reference systems for tas-bench (Mono-Mono, text-conditioned PseudoBinaural, ...).

Importing this package is cheap: model code (torch) is imported only when a system is loaded.
"""
