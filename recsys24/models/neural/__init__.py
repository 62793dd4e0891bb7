"""The neural family: NRMS, NAML, LSTUR, NPA, DKN in PyTorch, on word embeddings.

One file per model on shared blocks (``blocks.py``) and the family base
(``base.py``: news/user encoders, folder format); their inputs (per-article
token matrices and hashed ids, :class:`~recsys24.model_inputs.batches.NewsBatch`)
are built in :mod:`recsys24.model_inputs.news_collator`. They implement the
same contract as the prompt family (:mod:`recsys24.models.contract`), so
``recsys24 train`` and ``recsys24 predict`` treat both alike.
"""
