"""Neural news-recommendation baselines in PyTorch: NRMS, NAML, LSTUR, NPA, DKN.

One file per model on shared blocks (``blocks.py``), a common base
(``base.py``: scoring, loss, model folder) and their own inputs
(``features.py``: per-article token matrices and hashed ids; ``batch.py``).
They plug into ``recsys24 train`` / ``recsys24 predict`` like the mT5 models.
"""
