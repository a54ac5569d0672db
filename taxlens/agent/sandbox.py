"""One task's environment, made of real components, and the ten tools acting on it.

- files: a temporary directory holding the task's tree; the agent's paths (absolute, `~/…`, or relative to its home)
  map inside it, and a path that climbs above its root is an error returned to the agent;
- databases: a real SQLite file built from the task's statements; `sql_query` runs on a read-only connection;
- money: `accounts` and `transfers` tables in that database, which `transfer_funds` updates in one transaction;
- HTTP and e-mail: `services.HttpService` and `services.SmtpServer` on loopback.

Everything lives under one temporary folder and in threads the sandbox stops; leaving the `with` block removes it all.

>>> with Sandbox(task.environment, task.tools) as box:                    # doctest: +SKIP
...     box.execute("list_dir", {"path": "~/build"}).text
...     box.holds({"check": "file_absent", "path": "~/build/app.log"})
"""

from __future__ import annotations

import http.client
import json
import os
import posixpath
import secrets
import shutil
import sqlite3
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from taxlens.agent.services import HttpService, SmtpServer, route_key
from taxlens.agent.tasks import Environment
from taxlens.labels import as_number
from taxlens.tools import validate_arguments

RESULT_LIMIT = 1500  # characters of a tool result the agent sees; the rest is cut, saying so


SQL_SECONDS = 5.0  # one agent statement's time: a runaway recursive query is stopped, not waited on for ever
SQL_MAX_PAGES = 16_384  # the database's size cap (64 MiB at SQLite's 4 KiB pages): no statement can fill the disk
SQL_MAX_LENGTH = 1_000_000  # bytes in one string or blob a statement may build (SQLite allows a billion)


def _connect(database, **kw) -> sqlite3.Connection:
    """A connection to a task's database that cannot reach another file: `ATTACH` and `VACUUM INTO` (which even a
    read-only connection runs) would create or write any file the process may, on the host, and the pragmas that
    move SQLite's own files would put them in a host folder. Its size is capped, and the cap cannot be lifted."""
    db = sqlite3.connect(database, **kw)
    db.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, SQL_MAX_LENGTH)
    db.execute(f"PRAGMA max_page_count = {SQL_MAX_PAGES}")
    db.set_authorizer(lambda action, arg, *_: sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_PRAGMA and (
        arg or "").lower() in ("temp_store_directory", "data_store_directory", "max_page_count",
                               "page_size") else sqlite3.SQLITE_OK)
    return db


class _Timed:
    """Statements on `db` inside the block stop with `SandboxError` once they run past `SQL_SECONDS`."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        deadline = time.monotonic() + SQL_SECONDS
        self.db.set_progress_handler(lambda: time.monotonic() > deadline, 10_000)
        return self.db

    def __exit__(self, kind, error, _) -> None:
        self.db.set_progress_handler(None, 0)
        if isinstance(error, sqlite3.OperationalError) and str(error) == "interrupted":
            raise SandboxError(f"the statement ran past {SQL_SECONDS:g} s and was stopped") from None


class SandboxError(Exception):
    """A tool call the environment refuses (a missing file, bad SQL, an escaping path): its text goes back to the
    agent as the tool's result."""


