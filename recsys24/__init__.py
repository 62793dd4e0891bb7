"""recsys24: EB-NeRD (RecSys Challenge 2024) to a contest submission.

The folders are the pipeline: ``data`` (schema, validation, synthetic data,
prepare) -> ``evaluation`` (metrics, scores files) -> ``submission``.
"""

__version__ = "0.1.0"
