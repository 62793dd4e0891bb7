"""Learning to rank over the feature table: ``recsys24 rank train`` and ``recsys24 rank predict``.

``data`` reads features folders (and any stacked scores files) into LightGBM's
input, with labels, impression groups, an impression sample and a user
hold-out; ``lgbm`` trains, saves and applies the LightGBM lambdarank model.
"""
