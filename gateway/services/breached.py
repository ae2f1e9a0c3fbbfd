"""Compromised-credential detection: is a password one that attackers try first?

Cognito's threat protection checks passwords against credentials seen in breaches ("Working with
compromised-credentials detection"). Gatehouse has no breach feed; it checks against the 30,000 most common
passwords of real leaks that zxcvbn (Dropbox's password strength estimator, on PyPI) ships in its frequency
lists -- the passwords a credential-stuffing or spraying run tries first. Matching ignores case (the list is
lower-case), so ``Password1`` counts as ``password1``.

The list is turned into a frozenset once, lazily, in an executor (importing the lists module and building the
set takes a few tens of milliseconds), so neither start-up nor the event loop pays for it; every look-up after
that is one hash-set membership test. Only pools with threat protection on ever load it.
"""

from __future__ import annotations

import asyncio
import threading

__all__ = ["BreachedPasswords"]


def _load_corpus() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


class BreachedPasswords:
    """The corpus, loaded once per process on first use."""

    def __init__(self) -> None:
        self._corpus: frozenset[str] | None = None
        self._lock = threading.Lock()

    def _corpus_sync(self) -> frozenset[str]:
        with self._lock:
            if self._corpus is None:
                self._corpus = _load_corpus()
            return self._corpus

    async def is_compromised(self, password: str) -> bool:
        """Whether ``password`` is in the corpus (case-insensitively)."""
        corpus = self._corpus
        if corpus is None:
            corpus = await asyncio.get_running_loop().run_in_executor(None, self._corpus_sync)
        return password.lower() in corpus

    def __len__(self) -> int:
        return len(self._corpus_sync())
