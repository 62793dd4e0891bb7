"""Sharded, batched, resumable scoring of prepared splits (``recsys24 predict``)."""
