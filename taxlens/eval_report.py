"""The eval report as typed values: what `evaluate` returns, and what `taxlens compare`, the steering search and
`taxlens report` read, by attribute. `to_json()` gives the contract's report (docs/contract.md); `EvalReport.read`
parses one back from any tool that writes the contract's fixed keys, naming the file and the field that is wrong.
Keys beyond the ones typed here are kept (`extra`) and written back.

>>> report = EvalReport.read("runs/demo/defended.json")        # doctest: +SKIP
>>> report.figure("lookalike", "success").rate                 # doctest: +SKIP
0.344
>>> report.kinds["harmful"].refusal_trigger_free.lo            # doctest: +SKIP
0.08
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from taxlens.contract import require_file

# each kind's figures, in the order a report lists them (`invalid` and `labels` follow)
KIND_FIGURES = {
    "benign": ("success", "over_refusal"),
    "lookalike": ("success", "over_refusal"),
    "harmful": ("refusal", "calls_made", "no_action", "refusal_trigger_free", "refusal_trigger_bearing"),
    "injection": ("asr", "utility_under_attack", "no_action"),
}


class ReportError(ValueError):
    """A report file that does not have the contract's shape; the message names the file and the field."""


def read_report_json(path: str | Path, what: str) -> object:
    """The JSON in report file `path`; one line naming the file when it is missing, a folder, or not JSON."""
    try:
        return json.loads(require_file(path, what).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}: not JSON ({err})") from None


def _get(d, key: str, where: str, types: type | tuple):
    if not isinstance(d, dict):
        raise ReportError(f"{where}: expected an object, got {type(d).__name__}")
    if key not in d:
        raise ReportError(f"{where}: missing {key!r}")
    if not isinstance(d[key], types):
        raise ReportError(f"{where}.{key}: expected {types}, got {d[key]!r}")
    return d[key]


def _extra(d: dict, known) -> dict:
    return {k: v for k, v in d.items() if k not in known}


@dataclass(frozen=True)
class Rate:
    """A rate with its 95% Wilson interval (`k` of `n`; rate, lo and hi None when n = 0) and, where the records name
    their template family, the interval from resampling whole families."""

    rate: float | None
    lo: float | None
    hi: float | None
    k: int | None = None
    n: int | None = None
    family_lo: float | None = None
    family_hi: float | None = None
    families: int | None = None

    def to_json(self) -> dict:
        out = {"rate": self.rate, "lo": self.lo, "hi": self.hi, "k": self.k, "n": self.n}
        if self.family_lo is not None:
            out.update(family_lo=self.family_lo, family_hi=self.family_hi, families=self.families)
        return out

    @classmethod
    def from_json(cls, d, where: str, n: int | None = None) -> Rate:
        number = (int, float, type(None))
        return cls(**{key: _get(d, key, where, number) for key in ("rate", "lo", "hi")},
                   **{key: d.get(key) for key in ("k", "family_lo", "family_hi", "families")},
                   n=d.get("n", n))


@dataclass(frozen=True)
class KindFigures:
    """One kind's block of `by_kind`: its record count, each figure a `Rate` (None where the kind has no such
    figure) and the count of each label."""

    kind: str
    n: int
    invalid: Rate | None = None
    labels: dict = field(default_factory=dict)
    success: Rate | None = None
    over_refusal: Rate | None = None
    refusal: Rate | None = None
    calls_made: Rate | None = None
    no_action: Rate | None = None
    refusal_trigger_free: Rate | None = None
    refusal_trigger_bearing: Rate | None = None
    asr: Rate | None = None
    utility_under_attack: Rate | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        names = (*KIND_FIGURES.get(self.kind, ()), "invalid")
        out: dict = {"n": self.n, **{name: getattr(self, name).to_json() for name in names
                                    if getattr(self, name) is not None}}
        return out | ({"labels": self.labels} if self.labels else {}) | self.extra

    @classmethod
    def from_json(cls, kind: str, d, where: str) -> KindFigures:
        n = _get(d, "n", where, int)
        # a rate read without its own count is over the kind's records, but for the trigger subsets of harmful
        rates = {name: Rate.from_json(d[name], f"{where}.{name}", None if "trigger" in name else n)
                 for name in (*KIND_FIGURES.get(kind, ()), "invalid") if name in d}
        return cls(kind=kind, n=n, labels=d.get("labels", {}), **rates,
                   extra=_extra(d, {"n", "labels", *rates}))


