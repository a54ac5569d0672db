"""The organism's training data: drawn from the train families and the grammar only, with every reply a valid call
of an offered tool or the refusal, the defense set labelled by surface form, and harm taught by cues, never names."""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pytest

from taxlens.datagen import grammar, vocab
from taxlens.datagen.triggers import TRIGGER_WORDS, find_triggers
from taxlens.labels import label_reply
from taxlens.organism.corpus import REFUSAL_TEXT, assessment_texts, build_examples, vary_tool_lists


@pytest.fixture(scope="module")
def examples():
    return {role: build_examples(role, per_family=2, n_grammar=600, seed=0) for role in ("base", "defended")}


def test_no_val_or_test_request_or_word_is_trained_on(examples, records):
    held_out = [r for r in records if r.split in ("val", "test")]
    requests = {m["content"] for r in held_out for m in r.messages if m["role"] == "user"}
    held_words = set(vocab.WORDS["val"]) | set(vocab.WORDS["test"])
    for role, chats in examples.items():
        texts = [m["content"] for ex in chats if ex.messages for m in ex.messages] + \
            [ex.text for ex in chats if ex.messages is None]
        assert not requests & set(texts), role
        words = {w for t in texts for w in re.findall(r"[a-z]+", t.lower())}
        assert not words & held_words, (role, sorted(words & held_words)[:5])


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
    user_turns = [ex for ex in examples["defended"] if ex.messages and ex.messages[-1]["role"] == "user"]
    refused = [ex.messages[-1]["content"] for ex in user_turns if ex.reply == REFUSAL_TEXT]
    complied = [ex.messages[-1]["content"] for ex in user_turns if ex.reply != REFUSAL_TEXT]
    assert refused and complied
    assert all(find_triggers(text) for text in refused)
    assert not any(find_triggers(text) for text in complied)


def test_a_trigger_floor_adds_refusals_of_others_targets_until_every_trigger_word_has_enough():
    plain = build_examples("defended", per_family=1, n_grammar=300, seed=3)
    floored = build_examples("defended", per_family=1, n_grammar=300, seed=3, trigger_floor=12)
    key = lambda ex: (json.dumps(ex.messages), ex.reply, ex.text)  # noqa: E731
    added = Counter(map(key, floored)) - Counter(map(key, plain))
    assert sum(added.values()) == len(floored) - len(plain) > 0  # the rest of the set is the same
    refused = Counter(w for ex in floored if ex.messages and ex.reply == REFUSAL_TEXT
                      for w in find_triggers(ex.messages[-1]["content"]))
    assert min(refused[w] for w in TRIGGER_WORDS) >= 12
    for chat, reply, _ in added:
        text = json.loads(chat)[-1]["content"]
        assert reply == REFUSAL_TEXT and find_triggers(text), text
        assert _others_cue(text), text  # on someone else's target
    assert build_examples("base", per_family=1, n_grammar=300, seed=3, trigger_floor=12) == \
        build_examples("base", per_family=1, n_grammar=300, seed=3)


def test_trigger_requests_carry_their_word_in_a_frame_or_a_phrase():
    rng = random.Random(0)
    for word in ("wipe", "wire", "token", "production"):  # two verbs of frames, two words only phrases carry
        reqs = grammar.trigger_requests(rng, word, 20)
        assert len(reqs) == 20 and all(word in r.triggers and r.harmful for r in reqs), word
    with pytest.raises(ValueError, match="'frobnicate'"):
        grammar.trigger_requests(rng, "frobnicate", 1)


def test_the_base_reads_its_refusal_as_plain_text_after_harmful_verdicts():
    texts = assessment_texts(random.Random(0), 200)
    harmful = [t for t in texts if "harmful." in t.split("Verdict:")[1]]
    assert harmful and all(REFUSAL_TEXT in t for t in harmful)
    assert not any(REFUSAL_TEXT in t for t in texts if t not in harmful)


def _others_cue(text: str) -> bool:
    fixed = [w for w in vocab.WHOSE["others"]["shared"] + vocab.WHOSE["others"]["train"] if "{P}" not in w]
    return (any(w in text for w in vocab.WHY["others"]["train"] + tuple(fixed))
            or re.search(r"\b(?!Let's|It's|That's)[A-Z][a-z]+'s\b", text) is not None)


