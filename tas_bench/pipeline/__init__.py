"""The pipeline: dataset -> system -> predictions -> evaluators -> results -> tables.

Generation (:mod:`.generate`), scoring (:mod:`.scoring`), reproduction of the paper's tables
(:mod:`.reproduce`), the command line (:mod:`.cli`, one module per command in
:mod:`.commands`) and the Python API (:mod:`.api`).
"""
