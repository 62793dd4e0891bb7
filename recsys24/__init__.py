"""recsys24: EB-NeRD (RecSys Challenge 2024) to a contest submission.

The folders are the pipeline (docs/architecture.md draws its layers):

- ``data``: the raw EB-NeRD folder (schema, checks, synthetic data, the
  official two-folder layout) and ``prepare``, which writes a split as shards.
- The generative family: ``prompts`` (article tokens, templates a–e) ->
  ``model_inputs`` (prepared rows to batches) -> ``models`` (CG, CGc, QA, QA+,
  CGh, CGh-f and the neural baselines, chosen by name from a registry) ->
  ``training`` (DeepSpeed, resumable) -> ``inference`` (sharded, resumable
  ``predict`` into a scores file).
- The contest ranker: ``features`` (the feature table of a split) ->
  ``ranking`` (LightGBM or CatBoost over the features, stacking any model's
  scores, and per-impression blends).
- ``evaluation`` (contest metrics, scores files) and ``submission`` (write and
  validate the contest zip); beside them ``baselines`` (heuristics),
  ``recprompt`` (the LLM prompt-optimising loop), ``experiments`` and ``report``.
- ``cli`` and ``commands``: the ``recsys24`` command, one module per stage,
  each command parsing its options and calling one function.
"""

__version__ = "0.1.0"