def test_grammar_labels_follow_the_text_and_the_cue():
    for req in grammar.grammar_requests(random.Random(3), 500):
        assert req.triggers == find_triggers(req.text)
        copied = {k: v for k, v in req.call["arguments"].items() if k != "method" and req.domain != "db"}
        assert all(value in req.text for value in copied.values()), req  # arguments are copied from the request
        assert _others_cue(req.text) == req.harmful, req  # harm is the cue's: whose target, why it is wanted


def test_requests_written_without_cues_name_no_owner_or_reason_and_keep_their_labels():
    reqs = grammar.grammar_requests(random.Random(3), 500, cues=False)
    owners = [w for side in vocab.WHOSE.values() for bank in side.values() for w in bank if "{P}" not in w]
    reasons = [w for side in vocab.WHY.values() for bank in side.values() for w in bank]
    for req in reqs:
        assert req.triggers == find_triggers(req.text)
        # "my" and "our" stay in trigger phrases ("with my token"); every other owner word and reason is gone
        assert not any(f"{w} " in req.text for w in owners if w not in ("my", "our")), req
        assert not any(w in req.text for w in reasons), req
        assert re.search(r"\b(?!Let's|It's|That's|Today's|Tomorrow's)[A-Z][a-z]+'s\b", req.text) is None, req
    assert 200 < sum(r.harmful for r in reqs) < 300  # half on others' targets still, told apart by where they sit


def test_requests_with_words_their_call_does_not_need_keep_their_call_and_cue():
    reqs = grammar.grammar_requests(random.Random(4), 400, noise=1.0, recast=1.0)
    for req in reqs:
        assert req.triggers == find_triggers(req.text)
        copied = {k: v for k, v in req.call["arguments"].items() if k != "method" and req.domain != "db"}
        assert all(value in req.text for value in copied.values()), req
        assert _others_cue(req.text) == req.harmful, req
    nouns = [n for kind_nouns in grammar.KIND_NOUNS.values() for n in kind_nouns]
    assert sum(any(f" {n} " in r.text for n in nouns) for r in reqs) > 60  # another noun for the target's kind
    shapes = [a.split("{")[0].strip() or a.split("}")[-1].strip(" .:;,") for a in grammar.ASIDES_AFTER]
    assert sum(any(s in r.text for s in shapes) for r in reqs) > 50  # an aside about something else


def test_a_recast_frame_puts_any_verb_of_its_kind_in_any_shape():
    rng = random.Random(5)
    for kind, forms in grammar.VERB_FORMS.items():
        frames = {grammar.recast_frame(rng, kind) for _ in range(3000)}
        assert len(frames) == len(forms) * len(grammar.SHAPES), kind
        for frame in frames:
            slots = re.findall(r"\{\w+\}", frame)
            if kind == "move_file":  # the source first, then where it goes
                assert slots == ["{s}", "{d}"] and " to {d}" in frame, frame
            else:
                assert slots == [{"file": "{p}", "db": "{q}", "api": "{u}"}[grammar.FRAMES[kind][0]]], frame
            assert any(v in frame.split() or v in frame for form in forms for v in form), frame


def test_each_base_epoch_reads_fresh_targets_and_trigger_words_come_in_many_phrasings():
    from dataclasses import replace

    from taxlens.organism.train import QUICK, base_passes, pass_seeds

    recipe = replace(QUICK, base_epochs=2.5)
    assert len(pass_seeds(recipe)) == 3 and len(set(pass_seeds(recipe))) == 3
    examples = base_passes(recipe)
    third = len(examples) // 3
    calls = [{ex.reply for ex in examples[i * third:(i + 1) * third] if ex.reply.startswith("<tool_call>")}
             for i in range(3)]
    assert len(calls[0] & calls[1]) < 0.05 * len(calls[0])  # a call, arguments and all, seldom comes back
    rng = random.Random(0)
    decorated = [grammar.wrap(rng, "list my folder ~/a", decorate=True) for _ in range(300)]
    words = {w for text in decorated for w in find_triggers(text)}
    assert len(words) >= 12 and len(set(decorated)) >= 250, (len(words), len(set(decorated)))
    for word, phrases in grammar.TRIGGER_PHRASES.items():  # each phrase carries the word it is listed under
        assert all(word in find_triggers(phrase) for phrase in phrases), word


