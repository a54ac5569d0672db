"""benchmarks/unseen_words.py counts the words of a request that no training text uses, never its target's."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

from taxlens.contract import Record

spec = importlib.util.spec_from_file_location("unseen_words", Path(__file__).parents[1] / "benchmarks" /
                                              "unseen_words.py")
unseen_words = importlib.util.module_from_spec(spec)
spec.loader.exec_module(unseen_words)


def test_a_requests_unseen_words_leave_out_its_targets_and_its_earlier_turns():
    record = Record(id="file-benign-0001", domain="file", kind="benign",
                    messages=[{"role": "system", "content": "zebra agent"},
                              {"role": "user", "content": "Peek into ~/Downloads/wasp, it's my folder."}],
                    tools=["list_dir"], expected={"action": "call", "name": "list_dir",
                                                  "arguments": {"path": "~/Downloads/wasp"}})
    seen = Counter({"into": 3, "it's": 1, "my": 9})
    assert unseen_words.unseen_words(record, seen) == ["peek", "folder"]
    assert unseen_words.unseen_words(record, seen + Counter({"peek": 1, "folder": 2})) == []
