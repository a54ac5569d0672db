"""One home for hook names, as TransformerLens's `get_act_name` is: the short names taxlens writes (`resid_post.3`,
`attn_out.0`) and the bridge's names they stand for (`blocks.3.hook_resid_post`), and the lists of them that caching,
probing and steering read.

>>> act_name("resid_post", 3)
'blocks.3.hook_resid_post'
>>> hook_name("attn_out.0"), hook_name("hook_embed")
('blocks.0.hook_attn_out', 'hook_embed')
>>> write_hooks(1)
['hook_embed', 'attn_out.0', 'mlp_out.0']
"""

from __future__ import annotations

LAYER_KINDS = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")


def act_name(kind: str, layer: int | None = None) -> str:
    """The bridge's hook name for `kind` ("embed", "pattern", "z", or one of `LAYER_KINDS`) at `layer`."""
    if kind == "embed":
        return "hook_embed"
    if layer is None:
        raise ValueError(f"hook kind {kind!r} needs a layer")
    if kind in ("pattern", "z"):  # z: each head's output before the output projection, [batch, pos, head, d_head]
        return f"blocks.{layer}.attn.hook_{kind}"
    if kind not in LAYER_KINDS:
        raise ValueError(f"unknown hook kind {kind!r}; choose embed, pattern, z or one of {LAYER_KINDS}")
    return f"blocks.{layer}.hook_{kind}"


def hook_name(short: str) -> str:
    """`resid_pre.3` → `blocks.3.hook_resid_pre`; full bridge names pass through unchanged."""
    kind, _, layer = short.partition(".")
    return act_name(kind, int(layer)) if kind in LAYER_KINDS and layer.isdigit() else short


def resid_post_hooks(n_layers: int) -> list[str]:
    """The residual stream after each block: layer L is `resid_post.L`."""
    return [f"resid_post.{i}" for i in range(n_layers)]


def resid_hooks(n_layers: int) -> list[str]:
    """The stream entering every block and after the last one."""
    return [f"resid_pre.{i}" for i in range(n_layers)] + [f"resid_post.{n_layers - 1}"]


def write_hooks(n_layers: int) -> list[str]:
    """The residual writes (embedding, then each block's attention and MLP outputs), in `Steering.write_targets`
    order."""
    return ["hook_embed"] + [f"{site}.{layer}" for layer in range(n_layers) for site in ("attn_out", "mlp_out")]
