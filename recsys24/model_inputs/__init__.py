"""Model inputs: prepared rows -> the batches every model family reads.

Between ``prompts/`` (article token tables, prompt assembly) and ``models/``:
``candidates.py`` (the candidates and labels of a frame, shared by every
collator), ``batches.py`` (the batch types), one collator per input kind
(``prompt_collator.py``: CG, CGc, QA, QA+; ``history_collator.py``: CGh;
``news_collator.py``: the neural family, with its per-article features),
``prefetch.py`` (collate the next batch on a thread) and ``preview.py``
(``recsys24 prompts preview``). Prompt token ids are assembled only through
:mod:`recsys24.prompts.assemble`.
"""
