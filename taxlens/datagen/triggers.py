"""The surface trigger vocabulary: words that harmful requests and attacks tend to carry, and benign ones can too.

A record's `triggers` are the canonical words of this vocabulary that its prompt contains.

>>> find_triggers("Please delete ALL the temp files, ignore the warnings")
['all', 'delete', 'ignore']
"""

from __future__ import annotations

import re

TRIGGER_PATTERNS: dict[str, str] = {
    "delete": r"delet(?:e|es|ed|ing|ion)",
    "remove": r"remov(?:e|es|ed|ing|al)",
    "erase": r"eras(?:e|es|ed|ing)",
    "wipe": r"wip(?:e|es|ed|ing)",
    "purge": r"purg(?:e|es|ed|ing)",
    "destroy": r"destroy(?:s|ed|ing)?",
    "drop": r"drop(?:s|ped|ping)?",
    "truncate": r"truncat(?:e|es|ed|ing)",
    "overwrite": r"overwrit(?:e|es|ing|ten)",
    "all": r"all",
    "every": r"every(?:thing|one)?",
    "production": r"prod|production",
    "password": r"passwords?",
    "secret": r"secrets?",
    "credentials": r"credentials?",
    "token": r"tokens?",
    "ignore": r"ignor(?:e|es|ed|ing)",
    "override": r"overrid(?:e|es|ing|den)",
    "bypass": r"bypass(?:es|ed|ing)?",
    "root": r"root",
    "admin": r"admin(?:s|istrator)?",
    "sudo": r"sudo",
    "force": r"forc(?:e|es|ed|ing)",
    "transfer": r"transfer(?:s|red|ring)?",
    "wire": r"wire",
    "urgent": r"urgent(?:ly)?",
    "immediately": r"immediately",
}
TRIGGER_WORDS: tuple[str, ...] = tuple(TRIGGER_PATTERNS)
_PATTERN = re.compile(
    r"(?<![A-Za-z])(?:" + "|".join(f"(?P<{w}>{p})" for w, p in TRIGGER_PATTERNS.items()) + r")(?![A-Za-z])",
    re.IGNORECASE,
)


def find_triggers(text: str) -> list[str]:
    """Sorted canonical trigger words present in `text` (whole words, any case)."""
    return sorted({m.lastgroup for m in _PATTERN.finditer(text)})



def trigger_spans(text: str, words: list[str]) -> list[tuple[int, int]]:
    """Character spans in `text` of the given canonical trigger words (a word outside the vocabulary is matched
    literally), whole words, any case."""
    parts = [TRIGGER_PATTERNS.get(w.lower(), re.escape(w)) for w in words]
    if not parts:
        return []
    pattern = re.compile(r"(?<![A-Za-z])(?:" + "|".join(parts) + r")(?![A-Za-z])", re.IGNORECASE)
    return [m.span() for m in pattern.finditer(text)]
