"""Ask a model a handful of requests and print the call (or words) it answers each with: for reading by eye how a
change of one word moves a reply. FILE holds one request a line, `DOMAIN<TAB>TEXT` (DOMAIN: file, api or db: the
tools offered, as the prompt set offers them).

    python benchmarks/ask.py organism:base benchmarks/rewordings.tsv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from taxlens.chat import render_messages
from taxlens.generation import greedy_generate
from taxlens.models import load_serving_model
from taxlens.tools import DOMAIN_TOOLS, schemas_for


def read_requests(path: Path) -> list[tuple[str, str]]:
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        domain, sep, text = line.partition("\t")
        if not sep or domain not in DOMAIN_TOOLS or not text.strip():
            raise ValueError(f"{path}:{n}: expected DOMAIN<TAB>TEXT with DOMAIN one of {sorted(DOMAIN_TOOLS)}, "
                             f"got {line!r}")
        out.append((domain, text.strip()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="organism:base, a checkpoint folder, an HF id")
    parser.add_argument("file", type=Path)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args()
    requests = read_requests(args.file)
    model = load_serving_model(args.model, device="cpu")
    prompts = [render_messages(model.tokenizer, [{"role": "user", "content": text}],
                               schemas_for(list(DOMAIN_TOOLS[domain]))) for domain, text in requests]
    for (_, text), reply in zip(requests, greedy_generate(model, prompts, max_new_tokens=args.max_new_tokens)):
        print(f"{text}\n    -> {reply.text}")


if __name__ == "__main__":
    main()
