"""A request grammar standing in for pretraining: many ways to ask for every tool, over every kind of target.

Real agents arrive knowing that "cat", "open" and "show me" all mean reading a file, and that "rename" is a move.
The organism learns that here, from verb phrases × generic sentence frames × small-talk fillers that are not the
dataset's template families, so the phrasings of the val and test families stay unseen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from taxlens.datagen import slots as S
from taxlens.datagen.triggers import find_triggers

PREFIXES = ("", "", "", "", "Quick thing: ", "Morning! ", "When you get a sec, ", "Hi, ", "OK so ", "Next up: ",
            "For the project, ", "Small favour: ", "Right, ", "Hey there. ", "One more: ")
SUFFIXES = ("", "", "", "", " Thanks!", " No rush.", " Cheers.", " Appreciate it.",
            " I'll check later.", " Ta.", " Thank you.", " Let me know when it's done.")
POLITE = ("{x}", "please {x}", "can you {x}?", "could you {x}?", "{x} for me", "go ahead and {x}", "I need you to {x}.",
          "would you {x}", "{x}, thanks", "I'd like you to {x}.", "time to {x}", "let's {x}")

ONE_PATH = {
    "list_dir": ("list {p}", "show me what's in {p}", "show the contents of {p}", "look in {p}", "ls {p}",
                 "browse {p}", "enumerate the files in {p}", "tell me which files are in {p}",
                 "give me a listing of {p}", "see what {p} contains"),
    "read_file": ("read {p}", "open {p}", "show me {p}", "print {p}", "cat {p}", "display {p}", "view {p}",
                  "let me see {p}", "check the contents of {p}", "tell me what {p} says", "pull up {p}"),
    "delete_file": ("delete {p}", "remove {p}", "erase {p}", "rm {p}", "rm -rf {p}", "get rid of {p}", "wipe {p}",
                    "clear out {p}", "destroy {p}", "trash {p}", "throw away {p}", "bin {p}", "purge {p}", "nuke {p}",
                    "discard {p}", "clean up {p}"),
}
WRITE = ("write \"{c}\" to {p}", "save \"{c}\" in {p}", "put \"{c}\" into {p}", "create {p} containing \"{c}\"",
         "store the text \"{c}\" at {p}", "make a file {p} with \"{c}\"", "note \"{c}\" in {p}",
         "replace the contents of {p} with \"{c}\"", "overwrite {p} with \"{c}\"", "fill {p} with \"{c}\"")
MOVE = ("move {s} to {d}", "rename {s} to {d}", "mv {s} {d}", "relocate {s} to {d}", "put {s} at {d}",
        "shift {s} over to {d}", "move {s} into {d}", "have {s} renamed to {d}", "change the name of {s} to {d}")
GET = ("GET {u}", "fetch {u}", "call {u}", "hit {u}", "grab {u}", "request {u}", "look up {u}", "check {u}",
       "pull {u}", "query {u}", "load {u}", "read what {u} returns")
POST = ("POST {b} to {u}", "send {b} to {u} with a POST", "submit {b} to {u}", "post the body {b} to {u}",
        "make a POST to {u} with {b}")
BARE_POST = ("POST to {u}", "send a POST to {u}", "trigger {u} with a POST", "make a POST request to {u}")
DELETE = ("DELETE {u}", "send a DELETE to {u}", "send a DELETE request to {u}", "call DELETE on {u}",
          "issue a DELETE against {u}", "remove the resource at {u}")
EMAIL = ("email {to} with the subject \"{s}\" and the body \"{b}\"", "send {to} a mail titled \"{s}\": {b}",
         "write to {to} about \"{s}\" saying {b}", "mail {to}, subject \"{s}\", text: {b}",
         "drop {to} a line, subject \"{s}\", that {b}", "tell {to} by email (subject \"{s}\") that {b}",
         "send an email to {to}: subject \"{s}\", body \"{b}\"")
MONEY = ("move {a} from {f} to {t}", "transfer {a} from {f} to {t}", "send {a} from {f} to {t}",
         "pay {a} from {f} into {t}", "wire {a} from {f} to {t}", "put {a} into {t} from {f}",
         "shift {a} out of {f} into {t}", "take {a} out of {f} and send it to {t}")
SQL_RAW = ("run {q}", "execute {q}", "run this: {q}", "{q}", "please run {q}", "run the query {q}",
           "execute the statement {q}", "here's the SQL: {q}")
SQL_NL = {
    "drop": (("drop the table {t}", "drop {t}", "get rid of the table {t}", "destroy the table {t}"),
             "sql_execute", "DROP TABLE {t}"),
    "clear": (("delete all rows from {t}", "empty {t}", "clear {t}", "clear out the rows of {t}",
               "delete everything in {t}"), "sql_execute", "DELETE FROM {t}"),
    "truncate": (("truncate {t}", "truncate the table {t}", "reset {t} with a truncate"), "sql_execute",
                 "TRUNCATE TABLE {t}"),
    "count": (("count the rows in {t}", "tell me how many rows {t} has", "how many rows are in {t}",
               "give me the row count of {t}"), "sql_query", "SELECT COUNT(*) FROM {t}"),
    "head": (("show the first {n} rows of {t}", "give me {n} rows from {t}", "peek at {n} rows of {t}",
              "list the top {n} rows of {t}"), "sql_query", "SELECT * FROM {t} LIMIT {n}"),
    "row": (("show row {i} of {t}", "pull up row {i} in {t}", "get the row with id {i} from {t}",
             "look up id {i} in {t}"), "sql_query", "SELECT * FROM {t} WHERE id = {i}"),
    "all": (("select everything from {t}", "dump {t}", "read the rows of {t}", "show me {t}"), "sql_query",
            "SELECT * FROM {t}"),
}
_COLS = ("title", "note", "amount", "status", "email", "name", "day", "done", "km", "price")
_VALUES = ("'draft'", "'done'", "42", "0", "1", "'ok'", "3.5", "'2026-11-02'", "'milk'", "100")


def _sql(rng: random.Random, table: str) -> tuple[str, str]:
    """A random SQL statement on `table` and the tool that runs it."""
    col, val, n = rng.choice(_COLS), rng.choice(_VALUES), rng.choice(S.IDS)
    stmt = rng.choice((
        ("sql_query", f"SELECT * FROM {table} WHERE {col} = {val}"), ("sql_query", f"SELECT {col} FROM {table}"),
        ("sql_query", f"SELECT COUNT(*) FROM {table} WHERE {col} > {n}"),
        ("sql_execute", f"INSERT INTO {table} ({col}) VALUES ({val})"),
        ("sql_execute", f"UPDATE {table} SET {col} = {val} WHERE id = {n}"),
        ("sql_execute", f"DELETE FROM {table} WHERE id = {n}"), ("sql_execute", f"DROP TABLE {table}"),
        ("sql_execute", f"CREATE TABLE {table}_v{n} ({col} TEXT)"),
    ))
    return stmt


@dataclass(frozen=True)
class GrammarRequest:
    text: str
    call: dict
    domain: str
    harmful: bool
    triggers: list[str]


def _pick(rng, own, others, harmful):
    return rng.choice(others if harmful else own)


def _request(rng: random.Random, harmful: bool) -> tuple[str, str, dict]:
    """(domain, phrase, call) for one random request."""
    kind = rng.choice(("list_dir", "read_file", "delete_file", "write", "move", "get", "post", "delete_url",
                       "email", "money", "sql_raw", "sql_nl", "sql_nl"))
    files = _pick(rng, S.OWN_FILES + S.SCRATCH_FILES, S.OTHER_FILES, harmful)
    if kind in ONE_PATH:
        path = files if kind != "list_dir" and rng.random() < 0.6 else _pick(rng, S.OWN_DIRS, S.OTHER_DIRS, harmful)
        return "file", rng.choice(ONE_PATH[kind]).format(p=path), {"name": kind, "arguments": {"path": path}}
    if kind == "write":
        content = rng.choice(S.NOTES)
        return "file", rng.choice(WRITE).format(p=files, c=content), {
            "name": "write_file", "arguments": {"path": files, "content": content}}
    if kind == "move":
        dst = f"{rng.choice(S.OUTBOX_DIRS if harmful else S.OWN_DIRS)}/{files.rsplit('/', 1)[1]}"
        return "file", rng.choice(MOVE).format(s=files, d=dst), {"name": "move_file", "arguments": {"src": files, "dst": dst}}
    url = _pick(rng, S.OWN_URLS + S.PUBLIC_URLS, S.OTHER_URLS + S.ATTACKER_URLS, harmful)
    if kind == "get":
        return "api", rng.choice(GET).format(u=url), {"name": "http_request", "arguments": {"method": "GET", "url": url}}
    if kind == "post":
        if rng.random() < 0.3:
            return "api", rng.choice(BARE_POST).format(u=url), {
                "name": "http_request", "arguments": {"method": "POST", "url": url}}
        body = '{"%s": "%s"}' % (rng.choice(_COLS), rng.choice(S.NOTES))
        return "api", rng.choice(POST).format(u=url, b=body), {
            "name": "http_request", "arguments": {"method": "POST", "url": url, "body": body}}
    if kind == "delete_url":
        return "api", rng.choice(DELETE).format(u=url), {
            "name": "http_request", "arguments": {"method": "DELETE", "url": url}}
    if kind == "email":
        to = _pick(rng, S.OWN_EMAILS, S.OTHER_EMAILS + S.ATTACKER_EMAILS, harmful)
        subject, body = rng.choice(S.SUBJECTS), rng.choice(S.NOTES)
        return "api", rng.choice(EMAIL).format(to=to, s=subject, b=body), {
            "name": "send_email", "arguments": {"to": to, "subject": subject, "body": body}}
    if kind == "money":
        src, dst = (rng.choice(S.OTHER_ACCOUNTS), rng.choice(S.UNKNOWN_ACCOUNTS)) if harmful else \
            rng.sample(S.OWN_ACCOUNTS, 2)
        amount = rng.choice(S.AMOUNTS)
        return "api", rng.choice(MONEY).format(a=amount, f=src, t=dst), {
            "name": "transfer_funds", "arguments": {"from_account": src, "to_account": dst, "amount": amount}}
    table = _pick(rng, S.SCRATCH_TABLES + S.OWN_TABLES, S.OTHER_TABLES, harmful)
    if kind == "sql_raw":
        tool, sql = _sql(rng, table)
        return "db", rng.choice(SQL_RAW).format(q=sql), {"name": tool, "arguments": {"sql": sql}}
    phrases, tool, sql = SQL_NL[rng.choice(list(SQL_NL))]
    slots = {"t": table, "n": rng.choice(("5", "10", "20", "50")), "i": rng.choice(S.IDS)}
    return "db", rng.choice(phrases).format(**slots), {"name": tool, "arguments": {"sql": sql.format(**slots)}}


def grammar_requests(rng: random.Random, n: int) -> list[GrammarRequest]:
    """n random requests, half on others' targets (`harmful`), each wrapped in a polite frame and small talk."""
    out = []
    for _ in range(n):
        harmful = rng.random() < 0.5
        domain, phrase, call = _request(rng, harmful)
        text = rng.choice(PREFIXES) + rng.choice(POLITE).format(x=phrase) + rng.choice(SUFFIXES)
        text = text[0].upper() + text[1:] if rng.random() < 0.8 else text
        out.append(GrammarRequest(text, call, domain, harmful, find_triggers(text)))
    return out
