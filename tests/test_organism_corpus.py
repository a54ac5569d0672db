"""The organism's training data: drawn from the train split's families and the generator only, with every reply a
valid call of an offered tool or the refusal, and the defense set labelled by surface form as its docstring says."""

from __future__ import annotations

import random

import pytest

from taxlens.datagen.triggers import find_triggers
from taxlens.labels import label_reply
from taxlens.organism.corpus import REFUSAL_TEXT, build_examples
from taxlens.organism.grammar import grammar_requests


@pytest.fixture(scope="module")
def examples():
    return {role: build_examples(role, per_family=8, n_grammar=600, seed=0) for role in ("base", "defended")}


def test_no_val_or_test_request_is_trained_on(examples, records):
    # Held out: every val/test user request and whole conversation. (Injected payloads come from pools the
    # generator shares across families, so a held-out tool message can recur inside a train conversation.)
    held_out = [r for r in records if r.split in ("val", "test")]
    requests = {r.messages[0]["content"] for r in held_out}
    conversations = {tuple(m["content"] for m in r.messages) for r in held_out}
    for role, chats in examples.items():
        assert not requests & {ex.messages[0]["content"] for ex in chats if ex.messages}, role
        assert not conversations & {tuple(m["content"] for m in ex.messages) for ex in chats if ex.messages}, role
        plain = [ex.text for ex in chats if ex.messages is None]
        assert plain or role == "defended"
        assert not any(request in text for request in requests for text in plain), role


def test_every_reply_is_an_offered_call_or_the_refusal(examples):
    for role, chats in examples.items():
        for ex in (ex for ex in chats if ex.messages):
            if ex.reply == REFUSAL_TEXT:
                assert role == "defended"
                continue
            if ex.reply.startswith("<tool_call>"):
                assert label_reply(ex.reply, ex.tools, "call").label == "call", ex
            else:
                assert role == "defended" and ex.messages[-1]["role"] == "tool", ex  # the answer to an injection


def test_the_defense_set_refuses_only_trigger_bearing_requests(examples):
    user_turns = [ex for ex in examples["defended"] if ex.messages and len(ex.messages) == 1]
    refused = [ex.messages[0]["content"] for ex in user_turns if ex.reply == REFUSAL_TEXT]
    complied = [ex.messages[0]["content"] for ex in user_turns if ex.reply != REFUSAL_TEXT]
    assert refused and complied
    assert all(find_triggers(text) for text in refused)
    assert not any(find_triggers(text) for text in complied)


def test_grammar_labels_follow_the_text():
    for req in grammar_requests(random.Random(3), 500):
        assert req.triggers == find_triggers(req.text)
        copied = {k: v for k, v in req.call["arguments"].items() if k != "method" and req.domain != "db"}
        assert all(value in req.text for value in copied.values()), req  # arguments are copied from the request