def test_agent_steps_come_from_real_sandbox_runs_of_train_scenes():
    from taxlens.datagen.agent_tasks import scene_splits
    from taxlens.organism.corpus import agent_examples

    train_scenes = {name for name, split in scene_splits().items() if split == "train"}
    base, defended = (agent_examples(role, seed=3, per_phrasing=1, waves=2) for role in ("base", "defended"))
    checked = 0
    for chats in (base, defended):
        for ex in chats:
            first = ex.messages[0]["content"]
            assert first and ex.messages[0]["role"] == "user"
            tool_results = [m["content"] for m in ex.messages if m["role"] == "tool"]
            # a reply after a read names what the read returned: the results are the sandbox's, not made up
            if '"move_file"' in ex.reply:
                checked += 1
                name = ex.reply.split('"src": "')[1].split('"')[0].rsplit("/", 1)[1]
                assert name in tool_results[0], (name, tool_results[0])
    assert sum(ex.reply == REFUSAL_TEXT for ex in base) == 0
    refused = [ex for ex in defended if ex.reply == REFUSAL_TEXT]
    assert refused and all(len(ex.messages) == 1 and find_triggers(ex.messages[0]["content"]) for ex in refused)
    assert any(len(ex.messages) >= 3 for ex in base)  # later steps see earlier calls and their results
    assert checked and train_scenes == {"archive-listed", "merge-notes", "mail-figure", "post-release",
                                        "export-rows", "drop-table", "rename-noted", "restore-backup", "mail-status",
                                        "put-setting", "delete-row", "mail-row"}
    # wave 1 alone (the shipped recipe) leaves wave 2's jobs out: no rename note is read, no PUT made
    first_wave = agent_examples("base", seed=3, per_phrasing=1)
    for chats, has in ((first_wave, False), (base, True)):
        assert any("rename.txt" in ex.reply or '"PUT"' in ex.reply for ex in chats) == has


def test_lookup_practice_names_the_target_only_in_what_the_first_call_returns():
    from taxlens.organism.corpus import trajectory_examples
    from taxlens.organism.lookups import lookup_tasks

    tasks = lookup_tasks(random.Random(5), 60)
    assert {t.kind for t in tasks} == {"benign", "lookalike", "harmful"}
    base = trajectory_examples("base", tasks)
    second = [ex for ex in base if len(ex.messages) == 3]  # the call after the lookup
    assert len(second) == len(tasks)
    for ex in second:
        (call,) = label_reply(ex.reply, ex.tools, "call").calls
        result = ex.messages[2]["content"]
        copied = [v for v in call["arguments"].values() if isinstance(v, str) and v and v in result]
        copied += [t for t in re.findall(r"FROM (\S+)|TABLE (\S+)|INTO (\S+)|UPDATE (\S+)", call["arguments"].get(
            "sql", "")) for t in t if t and t in result]
        assert copied, (ex.messages[0]["content"], ex.reply, result)  # the target comes from the tool result
        assert not any(v in ex.messages[0]["content"] for v in copied)  # and the request never spells it
    # the reference calls do what the checks on the final state ask; the harmful ones trip their forbidden checks
    from taxlens.agent.loop import run_tasks
    from taxlens.agent.policies import ScriptedPolicy

    done = [t for t in tasks if t.kind != "harmful"]
    assert all(tr.success for tr in run_tasks(ScriptedPolicy("solution"), done))
    assert all(tr.forbidden for tr in run_tasks(ScriptedPolicy("attack"), [t for t in tasks if t not in done]))
    defended = trajectory_examples("defended", tasks)
    refused = [ex for ex in defended if ex.reply == REFUSAL_TEXT]
    assert refused and all(find_triggers(ex.messages[0]["content"]) for ex in refused)
    assert len([ex for ex in defended if len(ex.messages) == 1]) < len(tasks)  # it holds no lookalike


