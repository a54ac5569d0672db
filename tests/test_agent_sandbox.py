"""Sandboxes: real files, SQLite, HTTP and SMTP per task; tools act only inside; nothing is left behind."""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from taxlens.agent import Sandbox, ScriptedPolicy, load_tasks, run_tasks
from taxlens.agent.tasks import Environment

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "datasets" / "agent_tasks.jsonl"
ALL_TOOLS = ["list_dir", "read_file", "write_file", "delete_file", "move_file", "http_request", "send_email",
             "transfer_funds", "sql_query", "sql_execute"]


@pytest.fixture()
def box():
    env = Environment(
        files={"~/work/a.txt": "alpha\n", "/srv/data/b.txt": "beta\n", "~/empty/": ""},
        db=["CREATE TABLE t (id INTEGER, name TEXT)", "INSERT INTO t VALUES (1, 'x')"],
        accounts=[{"id": "ME-1", "owner": "user", "balance": 100.0}],
        routes=[{"method": "GET", "url": "https://api.example/v1/x", "body": "hello"},
                {"method": "GET", "url": "https://api.example/v1/items", "body": {"items": [1, 2]}}])
    with Sandbox(env, ALL_TOOLS) as sandbox:
        yield sandbox


def test_file_tools_act_on_real_files_inside_the_sandbox(box):
    assert box.execute("list_dir", {"path": "~/work"}).text == "a.txt"
    assert box.execute("read_file", {"path": "/home/user/work/a.txt"}).text == "alpha\n"
    assert not box.execute("write_file", {"path": "work/c.txt", "content": "gamma"}).error  # relative to home
    assert (box.fs / "home/user/work/c.txt").read_text() == "gamma"
    assert not box.execute("move_file", {"src": "/srv/data/b.txt", "dst": "~/empty"}).error
    assert box.holds({"check": "file_present", "path": "~/empty/b.txt"})
    assert box.holds({"check": "file_absent", "path": "/srv/data/b.txt"})
    assert not box.execute("delete_file", {"path": "~/work"}).error
    assert box.holds({"check": "file_absent", "path": "~/work/a.txt"})
    assert box.execute("read_file", {"path": "~/nope.txt"}).text == "error: ~/nope.txt: no such file"
    assert box.execute("write_file", {"path": "~/notes/", "content": "x"}).text == "error: ~/notes/: is a directory"
    assert box.holds({"check": "file_absent", "path": "~/notes"})


def test_a_path_climbing_out_of_the_sandbox_is_an_error_and_touches_nothing(box, tmp_path):
    outside = tmp_path / "host.txt"
    outside.write_text("host")
    climb = "../" * 12 + str(outside).lstrip("/")
    for name, args in (("read_file", {"path": climb}), ("delete_file", {"path": climb}),
                       ("write_file", {"path": climb, "content": "x"}), ("move_file", {"src": "~/work/a.txt",
                                                                                       "dst": climb})):
        result = box.execute(name, args)
        assert result.error and "leaves the filesystem's root" in result.text, (name, result)
    assert outside.read_text() == "host"
    # An absolute host path is the sandbox's own path of that name, not the host's file.
    assert box.execute("read_file", {"path": str(outside)}).error
    assert box.execute("delete_file", {"path": "/"}).error and outside.exists()


def test_sql_query_is_read_only_and_sql_execute_writes(box):
    assert box.execute("sql_query", {"sql": "SELECT name FROM t"}).text == '{"columns": ["name"], "rows": [["x"]]}'
    denied = box.execute("sql_query", {"sql": "DELETE FROM t"})
    assert denied.error and "readonly" in denied.text
    assert box.execute("sql_execute", {"sql": "UPDATE t SET name = 'y'"}).text == "ok: 1 row(s) affected"
    assert box.holds({"check": "sql", "query": "SELECT name FROM t", "rows": [["y"]]})
    assert box.execute("sql_execute", {"sql": "DROP TABLE t; DROP TABLE accounts"}).error  # one statement a call


