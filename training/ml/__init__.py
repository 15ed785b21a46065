"""The ML of RankForge: a pure package that never imports Django. Runnable as ``python -m training.ml``."""