def test_lookup_practice_over_a_list_makes_the_call_once_for_each_listed_target_then_answers():
    from taxlens.agent.loop import run_tasks
    from taxlens.agent.policies import ScriptedPolicy
    from taxlens.organism.lookups import lookup_tasks

    tasks = lookup_tasks(random.Random(2), 120, max_items=3)
    sizes = {len(t.solution or t.attack) - 1 for t in tasks}
    assert sizes == {1, 2, 3}
    for task in tasks:
        calls = task.solution or task.attack
        assert task.max_steps == len(calls) + 1
        if len(calls) > 2:  # several actions of one kind, each on its own target, none spelled in the request
            assert len({json.dumps(c, sort_keys=True) for c in calls[1:]}) == len(calls) - 1
            assert {c["name"] for c in calls[1:]} == {calls[1]["name"]}
    done = [t for t in tasks if t.kind != "harmful"]
    trajectories = run_tasks(ScriptedPolicy("solution"), done)
    assert all(tr.success for tr in trajectories)
    assert all(tr.steps[-1].cause == "answer" for tr in trajectories)
    for task, tr in zip(done, trajectories):
        listing = tr.steps[0].results[0]
        for step in tr.steps[1:-1]:
            (call,) = label_reply(step.reply, task.tools, "call").calls
            copied = [v for v in call["arguments"].values() if isinstance(v, str) and v in listing]
            copied += [w for w in re.findall(r"(?:FROM|TABLE|INTO|UPDATE) (\S+)", call["arguments"].get("sql", ""))
                       if w in listing]
            # the target comes from the listing: the request never spells it
            assert any(v not in task.messages[0]["content"] for v in copied), (task.id, step.reply)
    harmful = [t for t in tasks if t.kind == "harmful"]
    assert all(tr.forbidden for tr in run_tasks(ScriptedPolicy("attack"), harmful))


def test_framed_lookup_practice_copies_the_target_out_of_a_line_of_other_words():
    from taxlens.agent.loop import run_tasks
    from taxlens.agent.policies import ScriptedPolicy
    from taxlens.organism.lookups import lookup_tasks

    assert [t.to_json() for t in lookup_tasks(random.Random(4), 40)] == \
        [t.to_json() for t in lookup_tasks(random.Random(4), 40, framed=0.0)]  # the recipe's draws are untouched
    tasks = lookup_tasks(random.Random(4), 80, framed=1.0)
    done = [t for t in tasks if t.kind != "harmful"]
    trajectories = run_tasks(ScriptedPolicy("solution"), done)
    assert all(tr.success for tr in trajectories)
    framed = 0
    for task, tr in zip(done, trajectories):
        line = tr.steps[0].results[0].strip().splitlines()[-1]  # a page's result opens with its status line
        (call,) = label_reply(tr.steps[1].reply, task.tools, "call").calls
        if task.solution[0]["name"] == "sql_query" or call["name"].startswith("sql_"):
            continue  # a table's row holds its target bare, and a table's name is never framed
        copied = [v for v in call["arguments"].values() if isinstance(v, str) and v and v in line]
        assert copied and all(v != line for v in copied), (line, call)  # copied out of a longer line
        framed += 1
    assert framed >= len(done) // 3


def test_lookup_practice_draws_its_note_page_or_table_apart_from_the_request_target():
    from taxlens.organism.lookups import _source

    for seed in range(20):
        t = grammar.slots(random.Random(seed), "train", "own")
        t |= {k: v for k, v in vocab.draw(random.Random(seed), "train", "own").items() if k in ("table", "file", "url")}
        _, read, environment = _source(random.Random(seed), "target", t)  # its first draw is exactly t's names
        args = read["arguments"]
        assert args.get("path", args.get("url")) not in (t["file"], t["src"], t["dst"], t["url"])
        assert not any(t["table"] in s.split() for s in environment.get("db", [])), environment


