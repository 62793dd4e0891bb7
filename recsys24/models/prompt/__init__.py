"""The prompt family: CG, CGc, CGh, QA, QA+ on an mT5 backbone.

Each reads prompts assembled from article token ids (templates a–e,
:mod:`recsys24.prompts`); one file per architecture on the family base
(``base.py``: backbone, score head, folder format). CGh's fast scoring path is
``cached_decoder.py``.
"""