@dataclass(frozen=True)
class RecordResult:
    """One record's row: its label and reply, whether the model did what the record asks (`ok`) and why it got its
    label; where a well-formed call departs from the expected one (`miss`); the first-token refusal score (None
    behind an endpoint), for a steered benign row the KL and, under a gated steering, the gate's p(harmful) and
    decision (`gate`: "ablate", "add" or "none")."""

    id: str
    kind: str
    label: str
    reply: str
    ok: bool
    domain: str | None = None
    reason: str | None = None
    refusal_score: float | None = None
    family: str | None = None
    kl_first_token: float | None = None
    miss: str | None = None
    gate: str | None = None
    gate_p_harmful: float | None = None
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"id": self.id, "kind": self.kind, "domain": self.domain, "label": self.label, "reply": self.reply,
               "ok": self.ok, "reason": self.reason, "refusal_score": self.refusal_score}
        out |= {key: getattr(self, key) for key in ("family", "kl_first_token", "miss", "gate", "gate_p_harmful")
                if getattr(self, key) is not None}
        return out | self.extra

    @classmethod
    def from_json(cls, d, where: str) -> RecordResult:
        fixed = {key: _get(d, key, where, str) for key in ("id", "kind", "label", "reply")}
        names = {f.name for f in fields(cls)} - {"extra"}
        return cls(**fixed, ok=_get(d, "ok", where, bool),
                   **{key: d[key] for key in names - set(fixed) - {"ok"} if key in d}, extra=_extra(d, names))


@dataclass(frozen=True)
class FirstTokenKL:
    """A steered run's side effect: mean KL(unsteered ‖ steered) of the first reply token over the benign records,
    and over those the unsteered model already complies with (None where there are none)."""

    benign: float | None
    benign_complied: float | None


@dataclass(frozen=True)
class EvalReport:
    """A model's replies to a prompt set, labelled, with the contract's figures per kind."""

    model: str
    data: str
    split: str | None
    steer: str | None
    kinds: dict[str, KindFigures]
    records: tuple[RecordResult, ...]
    warnings: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)
    kl: FirstTokenKL | None = None  # set when the run was steered
    extra: dict = field(default_factory=dict)

    def figure(self, kind: str, name: str) -> Rate | None:
        """`kind`'s figure `name`, None where the report has no such kind or the kind no such figure."""
        block = self.kinds.get(kind)
        return None if block is None else getattr(block, name, None)

    def ok_by_id(self, kinds: tuple[str, ...]) -> dict[str, bool]:
        return {r.id: r.ok for r in self.records if r.kind in kinds}

    def family_of(self) -> dict[str, str | None]:
        return {r.id: r.family for r in self.records}

    def to_json(self) -> dict:
        out = {"model": self.model, "data": self.data, "split": self.split, "steer": self.steer,
               "by_kind": {kind: block.to_json() for kind, block in self.kinds.items()},
               "warnings": list(self.warnings), "records": [r.to_json() for r in self.records], "meta": self.meta}
        if self.kl is not None:
            out.update(kl_first_token_benign=self.kl.benign, kl_first_token_benign_complied=self.kl.benign_complied)
        return out | self.extra

    def write(self, out: str | Path) -> Path:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return out

    @classmethod
    def from_json(cls, d, source: str = "report") -> EvalReport:
        by_kind = _get(d, "by_kind", source, dict)
        records = _get(d, "records", source, list)
        kl = None
        if "kl_first_token_benign" in d:
            kl = FirstTokenKL(d["kl_first_token_benign"], d.get("kl_first_token_benign_complied"))
        known = {"model", "data", "split", "steer", "by_kind", "records", "warnings", "meta",
                 "kl_first_token_benign", "kl_first_token_benign_complied"}
        return cls(model=_get(d, "model", source, str), data=_get(d, "data", source, str), split=d.get("split"),
                   steer=d.get("steer"),
                   kinds={kind: KindFigures.from_json(kind, block, f"{source}: by_kind.{kind}")
                          for kind, block in by_kind.items()},
                   records=tuple(RecordResult.from_json(r, f"{source}: records[{i}]") for i, r in enumerate(records)),
                   warnings=tuple(d.get("warnings", ())), meta=d.get("meta", {}), kl=kl, extra=_extra(d, known))

    @classmethod
    def read(cls, path: str | Path) -> EvalReport:
        """The report in the JSON file `path` (as `taxlens eval` writes it, or any tool writing the contract's keys)."""
        return cls.from_json(read_report_json(path, "report"), str(path))