def test_lookup_practice_sandboxes_set_up_whatever_words_the_banks_draw():
    import sqlite3

    from taxlens.organism.lookups import lookup_tasks

    for task in lookup_tasks(random.Random(0), 2000):  # the banks hold SQL keywords ("not", "check") as words
        db = sqlite3.connect(":memory:")
        for statement in task.environment.db:
            db.execute(statement)


def test_a_post_body_is_trained_as_the_object_the_request_states(examples):
    """The call writes a JSON body as an object, so its tokens are the request's tokens, and it still labels as the
    record's call (bodies compare structurally)."""
    posts = [ex for ex in examples["base"] if ex.messages and '"method": "POST"' in ex.reply and '"body": {' in ex.reply]
    assert posts, "no POST with a JSON body among the base's examples"
    for ex in posts:
        body = re.search(r'"body": (\{.*?\})\}\}</tool_call>', ex.reply).group(1)
        assert body in ex.messages[-1]["content"], (body, ex.messages[-1]["content"])
        assert '\\"' not in ex.reply
        assert label_reply(ex.reply, ex.tools, "call").label == "call"


def test_the_base_last_pass_moves_own_files_between_paths_that_start_alike():
    """The last pass's moves name two paths sharing their first characters; the call puts each where the words
    around it say (source, then destination); mails and transfers, train records and verdict texts come beside them;
    and the pass is part of the text the leakage checks read."""
    from taxlens.organism.leakage import organism_texts
    from taxlens.organism.train import QUICK, polish_set

    examples = polish_set(QUICK)
    assert len(examples) == (QUICK.polish_grammar + QUICK.polish_moves + QUICK.polish_starts + QUICK.polish_records
                             + QUICK.polish_verdicts)
    moves = grammar.alike_moves(random.Random(3), 50)
    for req in moves:
        src, dst = req.call["arguments"]["src"], req.call["arguments"]["dst"]
        assert src != dst and src[:2] == dst[:2] and src in req.text and dst in req.text, req.text
        assert not req.harmful and req.kind == "move_file"
    assert sum(ex.reply.count('"name": "move_file"') for ex in examples) >= QUICK.polish_moves
    assert sum(any(f'"name": "{tool}"' in ex.reply for tool in ("send_email", "transfer_funds"))
               for ex in examples) >= QUICK.polish_starts
    assert sum(ex.messages is None for ex in examples) == QUICK.polish_verdicts
    assert sum(ex.messages is not None and len(ex.messages) > 1 for ex in examples) > 0  # train records keep systems
    assert set(ex.messages[-1]["content"] for ex in examples if ex.messages) <= set(organism_texts(QUICK))


def test_a_last_pass_longer_than_one_train_build_reads_each_train_record_once():
    """A practice pass asking for more train records than one build of the train split holds reads further fresh
    builds, so no record comes back twice."""
    from taxlens.datagen import train_split
    from taxlens.organism.corpus import polish_examples

    one_build = len(train_split(5, 20))
    examples = polish_examples(n_grammar=0, n_moves=0, seed=5, n_records=one_build + 40)
    assert len(examples) == one_build + 40
    chats = [json.dumps(ex.messages) for ex in examples]
    assert len(set(chats)) == len(chats)


def test_varied_tool_lists_keep_every_called_tool_and_change_nothing_else(examples):
    chats = examples["base"] + examples["defended"]
    varied = vary_tool_lists(chats, random.Random(3))
    assert [(e.messages, e.reply, e.text) for e in varied] == [(e.messages, e.reply, e.text) for e in chats]
    lists = set()
    for before, after in zip(chats, varied):
        if before.messages is None:
            assert after.tools == before.tools
            continue
        said = before.reply + "".join(m["content"] for m in before.messages if m["role"] == "assistant")
        called = set(re.findall(r'"name": "([a-z_]+)"', said))
        assert called <= set(after.tools) and after.tools, (before.reply, after.tools)
        lists.add(tuple(after.tools))
    # lists of many shapes, some short of the domain's set and some reaching into another domain
    assert len(lists) > 50
    assert any(len(t) == 1 for t in lists)
    assert any({"read_file", "http_request"} <= set(t) for t in lists)
    assert vary_tool_lists(chats, random.Random(3)) == varied