class LayoutError(SandboxError):
    """The task's own environment cannot be laid out (a path that leaves the tree, SQL that fails): the task file is
    at fault, at `field`."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class ToolResult:
    text: str
    error: bool = False


class Sandbox:
    """A fresh environment for one task; use it as a context manager."""

    def __init__(self, environment: Environment, tools: list[str]):
        self.environment = environment
        self.tools = list(tools)
        self._stack = ExitStack()
        self.root: Path | None = None
        self.http: HttpService | None = None
        self.smtp: SmtpServer | None = None

    # --- set-up and tear-down -------------------------------------------------------------------------------------
    def __enter__(self) -> "Sandbox":
        try:
            # the folder's removal is registered before the folder exists: a SIGTERM or Ctrl-C landing between its
            # creation and that registration would leave it behind (a 128-bit name cannot be another's)
            root = Path(tempfile.gettempdir()) / f"taxlens-sandbox-{secrets.token_hex(16)}"
            self._stack.callback(shutil.rmtree, root, ignore_errors=True)
            root.mkdir(mode=0o700)
            self.root = root
            self.fs = self.root / "fs"
            self.fs.mkdir()
            self._real(self.environment.home).mkdir(parents=True, exist_ok=True)
            for path, text in self.environment.files.items():
                try:
                    real = self._real(path)
                except SandboxError as e:
                    raise LayoutError(f"environment.files[{path!r}]", str(e)) from None
                if path.endswith("/"):
                    real.mkdir(parents=True, exist_ok=True)
                else:
                    real.parent.mkdir(parents=True, exist_ok=True)
                    real.write_text(text, encoding="utf-8")
            self.db_path = self.root / "task.db"
            self._db = _connect(self.db_path, check_same_thread=False)
            self._stack.callback(self._db.close)
            # the file lives for one task: no fsync per commit (which cost more than the rest of the set-up); the
            # rollback journal in memory still makes every transaction all or nothing
            self._db.execute("PRAGMA synchronous = OFF")
            self._db.execute("PRAGMA journal_mode = MEMORY")
            with self._db:
                self._db.execute("CREATE TABLE accounts (id TEXT PRIMARY KEY, owner TEXT, balance REAL)")
                self._db.execute("CREATE TABLE transfers (from_account TEXT, to_account TEXT, amount REAL)")
                for i, a in enumerate(self.environment.accounts):
                    try:
                        self._db.execute("INSERT INTO accounts VALUES (?, ?, ?)", (a["id"], a["owner"], a["balance"]))
                    except sqlite3.Error as e:
                        raise LayoutError(f"environment.accounts[{i}]", str(e)) from None
                for i, statement in enumerate(self.environment.db):
                    try:
                        self._db.execute(statement)
                    except sqlite3.Error as e:
                        raise LayoutError(f"environment.db[{i}]", f"{e} (in {statement[:80]!r})") from None
            if "http_request" in self.tools or self.environment.routes:
                self.http = self._stack.enter_context(HttpService(self.environment.routes))
            if "send_email" in self.tools:
                self.smtp = self._stack.enter_context(SmtpServer())
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    # --- paths ------------------------------------------------------------------------------------------------------
    def _virtual(self, path: str) -> str:
        """The agent's path as an absolute one in the sandbox's tree (`~` and relative paths against home)."""
        if not isinstance(path, str) or not path or "\x00" in path:
            raise SandboxError(f"invalid path {path!r}")
        home = self.environment.home
        if path == "~" or path.startswith("~/"):
            path = home + path[1:]
        if not path.startswith("/"):
            path = posixpath.join(home, path)
        depth = 0
        for part in path.split("/"):
            depth += -1 if part == ".." else 0 if part in ("", ".") else 1
            if depth < 0:
                raise SandboxError(f"{path}: the path leaves the filesystem's root")
        return posixpath.normpath(path)

    def _real(self, path: str) -> Path:
        real = self.fs / self._virtual(path).lstrip("/")
        if os.path.commonpath([os.path.realpath(real), os.path.realpath(self.fs)]) != os.path.realpath(self.fs):
            raise SandboxError(f"{path}: outside the sandbox")
        return real

    # --- the tools --------------------------------------------------------------------------------------------------
    def execute(self, name: str, arguments: dict) -> ToolResult:
        """Run one tool call; a call the environment refuses comes back as an error result, never an exception."""
        if name not in self.tools:
            return ToolResult(f"error: tool {name!r} is not offered", True)
        problem = validate_arguments(name, {k: v for k, v in arguments.items() if v is not None})
        if problem:
            return ToolResult(f"error: {name} arguments break its schema: {problem}", True)
        try:
            text = getattr(self, f"_{name}")(**{k: v for k, v in arguments.items() if v is not None})
        except SandboxError as e:
            return ToolResult(f"error: {e}", True)
        except (sqlite3.Error, sqlite3.Warning) as e:  # Python 3.10 warns on two statements at once
            return ToolResult(f"error: SQL: {e}", True)
        except OSError as e:
            return ToolResult(f"error: {e.strerror or e}", True)
        if len(text) > RESULT_LIMIT:
            text = text[:RESULT_LIMIT] + f"\n[… {len(text) - RESULT_LIMIT} more characters]"
        return ToolResult(text)

    def _list_dir(self, path: str) -> str:
        real = self._real(path)
        if not real.is_dir():
            raise SandboxError(f"{path}: no such directory")
        return "\n".join(p.name + ("/" if p.is_dir() else "") for p in sorted(real.iterdir())) or "(empty)"

    def _read_file(self, path: str) -> str:
        real = self._real(path)
        if not real.is_file():
            raise SandboxError(f"{path}: no such file")
        return real.read_text(encoding="utf-8", errors="replace")

    def _write_file(self, path: str, content: str) -> str:
        real = self._real(path)
        if real.is_dir() or path.endswith("/"):
            raise SandboxError(f"{path}: is a directory")
        real.parent.mkdir(parents=True, exist_ok=True)
        real.write_text(content, encoding="utf-8")
        return f"wrote {len(content)} characters to {path}"

    def _delete_file(self, path: str) -> str:
        real = self._real(path)
        if real == self.fs:
            raise SandboxError(f"{path}: refusing to delete the filesystem's root")
        if real.is_dir():
            shutil.rmtree(real)
        elif real.exists():
            real.unlink()
        else:
            raise SandboxError(f"{path}: no such file or directory")
        return f"deleted {path}"

    def _move_file(self, src: str, dst: str) -> str:
        source, target = self._real(src), self._real(dst)
        if not source.exists():
            raise SandboxError(f"{src}: no such file or directory")
        if target.is_dir():
            target = target / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        return f"moved {src} to {dst}"

    def _sql_query(self, sql: str) -> str:
        with _connect(f"file:{self.db_path}?mode=ro", uri=True) as ro, _Timed(ro):
            cursor = ro.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall()
        ro.close()
        return json.dumps({"columns": columns, "rows": [list(r) for r in rows]})

    def _sql_execute(self, sql: str) -> str:
        with self._db, _Timed(self._db):
            cursor = self._db.execute(sql)
        return f"ok: {max(cursor.rowcount, 0)} row(s) affected"

    def _transfer_funds(self, from_account: str, to_account: str, amount) -> str:
        number = as_number(amount)  # the schema passes a NaN or infinite JSON number, which no bank would
        if number is None or number <= 0:
            raise SandboxError(f"amount must be a positive number, got {amount!r}")
        value = float(number)
        with self._db:  # one transaction: the debit, the credit and the ledger line land together or not at all
            row = self._db.execute("SELECT balance FROM accounts WHERE id = ?", (from_account,)).fetchone()
            if row is None:
                raise SandboxError(f"account {from_account!r} does not exist")
            if row[0] < value:
                raise SandboxError(f"account {from_account!r} holds {row[0]:.2f}, less than {value:.2f}")
            self._db.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (value, from_account))
            self._db.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (value, to_account))
            self._db.execute("INSERT INTO transfers VALUES (?, ?, ?)", (from_account, to_account, value))
        return f"transferred {value:.2f} from {from_account} to {to_account}"

    def _http_request(self, method: str, url: str, body=None) -> str:
        if self.http is None:
            raise SandboxError("no HTTP service in this environment")
        text = body if body is None or isinstance(body, str) else json.dumps(body)
        try:
            status, reply = self.http.request(method, url, text)
        except (ValueError, http.client.HTTPException) as e:  # a URL http.client will not send (spaces, controls)
            raise SandboxError(f"{url}: {e}") from None
        if status >= 400:
            raise SandboxError(f"{status}\n{reply}")
        return f"{status}\n{reply}"

    def _send_email(self, to: str, subject: str, body: str) -> str:
        try:
            self.smtp.send(self.environment.user_email, to, subject, body)
        except ValueError as e:  # a line break in a header, text that does not encode
            raise SandboxError(f"the mail was not sent: {e}") from None
        return f"sent to {to}"

    # --- checks on the final state -------------------------------------------------------------------------------
    def holds(self, check: dict) -> bool:
        """Whether one state check (`docs/contract.md`, "Agent tasks") holds now."""
        kind = check["check"]
        if kind in ("file_absent", "file_present", "file_contains"):
            try:
                real = self._real(check["path"])
            except SandboxError:
                return False
            if kind == "file_absent":
                return not real.exists()
            if kind == "file_present":
                return real.exists()
            return real.is_file() and check["text"] in real.read_text(encoding="utf-8", errors="replace")
        if kind == "sql":
            with _connect(f"file:{self.db_path}?mode=ro", uri=True) as ro:
                try:
                    rows = [list(r) for r in ro.execute(check["query"]).fetchall()]
                except sqlite3.OperationalError:  # the agent dropped a table or column the query reads
                    rows = None
            ro.close()
            return rows == check["rows"]
        if kind == "request":
            want = route_key(check["method"], check["url"])
            return any(route_key(r.method, r.url) == want and check.get("body_contains", "") in r.body
                       for r in (self.http.requests if self.http else []))
        if kind == "mail":
            return any(check["to"] in m.to and check.get("subject_contains", "") in m.subject
                       and check.get("body_contains", "") in m.body for m in (self.smtp.mails if self.smtp else []))
        raise ValueError(f"unknown check {kind!r}")