def miss_summary(report: EvalReport) -> str | None:
    """The well-formed calls that were not the expected ones, per kind: how many called another tool and how many the
    right tool with a wrong argument (each record's `miss` says which); None when there are none.

    >>> miss_summary(report)                                                      # doctest: +SKIP
    'benign 31 (11 another tool, 20 a wrong argument); lookalike 38 (16 another tool, 22 a wrong argument)'
    """
    parts = []
    for kind in report.kinds:
        misses = [row.miss for row in report.records if row.kind == kind and row.miss]
        if misses:
            tool = sum(m.startswith("called ") for m in misses)
            parts.append(f"{kind} {len(misses)} ({tool} another tool, {len(misses) - tool} a wrong argument)")
    return "; ".join(parts) or None


GATE_DECISIONS = ("ablate", "add", "none")


def by_decision(items) -> dict[str, int]:
    """(decision, done) pairs counted per gate decision, and how many of each were done: {"ablate": 22,
    "ablate_recovered": 19, "add": 4, "add_recovered": 0, "none": 9, "none_recovered": 0}."""
    items = list(items)
    out = {}
    for decision in GATE_DECISIONS:
        mine = [done for d, done in items if d == decision]
        out |= {decision: len(mine), f"{decision}_recovered": sum(mine)}
    return out


def decisions_text(counts_by_kind: dict[str, dict[str, int]]) -> str | None:
    """`{kind: {decision: n}}` as 'benign 81 ablate, 0 add, 15 none; …'; None when empty."""
    return "; ".join(f"{kind} " + ", ".join(f"{counts.get(d, 0)} {d}" for d in GATE_DECISIONS)
                     for kind, counts in counts_by_kind.items()) or None


def gate_summary(report: EvalReport) -> str | None:
    """Per kind, what a gated steering's gate decided: how many records it sent to the ablation, gave the
    addition, or left unsteered; None when no row records a gate.

    >>> gate_summary(report)                                                      # doctest: +SKIP
    'benign 81 ablate, 0 add, 15 none; lookalike 74 ablate, 6 add, 16 none; harmful 0 ablate, 108 add, 36 none'
    """
    decided = {kind: [row.gate for row in report.records if row.kind == kind and row.gate] for kind in report.kinds}
    return decisions_text({kind: {d: gates.count(d) for d in GATE_DECISIONS} for kind, gates in decided.items()
                           if gates})


def check_same_items(reports: dict[str, object], noun: str = "records") -> None:
    """Reports compared item by item (`{path: EvalReport or AgentReport}`: a tax, a share recovered, paired
    intervals) must be runs over the same records or tasks; raises `ReportError` naming the two files, what each ran
    on and the ids only one holds. Two runs of different splits or files would otherwise give a tax that compares
    nothing (figures over different prompts, pairs matched on the ids they happen to share)."""
    (first, a), *rest = reports.items()
    ids_a = set(a.family_of())
    for path, b in rest:
        ids_b = set(b.family_of())
        if ids_b == ids_a:
            continue
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)

        def ran_on(r) -> str:
            return f"{getattr(r, 'data', None) or getattr(r, 'tasks', '?')}, split {r.split or 'all'}"

        def skipped(r) -> set:
            return {u["id"] for u in (getattr(r, "meta", None) or {}).get("unrenderable") or []}

        why = ("; compare runs of one file and split" if not (set(only_a) & skipped(b) or set(only_b) & skipped(a))
               else "; some of them a run skipped as unrenderable (its meta.unrenderable): compare runs that take "
                    "the same records, e.g. of a file without them")
        raise ReportError(f"{first} ({ran_on(a)}) and {path} ({ran_on(b)}) hold different {noun}: {len(only_a)} only "
                          f"in the first{' (' + ', '.join(only_a[:3]) + ')' if only_a else ''}, {len(only_b)} only "
                          f"in the second{' (' + ', '.join(only_b[:3]) + ')' if only_b else ''}{why}")
