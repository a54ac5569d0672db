"""Plots (PNG) and a short markdown summary for a `taxlens probe` run, drawn from its `summary.json` dict."""

from __future__ import annotations

from pathlib import Path

from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from taxlens.metrics import format_rate

ROLE_STYLE = {"base": {"color": "tab:blue", "marker": "o"}, "defended": {"color": "tab:red", "marker": "s"}}
MAX_TOKENS = 80  # of a user message, in the head-attention plot
KIND_COLOR = {"benign": "tab:green", "lookalike": "tab:orange", "harmful": "tab:red", "injection": "tab:purple"}


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _probe_accuracy(summary: dict, path: Path) -> None:
    layers = summary["layers"]
    fig = Figure(figsize=(12, 3.4))
    axes = fig.subplots(1, 3, sharey=True)
    for ax, concept in zip(axes, ("harm", "refusal", "trigger")):
        if concept in summary.get("unscored", {}):
            ax.text(0.5, 0.5, "not scored:\ntoo few rows of a class", ha="center", va="center", transform=ax.transAxes)
        for role, style in ROLE_STYLE.items() if concept not in summary.get("unscored", {}) else ():
            scores = summary["probe_scores"][concept][role]
            ax.plot(layers, [s["accuracy"]["rate"] for s in scores], label=role, **style)
            ax.fill_between(layers, [s["accuracy"]["lo"] for s in scores], [s["accuracy"]["hi"] for s in scores],
                            color=style["color"], alpha=0.15)
        ax.set(title=f"{concept} probe", xlabel="layer (residual after block)", xticks=layers, ylim=(0.4, 1.02))
        ax.axhline(0.5, color="grey", lw=0.5)
    axes[0].set_ylabel("cross-validated accuracy (95% CI)")
    unscored = summary.get("unscored", {})
    scored = [ax for ax, concept in zip(axes, ("harm", "refusal", "trigger")) if concept not in unscored]
    if scored:
        scored[0].legend()
    _save(fig, path)


def _projection(summary: dict, path: Path) -> None:
    layers = summary["layers"]
    fig = Figure(figsize=(9, 3.4))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, role in zip(axes, ("base", "defended")):
        for kind, values in summary["refusal_projection"][role].items():
            ax.plot(layers, values, label=kind, color=KIND_COLOR.get(kind), marker="o")
        ax.set(title=f"{role}: projection on its refusal direction", xlabel="layer", xticks=layers)
    axes[0].set_ylabel("mean projection − mean over all records")
    axes[1].legend()
    _save(fig, path)


def _patching(summary: dict, path: Path) -> None:
    p = summary["patching"]
    layers = summary["layers"]
    fig = Figure(figsize=(10, 3.4))
    left, right = fig.subplots(1, 2)
    for key, label in (("flipped", "refusals flipped to compliance"), ("share", "refusal-score gap closed")):
        left.plot([-1, *layers], [p["sites"]["embed"][key][0], *p["sites"]["resid_post"][key]], marker="o",
                  label=label)
    left.set(title="base residual up to block L written into defended", xlabel="layer (-1: embeddings)",
             ylabel="share", xticks=[-1, *layers], ylim=(-0.05, 1.05))
    if p["localised"]["layers"]:
        a, b = p["localised"]["layers"]
        left.axvspan(a - 0.5, b + 0.5, color="tab:orange", alpha=0.15, label=f"stages {a}…{b} (-1: embeddings)")
    left.legend(fontsize=7)
    width = 0.38
    for offset, site, color in ((-width / 2, "attn_out", "tab:cyan"), (width / 2, "mlp_out", "tab:olive")):
        right.bar([x + offset for x in layers], p["sites"][site]["flipped"], width, label=site, color=color)
    right.set(title="one block's output from the base", xlabel="layer", xticks=layers,
              ylabel="refusals flipped to compliance", ylim=(0, 1.05))
    right.axhline(0, color="grey", lw=0.5)
    right.legend()
    _save(fig, path)


def _flip_sentence(top: list[dict]) -> str:
    """What deleting each top word alone does to the refused prompts that hold it, and which unlabelled words are
    cues of the model's own."""
    tested = [e for e in top if e.get("refused")]
    if not tested:
        return ""
    own = [f"`{e['token']}`" for e in tested if e["in_trigger"] <= 0.5 and e["flips"] / e["refused"] > 0.5]
    return ("Deleting the word alone turns a refusal into compliance in " + ", ".join(
        f"`{e['token']}` {e['flips']}/{e['refused']}" for e in tested) + " of the refused prompts that hold it"
        + (f"; outside the trigger labels, {', '.join(own)} {'flips' if len(own) == 1 else 'flip'} most of theirs: "
           f"cues the model learned that the labels don't name." if own else "."))