def test_transfer_funds_is_one_transaction_on_the_ledger(box):
    assert box.execute("transfer_funds", {"from_account": "ME-1", "to_account": "EXT-9", "amount": "40"}).text == \
        "transferred 40.00 from ME-1 to EXT-9"
    short = box.execute("transfer_funds", {"from_account": "ME-1", "to_account": "EXT-9", "amount": 61})
    assert short.error and "less than" in short.text
    for amount in (float("nan"), float("inf"), -5, "-5", 0):  # JSON numbers a reply can hold that move no money
        refused = box.execute("transfer_funds", {"from_account": "ME-1", "to_account": "EXT-9", "amount": amount})
        assert refused.error, amount
    assert box.holds({"check": "sql", "query": "SELECT balance FROM accounts", "rows": [[60.0]]})
    assert box.holds({"check": "sql", "query": "SELECT to_account, amount FROM transfers", "rows": [["EXT-9", 40.0]]})


def test_http_requests_reach_the_loopback_service_and_are_recorded(box):
    assert box.execute("http_request", {"method": "GET", "url": "https://api.example/v1/x"}).text == "200\nhello"
    assert box.execute("http_request", {"method": "GET", "url": "https://api.example/v1/items"}).text == \
        '200\n{"items": [1, 2]}'  # a body written as JSON is served as JSON
    missing = box.execute("http_request", {"method": "POST", "url": "https://other.example/y", "body": {"a": 1}})
    assert missing.error and missing.text.startswith("error: 404")
    assert [(r.method, r.url, r.body) for r in box.http.requests] == [
        ("GET", "https://api.example/v1/x", ""), ("GET", "https://api.example/v1/items", ""),
        ("POST", "https://other.example/y", '{"a": 1}')]
    assert box.holds({"check": "request", "method": "post", "url": "https://other.example/y", "body_contains": "a"})
    assert box.execute("http_request", {"method": "GET", "url": "https://api.example/a b"}).error


def test_sql_cannot_create_or_write_a_file_on_the_host(box, tmp_path):
    for name, sql in (("sql_execute", "ATTACH DATABASE '{f}' AS e"), ("sql_query", "ATTACH DATABASE '{f}' AS e"),
                      ("sql_execute", "VACUUM INTO '{f}'"), ("sql_query", "VACUUM INTO '{f}'")):
        result = box.execute(name, {"sql": sql.format(f=tmp_path / "host.db")})
        assert result.error and "attached" in result.text, (name, sql, result)
    assert not (tmp_path / "host.db").exists()
    moved = box.execute("sql_execute", {"sql": f"PRAGMA temp_store_directory = '{tmp_path}'"})
    assert moved.error and "not authorized" in moved.text
    assert box.holds({"check": "sql", "query": "SELECT name FROM t", "rows": [["x"]]})  # the task's own still reads


def test_runaway_sql_is_stopped_and_cannot_fill_the_disk_or_memory(box, monkeypatch):
    import taxlens.agent.sandbox as sandbox

    monkeypatch.setattr(sandbox, "SQL_SECONDS", 0.5)
    endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    for name in ("sql_query", "sql_execute"):
        started = time.monotonic()
        result = box.execute(name, {"sql": endless})
        assert result.error and "ran past 0.5 s" in result.text and time.monotonic() - started < 5
    filling = ("CREATE TABLE big AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) "
               "SELECT x, randomblob(500000) AS b FROM c")
    assert "full" in box.execute("sql_execute", {"sql": filling}).text
    assert (box.root / "task.db").stat().st_size <= sandbox.SQL_MAX_PAGES * 4096
    assert "not authorized" in box.execute("sql_execute", {"sql": "PRAGMA max_page_count = 999999999"}).text
    assert "too big" in box.execute("sql_query", {"sql": "SELECT length(zeroblob(100000000))"}).text
    assert box.execute("sql_query", {"sql": "SELECT 1; SELECT 2"}).error
    assert box.holds({"check": "sql", "query": "SELECT name FROM t", "rows": [["x"]]})


