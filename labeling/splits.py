"""Stable split assignment: a row's split is a pure function of its content, fixed at import."""

import hashlib


def stable_point(key: str) -> float:
    """A point in [0, 1) fixed by ``key``: the same draw on every machine and every run."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


def stable_split(key: str, *, eval_fraction: float, test_fraction: float = 0.0) -> str:
    """'train', 'eval' or 'test' from a SHA-256 of ``key`` (never Python's salted ``hash``)."""
    if not (0 <= eval_fraction <= 1 and 0 <= test_fraction <= 1 and eval_fraction + test_fraction <= 1):
        raise ValueError("eval_fraction and test_fraction must be in 0..1 and sum to at most 1")
    point = stable_point(key)
    if point < eval_fraction:
        return "eval"
    if point < eval_fraction + test_fraction:
        return "test"
    return "train"