def _trigger_tokens(summary: dict, path: Path, top: int = 15) -> None:
    ranked = summary["trigger_tokens"][:top][::-1]
    fig = Figure(figsize=(6, 0.28 * len(ranked) + 1.2))
    ax = fig.subplots()
    colors = ["tab:red" if e["in_trigger"] > 0.5 else "tab:grey" for e in ranked]
    ax.barh([e["token"] for e in ranked], [e["mean"] for e in ranked], color=colors)
    ax.set(title=f"words pushing the defended model to refuse (red: a trigger word)\n"
                 f"precision@10 = {summary['trigger_precision_at_10']:.1f}",
           xlabel=f"mean {summary['attribution_method']} attribution (refusal score, nats), defended − base")
    _save(fig, path)


def _patching_heads(summary: dict, path: Path) -> None:
    h = summary["patching_heads"]
    grid = [[f or 0.0 for f in row] for row in h["flipped"]]
    fig = Figure(figsize=(max(5.5, 0.3 * h["n_heads"] + 2), max(2.8, 0.4 * len(h["layers"]) + 1.4)))
    ax = fig.subplots()
    image = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set(title="one head's output from the base: refusals flipped", xlabel="head", ylabel="block",
           xticks=range(0, h["n_heads"], 1 if h["n_heads"] <= 16 else 4),
           yticks=range(len(h["layers"])), yticklabels=h["layers"])
    if h["n_heads"] <= 16:
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if value < 0.5 else "black")
    fig.colorbar(image, ax=ax)
    _save(fig, path)


def _window(trigger: list[bool]) -> slice:
    """At most MAX_TOKENS of a user message's tokens, starting a few before its first trigger word when it is long."""
    first = trigger.index(True) if True in trigger else 0
    start = max(0, min(first - 4, len(trigger) - MAX_TOKENS))
    return slice(start, start + MAX_TOKENS)


