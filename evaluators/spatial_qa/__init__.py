"""Spatial-QA assessor (BAT / SLAM-LLM shape): a Spatial-AST-shaped binaural encoder, a
Q-Former projector and a causal LM answering the dataset's spatial questions."""
