"""The PGNR-style mT5 recommenders CG, CGc, QA and QA+ behind one interface (see ``base.py``)."""
