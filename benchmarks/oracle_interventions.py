"""How much of the tax could a gated config's intervention give back if its gate never erred? Every ablation the
gated search can choose (direction layer, where the ablation starts, one- or two-sided, clamp quantile, stream
only, positions), plus ablation from the embeddings on, is applied to every benign and lookalike val prompt (an
oracle gate) and screened on the first reply token: how many of the tax records (the base does them, the defended
model does not) stop refusing, and the first-token KL on benign prompts the defended model complies with. The
best settings within the KL bound are then run with generation and their tax records sorted by cause
(`taxlens.recovery`). An experiment for the question, not a shipped search.

    python benchmarks/oracle_interventions.py STEER_DIR REPORTS_DIR --out OUT.json

STEER_DIR: a `taxlens steer` output folder (its `cache/` and `openings.json`); REPORTS_DIR: `base.json`,
`defended.json` and `ceiling.json` (`taxlens eval --reply-prefix '<tool_call>'`) on the val split.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from tqdm.auto import tqdm

from probes.cache import ActivationStore
from steering.fit import fit_vectors
from steering.hooks import Steering
from steering.search import ABLATION_VARIANTS, MAX_KL, SEARCHED_POSITIONS, first_token_logprobs
from taxlens.chat import render_prompt
from taxlens.contract import load_records
from taxlens.eval_report import EvalReport
from taxlens.evaluation import evaluate
from taxlens.models import load_model
from taxlens.readout import read_openings
from taxlens.recovery import recovery_losses
from taxlens.scoring import log_kl, refusal_score


def settings(fitted, n_layers: int) -> list[tuple[dict, Steering]]:
    """Every ablation: direction layer d, start (None: the embeddings on, else the stream after that block),
    variant and positions."""
    out = []
    for d in range(n_layers):
        for start in [None, *range(n_layers)]:
            for one_sided, stream_only, quantile in ABLATION_VARIANTS:
                if start is None and (stream_only or quantile is not None):
                    continue  # stream-only and clamped ablation act on the stream after a block
                for positions in SEARCHED_POSITIONS:
                    named = {"direction_layer": d, "ablate_from": start, "one_sided": one_sided,
                             "stream_only": stream_only, "clamp_quantile": quantile, "positions": positions}
                    out.append((named, Steering(fitted.refusal[d], one_sided=one_sided, stream_only=stream_only,
                                                positions=positions, ablate_from=start,
                                                **fitted.refusal_targets(d, quantile))))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steer_dir")
    parser.add_argument("reports")
    parser.add_argument("--model", default="organism:defended")
    parser.add_argument("--data", default="datasets/toolcalls.jsonl")
    parser.add_argument("--generate", type=int, default=4, help="best screened settings run with generation")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    reports = {name: EvalReport.read(Path(args.reports) / f"{name}.json") for name in ("base", "defended", "ceiling")}
    model = load_model(args.model, device="cpu")
    train = load_records(args.data, split="train")
    openings = read_openings(model, train, cache=Path(args.steer_dir) / "openings.json", progress=False).openings
    model.openings = openings
    records = [r for r in load_records(args.data, split="val") if r.kind in ("benign", "lookalike")]
    prompts = [render_prompt(model.tokenizer, r) for r in records]
    ok = {name: r.ok_by_id(("benign", "lookalike")) for name, r in reports.items()}
    tax = torch.tensor([ok["base"][r.id] and not ok["defended"][r.id] for r in records])
    lookalike = torch.tensor([r.kind == "lookalike" for r in records])
    baseline = first_token_logprobs(model, prompts)
    complied_benign = torch.tensor([r.kind == "benign" for r in records]) & (refusal_score(baseline, openings) <= 0)
    candidates = settings(fit_vectors(ActivationStore(Path(args.steer_dir) / "cache")), model.n_layers)
    rows = []
    for named, steering in tqdm(candidates, desc="screen under an oracle gate"):
        logprobs = first_token_logprobs(model, prompts, steering)
        complies = refusal_score(logprobs, openings) <= 0
        kl = log_kl(baseline, logprobs)
        rows.append({**named, "tax_complies_lookalike": int((complies & tax & lookalike).sum()),
                     "tax_complies_benign": int((complies & tax & ~lookalike).sum()),
                     "kl_benign_complied": round(float(kl[complied_benign].mean()), 4)})
    feasible = sorted((i for i, r in enumerate(rows) if r["kl_benign_complied"] <= MAX_KL),
                      key=lambda i: (-rows[i]["tax_complies_lookalike"] - rows[i]["tax_complies_benign"],
                                     rows[i]["kl_benign_complied"]))
    generated = []
    for i in feasible[:args.generate]:
        report = evaluate(model, records, data=args.data, split="val", steering=candidates[i][1], progress=False)
        losses = recovery_losses(reports["base"], reports["defended"], report, report, reports["ceiling"])
        generated.append({**rows[i], "losses": {k: v.to_json() for k, v in losses.items()},
                          "kl_benign_complied_generated": report.kl.benign_complied})
        print(json.dumps(generated[-1]))
    summary = {"tax": {"lookalike": int((tax & lookalike).sum()), "benign": int((tax & ~lookalike).sum())},
               "screened": len(rows), "feasible": len(feasible), "generated": generated, "rows": rows}
    Path(args.out).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{len(rows)} settings screened, {len(feasible)} within KL {MAX_KL}; tax {summary['tax']}")
    for i in feasible[:10]:
        print(rows[i])


if __name__ == "__main__":
    main()
