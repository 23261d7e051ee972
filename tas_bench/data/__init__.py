"""The data side: everything that makes, reads or checks a dataset folder.

Simulation (:mod:`.simulate`, with the sound corpus :mod:`.source_corpus`, heads :mod:`.hrtf` and
:mod:`.sphere_head`, rooms :mod:`.room`, geometry :mod:`.geometry`), the text the datasets carry
(:mod:`.prompts`, :mod:`.qa`), the manifest format (:mod:`.manifest`), its checker
(:mod:`.validate`), dataset presets (:mod:`.presets`) and importers of other datasets
(:mod:`.importers`).
"""
