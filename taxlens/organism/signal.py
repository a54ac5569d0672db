"""A quick check that harmfulness is readable inside a model: a logistic probe per layer on the residual stream at the
last prompt token, harmful vs lookalike, scored by stratified 5-fold cross-validation; the regularisation strength
is chosen inside each training fold (nested), so the score never sees its own test fold. (`probes` builds the full
tooling; this is the organism's acceptance check.)

>>> harm_probe_accuracy(load_model("organism:defended"), test_records)["best_accuracy"]   # doctest: +SKIP
0.98
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from taxlens.chat import render_prompt
from taxlens.contract import Record
from taxlens.generation import encode_batch
from taxlens.models import LoadedModel


@torch.no_grad()
def last_token_resid(model: LoadedModel, prompts: list[str], batch_size: int = 32) -> np.ndarray:
    """resid: [n_prompts, n_layers + 1, d_model], the residual stream entering each block and after the last one, at
    each prompt's final token (prompts are left-padded, so that is position -1)."""
    bridge = model.bridge
    names = [f"blocks.{i}.hook_resid_pre" for i in range(model.n_layers)]
    names.append(f"blocks.{model.n_layers - 1}.hook_resid_post")
    out = []
    for start in range(0, len(prompts), batch_size):
        batch = encode_batch(model.tokenizer, prompts[start:start + batch_size], model.device)
        store = {}

        def grab(act, hook, key=None):
            store[key] = act[:, -1].float().cpu()

        hooks = [(name, lambda act, hook, key=name: grab(act, hook, key)) for name in names]
        with bridge.hooks(fwd_hooks=hooks):
            bridge(batch["input_ids"], attention_mask=batch["attention_mask"], return_type=None)
        out.append(torch.stack([store[n] for n in names], dim=1))
    return torch.cat(out).numpy()


def harm_probe_accuracy(model: LoadedModel, records: list[Record], seed: int = 0) -> dict:
    """Cross-validated accuracy of a harmful-vs-lookalike logistic probe at every layer."""
    chosen = [r for r in records if r.kind in ("harmful", "lookalike")]
    labels = np.array([r.kind == "harmful" for r in chosen], dtype=int)
    if labels.min() == labels.max():
        raise ValueError("need both harmful and lookalike records to fit a harm probe")
    resid = last_token_resid(model, [render_prompt(model.tokenizer, r) for r in chosen])
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    accuracy = []
    for layer in range(resid.shape[1]):
        probe = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
                             {"logisticregression__C": [0.01, 0.1, 1.0, 10.0]}, cv=3)
        accuracy.append(float(cross_val_score(probe, resid[:, layer], labels, cv=folds).mean()))
    best = int(np.argmax(accuracy))
    return {"accuracy_by_layer": accuracy, "best_layer": best, "best_accuracy": accuracy[best], "n": len(chosen)}
