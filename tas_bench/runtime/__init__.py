"""The runtime every stage shares: registries, caches, stores and file formats.

Lazy ``"module:attr"`` registries (:mod:`.registry`), the score cache (:mod:`.cache`), the
weights store (:mod:`.weights`) and the systems store (:mod:`.systems_store`), results folders
(:mod:`.results`), audio and atomic file I/O (:mod:`.audio_io`, :mod:`.fileio`), statistics
(:mod:`.stats`), provenance records (:mod:`.provenance`), errors (:mod:`.errors`), run folders
and checkpoints of every trainable thing (:mod:`.runs`, :mod:`.ship`) and the text encoders
(:mod:`.text`).
"""
