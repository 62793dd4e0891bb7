"""Scores files, contest accuracy metrics and beyond-accuracy metrics.

``scores`` reads, writes and checks the scores file (the contract between every
scorer and everything after it); ``ranking`` turns flat score lists into ranks;
``metrics`` computes AUC / MRR / nDCG / HR per impression over whole columns;
``beyond`` computes the beyond-accuracy metrics of the 250-candidate rows.
"""
