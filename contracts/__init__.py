"""Contracts between the web side (the Django apps) and ``training/ml``: the formats both read and
write, each defined once. Pure Python: these modules import the standard library and nothing else
(no Django, no torch, nothing of ours), so ``training/ml`` may import them too (tests/test_tooling.py
checks both directions).

- :mod:`contracts.orders`: a ranking's stored ``orders`` (and a comparison's gold order): how they
  are written, read, and what happens to a malformed one;
- :mod:`contracts.pairs`: the columns of a snapshot's pair files;
- :mod:`contracts.events`: the JSON-lines events a run's process writes for its supervisor;
- :mod:`contracts.principles`: what a valid constitution principle list is.
"""