def _head_attention(summary: dict, path: Path) -> None:
    """The top head's attention from the last prompt token over a few lookalikes' user messages, defended above base,
    trigger words in red: the reading `head_reading` sums up, one prompt at a time."""
    reading = summary.get("head_reading") or {}
    base = {e["id"]: e for e in (reading.get("base") or {}).get("examples") or []}
    pairs = [(d, base[d["id"]]) for d in (reading.get("defended") or {}).get("examples") or []
             if d["id"] in base and base[d["id"]]["tokens"] == d["tokens"]]  # the same prompt, token for token
    fig = Figure(figsize=(12, 1.9 * max(1, len(pairs)) + 0.6))
    axes = fig.subplots(max(1, len(pairs)), 1, squeeze=False)[:, 0]
    if not pairs:
        axes[0].text(0.5, 0.5, "no head flips a refusal, or no record's trigger words can be placed", ha="center",
                     va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
    top = max((a for pair in pairs for e in pair for a in e["attention"]), default=1.0)
    for ax, (d, b) in zip(axes, pairs):
        window = _window(d["trigger"])
        tokens = d["tokens"][window]
        grid = [d["attention"][window], b["attention"][window]]
        image = ax.imshow(grid, norm=PowerNorm(0.5, vmin=0, vmax=top), cmap="magma", aspect="auto")
        ax.set_yticks([0, 1], ["defended", "base"], fontsize=8)
        labels = [tok.replace(" ", "␣").replace("\n", "⏎") for tok in tokens]
        ax.set_xticks(range(len(tokens)), labels, rotation=60, ha="right", fontsize=7)
        for label, trigger in zip(ax.get_xticklabels(), d["trigger"][window]):
            label.set_color("tab:red" if trigger else "black")
        cut = ("" if len(tokens) == len(d["tokens"]) else
               f", tokens {window.start + 1}–{window.start + len(tokens)} of {len(d['tokens'])}")
        ax.set_title(f"{d['id']}: rest of the prompt {d['rest']:.0%} (defended), {b['rest']:.0%} (base){cut}",
                     fontsize=8, loc="left")
        fig.colorbar(image, ax=ax, pad=0.01)
    if pairs:
        d = reading["defended"]
        fig.suptitle(f"block {d['layer']} head {d['head']}: attention from the last prompt token over the user's "
                     f"message (trigger words in red; colour: square-root scale)", fontsize=9)
    _save(fig, path)


def _direction_cosine(summary: dict, path: Path) -> None:
    fig = Figure(figsize=(5, 3.4))
    ax = fig.subplots()
    for name, values in summary["direction_cosine"].items():
        ax.plot(summary["layers"], values, marker="o", label=name.replace("_", " "))
    ax.set(title="cosine of directions, base vs defended", xlabel="layer", xticks=summary["layers"], ylim=(-1.05, 1.05))
    ax.legend(fontsize=7)
    _save(fig, path)


PLOTS = {"probe_accuracy.png": _probe_accuracy, "refusal_projection.png": _projection, "patching.png": _patching,
         "patching_heads.png": _patching_heads, "head_attention.png": _head_attention,
         "trigger_tokens.png": _trigger_tokens,
         "direction_cosine.png": _direction_cosine}


def write_plots(summary: dict, out: Path) -> list[str]:
    for name, draw in PLOTS.items():
        draw(summary, out / name)
    return list(PLOTS)


def _interval(reading: dict) -> str:
    t = reading["trigger_attention"]
    return "" if t.get("family_lo") is None else f" {{{100 * t['family_lo']:.1f}, {100 * t['family_hi']:.1f}}}"


def _reading(reading: dict | None) -> str:
    """What the top head reads, in a sentence: its attention on trigger words and its most attended tokens."""
    if not reading:
        return ""
    d, b = reading["defended"], reading["base"]

    def words(r):
        return ", ".join(f"`{token}`" for token, _ in r["most_attended"][:4])

    share = ("" if d["trigger_attention"]["mean"] is None else
             f" puts {100 * d['trigger_attention']['mean']:.1f}%{_interval(d)} of its attention on the records' "
             f"trigger words (base: {100 * b['trigger_attention']['mean']:.1f}%{_interval(b)}; spread evenly: "
             f"{100 * d['trigger_attention']['uniform']:.1f}%; {d['trigger_attention']['n']} prompts) and")
    wrote = ("" if d.get("writes") is None else
             f" Its output there, projected on the defended model's refusal direction after block {d['layer']}: "
             f"{d['writes']['projection']:+.2f} of a norm of {d['writes']['norm']:.2f} (base: "
             f"{b['writes']['projection']:+.2f} of {b['writes']['norm']:.2f}).")
    return (f" From the last prompt token, block {d['layer']} head {d['head']}{share} looks most at {words(d)} "
            f"(base: {words(b)}).{wrote}")


def _harm_line(summary: dict) -> str:
    """Whether the defended model keeps harm readable, judged by the probe fitted on the fit split and scored on this
    one (the cross-validated figure beside it): a claim the records' numbers bear, not a fixed sentence."""
    harm = summary["best_harm_layer_defended"]
    if harm is None:
        return f"- **Harm.** The harm probe is {summary['unscored']['harm']}."
    held = summary["probe_transfer"]["harm"]["defended_to_base"][harm["layer"]]["own"]
    if held["lo"] > 0.5 and held["rate"] >= 0.8:
        title, verdict = "Harm stays readable", "the model still knows which calls are harmful, yet refuses lookalikes"
    elif held["lo"] > 0.5:
        title, verdict = "Harm is partly readable", ("better than chance, short of telling them apart: part of the "
                                                     "over-refusal here may be the model not knowing which is which")
    else:
        title, verdict = "Harm is not readable here", ("no better than chance, so on these records this run cannot say "
                                                       "the model tells harmful from lookalike requests")
    return (f"- **{title}.** A harm probe (harmful vs lookalike) on the defended model reaches "
            f"{format_rate(harm['accuracy'])} at layer {harm['layer']} (cross-validated on the {summary['split']} "
            f"split); fitted on the {summary['fit_split']} split and scored on the {summary['split']} split instead, "
            f"{format_rate(held)}: {verdict}.")


def write_summary_markdown(summary: dict, path: Path) -> None:
    p, acc = summary["patching"], summary["probe_scores"]
    loc = p["localised"]
    best, best_layer = max(((site, i) for site in ("attn_out", "mlp_out") for i in summary["layers"]),
                           key=lambda c: (p["sites"][c[0]]["flipped"][c[1]] or 0, p["sites"][c[0]]["share"][c[1]] or 0))
    lines = [
        f"# Where over-refusal arises: {summary['defended']} vs {summary['base']}",
        "",
        f"Records: `{summary['data']}`, evaluated on the {summary['split']} split, directions fitted on "
        f"{summary['fit_split']}; {summary['n_records']['lookalike']} lookalike prompts patched and attributed.",
        "",
        "## In words",
        "",
    ]
    if loc["layers"]:
        a, b = loc["layers"]
        stages = (f"the embeddings and blocks 0–{b}" if b > 0 else "the embeddings and block 0") if a < 0 else \
            (f"blocks {a}–{b}" if b > a else f"block {a}")
        flipped = p["sites"]["resid_post"]["flipped"]
        lines.append(f"- **Where it enters.** Writing the base model's residual stream into the defended model on "
                     f"the {p['n_prompts']} lookalike prompts (the defended model refuses {p['target_refused']}) "
                     f"turns {100 * flipped[-1]:.0f}% of those refusals into compliance when every block comes from "
                     f"the base; {stages} let in {100 * loc['share']:.0f}% of that. The single component that "
                     f"moves it most is `{best}` of block {best_layer} ({100 * p['sites'][best]['flipped'][best_layer]:.0f}%"
                     f" of refusals flipped alone); the embeddings alone flip "
                     f"{100 * p['sites']['embed']['flipped'][0]:.0f}%. On the refusal score (defended "
                     f"{p['target_score']:+.2f}, base {p['source_score']:+.2f}), the same block closes "
                     f"{p['sites'][best]['share'][best_layer]:.2f} of the gap.")
    else:
        lines.append(f"- **Where it enters.** Patching does not localise it: {loc.get('note')}.")
    if (top := summary["patching_heads"]["top"]) and top[0]["flipped"]:
        named = [f"block {t['layer']} head {t['head']} {100 * t['flipped']:.0f}%" for t in top[:3] if t["flipped"]]
        lines.append(f"- **Which heads.** Writing one attention head's output from the base into the defended model "
                     f"(each head of blocks {', '.join(map(str, summary['patching_heads']['layers']))}) flips at "
                     f"most these shares of its refusals: {', '.join(named)}." + _reading(summary.get("head_reading")))
    harm_line = _harm_line(summary)
    lines += [
        harm_line,
        f"- **Which words.** Ranked by how much more they push the defended model than the base to refuse, the top "
        f"words are {', '.join('`' + e['token'] + '`' for e in summary['trigger_tokens'][:10])}; "
        f"precision at 10 against the records' trigger words is {summary['trigger_precision_at_10']:.1f} "
        f"({summary['trigger_precision_at_10_defended_only']:.1f} ranking the defended model alone). "
        + _flip_sentence(summary["trigger_tokens"][:10]),
        f"- **Base vs defended.** Cosine of the refusal directions per layer: "
        f"{', '.join(f'{c:.2f}' for c in summary['direction_cosine']['refusal'])}; of the harm directions: "
        f"{', '.join(f'{c:.2f}' for c in summary['direction_cosine']['harm'])}. Refusal vs harm direction inside the "
        f"defended model: {', '.join(f'{c:.2f}' for c in summary['direction_cosine']['refusal_vs_harm_defended'])}.",
        "",
        "## Probe accuracy by layer (cross-validated, 95% Wilson interval)",
        "",
        "| concept | model | " + " | ".join(f"layer {i}" for i in summary["layers"]) + " |",
        "|---|---|" + "---|" * len(summary["layers"]),
    ]
    for concept in ("harm", "refusal", "trigger"):
        for role in ("base", "defended"):
            cells = ["–"] * len(summary["layers"]) if acc[concept][role] is None else [
                format_rate(s["accuracy"]) for s in acc[concept][role]]
            lines.append(f"| {concept} | {role} | " + " | ".join(cells) + " |")
    lines += [f"\nThe {concept} probe is {why}." for concept, why in summary.get("unscored", {}).items()]
    lines += ["", "## Patching: refusals flipped / refusal-score gap closed", "",
              "| site | " + " | ".join(f"layer {i}" for i in summary["layers"]) + " |",
              "|---|" + "---|" * len(summary["layers"])]
    for site in ("resid_post", "attn_out", "mlp_out"):
        cells = [f"{f:.2f} / {s:.2f}" if f is not None and s is not None else "–"
                 for f, s in zip(p["sites"][site]["flipped"], p["sites"][site]["share"])]
        lines.append(f"| {site} | " + " | ".join(cells) + " |")
    lines += ["", "Plots: " + ", ".join(f"[{name}]({name})" for name in summary.get("plots", PLOTS)), ""]
    path.write_text("\n".join(lines))
