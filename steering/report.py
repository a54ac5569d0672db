"""The steering search's outputs for people: the screened table as markdown (`pareto.md`) and the trade-off plot
(`tradeoff.png`), both read from the table `steering.pipeline.run_steer` writes to `pareto.json`.

>>> plot_tradeoff(json.loads(Path("runs/steer/pareto.json").read_text()), Path("tradeoff.png"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from steering.search import pareto_front

COLORS = {"global": "tab:grey", "false_refusal": "tab:blue", "gated": "tab:green"}


def write_pareto_markdown(table: dict, screened: dict, path: Path) -> None:
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}"  # noqa: E731
    lines = ["# Steering search on the val split", "",
             "Screened on the first reply token (compliance = refusal score ≤ 0); the Pareto front of helpful "
             "(benign + lookalike) compliance against harmful refusal, per method. Generated figures (val) for "
             "the settings that were evaluated for real.", "",
             "| method | settings | helpful compliance | harmful refusal | KL benign (complied) | val success "
             "benign / lookalike | val harmful refusal | val ASR |", "|---|---|---|---|---|---|---|---|"]
    for role in ("defended", "base"):
        sc, v = table[role]["screen"], table[role]["val"] or {}
        lines.append(f"| {role} | – | {pct(sc['compliance_helpful'])} | {pct(sc['refusal_harmful'])} | – | "
                     f"{pct(v.get('success_benign'))} / {pct(v.get('success_lookalike'))} | "
                     f"{pct(v.get('refusal_harmful'))} | {pct(v.get('asr'))} |")
    for method, settings in screened.items():
        for s in pareto_front(settings):
            v = s.val or {}
            lines.append(
                f"| {method} | {', '.join(f'{k}={x}' for k, x in s.settings.items())} | "
                f"{pct(s.screen['compliance_helpful'])} | {pct(s.screen['refusal_harmful'])} | "
                f"{s.screen['kl_benign_complied']:.3f} | {pct(v.get('success_benign'))} / "
                f"{pct(v.get('success_lookalike'))} | {pct(v.get('refusal_harmful'))} | {pct(v.get('asr'))} |")
    for row in table.get("adapter_scale", []):
        v = row["val"]
        lines.append(f"| adapter ×{row['adapter_scale']:g} | – | – | – | – | {pct(v.get('success_benign'))} / "
                     f"{pct(v.get('success_lookalike'))} | {pct(v.get('refusal_harmful'))} | {pct(v.get('asr'))} |")
    lines += ["", "Chosen: " + "; ".join(f"{m}: {c['settings']} (meets the constraints: {c['feasible']})"
                                         for m, c in table["chosen"].items()), ""]
    path.write_text("\n".join(lines))


def plot_tradeoff(table: dict, path: Path) -> None:
    fig = Figure(figsize=(6.4, 4.6))
    ax = fig.subplots()
    for method, rows in table["methods"].items():
        ax.scatter([100 * r["screen"]["refusal_harmful"] for r in rows],
                   [100 * r["screen"]["compliance_helpful"] for r in rows], s=10, alpha=0.45,
                   color=COLORS[method], label=method)
        chosen = table["chosen"][method]["settings"]
        pick = next(r for r in rows if r["settings"] == chosen)
        ax.scatter([100 * pick["screen"]["refusal_harmful"]], [100 * pick["screen"]["compliance_helpful"]],
                   marker="*", s=220, color=COLORS[method], edgecolor="black", zorder=5)
    for role, marker in (("defended", "s"), ("base", "o")):
        sc = table[role]["screen"]
        ax.scatter([100 * sc["refusal_harmful"]], [100 * sc["compliance_helpful"]], marker=marker, s=80,
                   color="black", zorder=6)
        ax.annotate(role, (100 * sc["refusal_harmful"], 100 * sc["compliance_helpful"]), textcoords="offset points",
                    xytext=(6, -10))
    ax.set(xlabel="harmful refusal, % (first token, val)", ylabel="benign + lookalike compliance, % (first token, val)",
           title="steering settings: helpfulness vs defence (★ chosen)")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
