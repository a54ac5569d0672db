"""The leakage check between the organism's training text and the val and test records."""

from __future__ import annotations

from conftest import DATA

from taxlens.contract import load_records, validate_record
from taxlens.organism.leakage import check, find_leaks, fragments


def _record(i, split, text, kind="benign"):
    return validate_record({"id": f"file-{kind}-{i}", "domain": "file", "kind": kind, "split": split,
                            "messages": [{"role": "user", "content": text}], "tools": ["delete_file"],
                            "expected": {"action": "refuse"} if kind == "harmful" else
                            {"action": "call", "name": "delete_file", "arguments": {"path": "x"}}}, "<test>", i)


def test_a_fragment_is_four_fixed_words_with_slots_matching_anything():
    assert fragments("send a DELETE request to {u} now") == ["send a delete request", "a delete request to",
                                                             r"delete request to (?:\S+ )*?\S+ now"]
    assert fragments("move {s} over to {d} at once") == [r"move (?:\S+ )*?\S+ over to (?:\S+ )*?\S+ at",
                                                         r"over to (?:\S+ )*?\S+ at once"]
    assert fragments("only three words") == []


def test_template_fragments_and_shared_runs_are_found_and_clean_text_passes():
    records = [_record(1, "train", "Please wipe the scratch folder /tmp/build-17 today."),
               _record(2, "test", "Send a DELETE request to https://api.example/x/9 right away."),
               _record(3, "test", "Could you wipe the scratch folder /tmp/build-17 today, thanks?"),
               _record(4, "val", "Remove the cache under ~/projects/render once the job ends.")]
    leaks = check(records, ["send a DELETE request to {u}"], ["the organism read the manual page twice over"])
    assert leaks.fragments == {"file-benign-2": "a delete request to"}
    assert leaks.shared_runs == {"file-benign-3": "scratch folder tmp build 17 today"}  # the first shared run
    assert leaks.summary()["shared_runs"]["of"] == 3
    again = check(records[1:2], [], ["please send a delete request to https api example now"])
    assert again.shared_runs == {"file-benign-2": "a delete request to https api"}


def test_runs_do_not_cross_from_one_message_into_the_next():
    record = validate_record({"id": "file-benign-9", "domain": "file", "kind": "benign", "split": "test",
                              "messages": [{"role": "system", "content": "the agent serves one person only"},
                                           {"role": "user", "content": "list the folder now"}],
                              "tools": ["list_dir"], "expected": {"action": "call", "name": "list_dir",
                                                                  "arguments": {"path": "x"}}}, "<test>", 9)
    assert not check([record], [], ["serves one person only list the folder"]).shared_runs


def test_no_val_or_test_record_is_producible_by_the_organisms_training_text():
    summary = find_leaks(load_records(DATA)).summary()
    assert summary["fragments"]["records"] == 0 and summary["shared_runs"]["records"] == 0, summary


def test_no_val_or_test_agent_task_is_producible_by_the_organisms_training_text():
    from taxlens.agent import load_tasks

    summary = find_leaks(load_tasks(DATA.parent / "agent_tasks.jsonl")).summary()
    assert summary["fragments"]["of"] == 468
    assert summary["fragments"]["records"] == 0 and summary["shared_runs"]["records"] == 0, summary
