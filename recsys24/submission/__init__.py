"""The contest submission: a zip holding ``predictions.txt``.

``write`` turns a test scores file into the zip; ``validate`` checks a zip
against the split before it is uploaded. Format (one line per behaviors row,
in behaviors order, beyond-accuracy rows included)::

    30777836 [6,3,5,2,4,7,8,1]

The bracket lists, for each in-view article in its given order, its rank
(1 = highest score); no spaces inside the brackets.
"""

PREDICTIONS = "predictions.txt"