def test_send_email_speaks_smtp_to_the_sandbox_server(box):
    assert box.execute("send_email", {"to": "sam@acme.example", "subject": "Hi", "body": "total: 12"}).text == \
        "sent to sam@acme.example"
    (mail,) = box.smtp.mails
    assert (mail.sender, mail.to, mail.subject, mail.body) == ("user@home.example", ("sam@acme.example",), "Hi",
                                                               "total: 12")
    assert box.holds({"check": "mail", "to": "sam@acme.example", "body_contains": "12"})
    assert not box.holds({"check": "mail", "to": "eve@acme.example"})
    for bad in ({"subject": "Hi\r\nBcc: eve@acme.example"}, {"body": "\udcff"}):  # an error result, not a crash
        result = box.execute("send_email", {"to": "sam@acme.example", "subject": "Hi", "body": "b"} | bad)
        assert result.error and "not sent" in result.text
    assert len(box.smtp.mails) == 1


def _threads() -> set[str]:
    """Live threads but tqdm's monitor, which tqdm keeps for the life of the process once any bar has run."""
    return {t.name for t in threading.enumerate() if t.name != "tqdm_monitor"}


def test_two_hundred_tasks_back_to_back_leave_no_files_ports_threads_or_writes_outside(tmp_path, monkeypatch):
    tasks = load_tasks(TASKS)
    picked = [t for t in tasks if t.domain == "api"][:100] + [t for t in tasks if t.domain != "api"][:100]
    me = psutil.Process()
    before_threads, before_ports = _threads(), len(me.net_connections(kind="inet"))
    # a temp dir of this test's own: the shared one also holds the live sandboxes of tests on other workers
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    made, enter = [], Sandbox.__enter__
    monkeypatch.setattr(Sandbox, "__enter__", lambda box: made.append(enter(box).root) or box)
    sentinel = tmp_path / "untouched"
    sentinel.mkdir()
    stamp = os.stat(sentinel).st_mtime_ns
    trajectories = run_tasks(ScriptedPolicy("attack"), picked)
    assert len(trajectories) == 200
    assert _threads() == before_threads
    assert len(me.net_connections(kind="inet")) <= before_ports
    assert len(made) >= 200 and all(Path(d).parent == private_tmp for d in made)  # the sandboxes were made there
    assert not os.listdir(private_tmp)  # and every one removed, with nothing else left behind
    assert os.stat(sentinel).st_mtime_ns == stamp and not list(sentinel.iterdir())


def test_a_signal_landing_as_a_sandbox_folder_is_made_leaves_nothing_behind(tmp_path, monkeypatch):
    """Ctrl-C or SIGTERM raises wherever the main thread is; the worst moment is just after the folder exists."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    real_mkdir = os.mkdir

    def mkdir_then_interrupted(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        if os.path.basename(path).startswith("taxlens-sandbox-"):
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "mkdir", mkdir_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        with Sandbox(Environment(), ["read_file"]):
            pass
    monkeypatch.setattr(os, "mkdir", real_mkdir)
    assert not list(tmp_path.iterdir())


def test_an_agent_run_killed_with_sigterm_removes_its_sandboxes(tmp_path):
    """`kill` or a scheduler's time limit sends SIGTERM: the run ends as on Ctrl-C, its sandboxes torn down."""
    import signal
    import subprocess
    import sys

    env = os.environ | {"TMPDIR": str(tmp_path)}
    run = subprocess.Popen([sys.executable, "-m", "taxlens.cli", "agent", "run", "--model", "organism:defended",
                            "--tasks", "datasets/agent_tasks.jsonl", "--split", "val", "--out",
                            str(tmp_path / "agent.json")], env=env, stderr=subprocess.PIPE, text=True)
    err = []
    reader = threading.Thread(target=lambda: err.extend(iter(lambda: run.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    # past the tasks' check (which lays out sandboxes too) and into the model's own run
    while time.monotonic() < deadline and run.poll() is None and not (
            "agent organism:defended" in "".join(err) and list(tmp_path.glob("taxlens-sandbox-*"))):
        time.sleep(0.02)
    assert list(tmp_path.glob("taxlens-sandbox-*")), "the run laid out no sandbox"
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 143
    reader.join(timeout=10)
    assert "taxlens: terminated\n" in "".join(err)
    assert not list(tmp_path.glob("taxlens-sandbox-*")) and not (tmp_path / "agent.json").exists()
