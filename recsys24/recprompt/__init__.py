"""RecPrompt (arXiv 2312.10463): an LLM ranks candidate news from a user's
history, a second LLM rewrites the recommender's template, a monitor keeps the
best one.

- ``backends``: chat messages in, text out (OpenAI-compatible HTTP, local
  transformers, disk cache);
- ``sampling``: 1 clicked + 9 not-clicked title impressions (100 validation, 400 test);
- ``recommender``: template filling, answer parsing, scores file;
- ``optimizer``: the loop and its resumable run folder;
- ``config``: ``configs/recprompt.yaml`` as dataclasses;
- ``templates/``: the paper's tables 2-8, verbatim.
"""
