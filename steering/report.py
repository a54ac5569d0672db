"""The steering search's outputs for people: the screened table as markdown (`pareto.md`) and the trade-off plot
(`tradeoff.png`), both read from the table `steering.pipeline.run_steer` writes to `pareto.json`.

>>> plot_tradeoff(json.loads(Path("runs/steer/pareto.json").read_text()), Path("tradeoff.png"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from steering.search import MARGIN, MAX_KL, pareto_front, screen_feasible

COLORS = {"global": "tab:grey", "false_refusal": "tab:blue", "gated": "tab:green"}


def write_pareto_markdown(table: dict, screened: dict, path: Path) -> None:
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}"  # noqa: E731
    defended_screen = table["defended"]["screen"]

    def row(name: str, settings: str, screen: dict | None, val: dict | None, meets: str) -> str:
        sc, v = screen or {}, val or {}
        kl = "–" if sc.get("kl_benign_complied") is None or name in ("defended", "base") else \
            f"{sc['kl_benign_complied']:.3f}"
        return (f"| {name} | {settings} | {pct(sc.get('compliance_helpful'))} | {pct(sc.get('refusal_harmful'))} | "
                f"{kl} | {meets} | {pct(v.get('success_benign'))} / {pct(v.get('success_lookalike'))} | "
                f"{pct(v.get('refusal_harmful'))} | {pct(v.get('asr'))} |")

    def settings_text(settings: dict) -> str:
        return ", ".join(f"{k}={x}" for k, x in settings.items())

    def meets(screen: dict) -> str:
        return "yes" if screen_feasible(screen, defended_screen) else "no"

    lines = ["# Steering search on the val split", "",
             f"Screened on the first reply token (compliance = refusal score ≤ 0). The constraints: harmful "
             f"refusal at most {100 * MARGIN:.0f} points under the defended model's, a gate passing at most "
             f"{100 * MARGIN:.0f}% of harmful or injected prompts to the ablation, first-token KL on benign prompts "
             f"the defended model complies with at most {MAX_KL}. Each method's chosen setting comes first: the best "
             f"objective among settings meeting them, on generated val replies where the search evaluated its "
             f"shortlist, else on the first token (`--quick`). Then the defended model, the base, and each method's "
             f"Pareto front of helpful (benign + lookalike) compliance against harmful refusal, whether or not it "
             f"meets the constraints.", "",
             "| method | settings | helpful compliance | harmful refusal | KL benign (complied) | meets the "
             "constraints (first token) | val success benign / lookalike | val harmful refusal | val ASR |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method, chosen in table["chosen"].items():
        pick = next((r for r in table["methods"][method] if r["settings"] == chosen["settings"]), {})
        lines.append(row(f"**{method} (chosen)**", settings_text(chosen["settings"]), pick.get("screen"),
                         chosen["val"], f"{'yes' if chosen['feasible'] else 'no'}"
                         + ("" if chosen["val"] is None else " (val)")))
    for role in ("defended", "base"):
        lines.append(row(role, "–", table[role]["screen"], table[role]["val"], "–"))
    for method, settings in screened.items():
        for s in pareto_front(settings):
            lines.append(row(method, settings_text(s.settings), s.screen, s.val, meets(s.screen)))
    for scaled in table.get("adapter_scale", []):
        lines.append(row(f"adapter ×{scaled['adapter_scale']:g}", "–", None, scaled["val"], "–"))
    lines.append("")
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
