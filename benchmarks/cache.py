"""Time and peak memory of caching activations: a bare forward pass, `probes` caching every layer's residual at
the last 4 prompt positions, and TransformerLens `run_with_cache` keeping its full cache, over the same prompts.
Plus a streaming run: `probes` caching the same prompts 4 times over, to show peak memory stays bounded by one
batch however many prompts stream through.

The full cache is taken one batch at a time and dropped before the next (holding all 256 prompts' full caches
of the wide model passed 17 GB of RSS in a trial and was stopped): the cheapest way to use it, so the ratios
against it are conservative. Each (model, mode) runs in a fresh process, so one measurement's freed memory can't
hide another's growth. Memory is the peak increase of process RSS (CPU; sampled every millisecond) or of allocated
CUDA memory (GPU) over the run. On the CPU the memory figures come from a second process per mode run with
`MALLOC_MMAP_THRESHOLD_=65536`: glibc then maps every allocation of 64 KiB or more on its own and unmaps it when freed,
so RSS follows the tensors alive rather than what the allocator keeps for reuse (which made two runs of the same
script read 7.0 and 9.0); timings come from the first process, under the default allocator, whose RSS peak is kept
as `peak_mb_default_allocator`. Models: the shipped organism, and random-weight Llamas with the organism's tokenizer (`wide`: d_model 1024,
8 layers; `llama-3.2-1b`: that model's shape). The headline ratios are the last model's. Runs unchanged on CUDA
(device and dtype chosen as everywhere in taxlens).

    python benchmarks/cache.py --json runs/bench/cache.json            # 256 prompts, both models
    python benchmarks/cache.py --prompts 64 --models organism           # a quick look
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue as queue_module
import statistics
import tempfile
import threading
import time
from pathlib import Path

from random_llama import SHAPES, build_random_llama  # a sibling script

ROOT = Path(__file__).resolve().parents[1]
MODES = ("bare", "probes", "full_cache", "streaming")


class PeakMemory:
    """Peak increase of memory over the `with` block: CUDA allocator stats on a GPU, else sampled process RSS."""

    def __init__(self, device: str):
        self.device, self.peak = device, 0

    def __enter__(self):
        import psutil
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return self
        self.process, self.start, self.running = psutil.Process(), psutil.Process().memory_info().rss, True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss - self.start)
            time.sleep(0.001)

    def __exit__(self, *exc):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.start
        else:
            self.running = False
            self.thread.join()
            self.peak = max(self.peak, self.process.memory_info().rss - self.start)


def _measure(spec: str, mode: str, n_prompts: int, repeats: int, batch_size: int, queue) -> None:
    import torch

    from probes.cache import cache_activations
    from taxlens.chat import render_prompt
    from taxlens.contract import load_records
    from taxlens.generation import encode_batch
    from taxlens.hooks import resid_post_hooks
    from taxlens.models import load_model

    torch.manual_seed(0)
    model = load_model(spec)
    records = load_records(ROOT / "datasets" / "toolcalls.jsonl")
    n = n_prompts * (4 if mode == "streaming" else 1)
    records = [records[i % n_prompts] for i in range(n)]  # streaming: the same prompts 4 times, same batch shapes
    prompts = [render_prompt(model.tokenizer, r) for r in records]
    # the batches `cache_activations` runs: prompts of alike length together
    prompts.sort(key=lambda p: len(model.tokenizer(p, add_special_tokens=False)["input_ids"]))
    batches = [encode_batch(model.tokenizer, prompts[i:i + batch_size], model.device) for i in range(0, n, batch_size)]
    hooks = resid_post_hooks(model.n_layers)

    def run():
        if mode == "bare":
            for b in batches:
                model.bridge(b["input_ids"], attention_mask=b["attention_mask"])
        elif mode == "full_cache":  # one batch's full cache held at a time: the kindest use of it
            for b in batches:
                _, cache = model.bridge.run_with_cache(b["input_ids"], attention_mask=b["attention_mask"])
                del cache
        else:
            with tempfile.TemporaryDirectory() as tmp:
                cache_activations(model, records, tmp, hooks=hooks,
                                  positions=(-4, -3, -2, -1), batch_size=batch_size, progress=False)

    with torch.no_grad():
        model.bridge(batches[0]["input_ids"], attention_mask=batches[0]["attention_mask"])  # warm-up
        seconds, peaks = [], []
        for _ in range(repeats):
            with PeakMemory(str(model.device)) as mem:
                start = time.perf_counter()
                run()
                if str(model.device).startswith("cuda"):
                    torch.cuda.synchronize()
                seconds.append(time.perf_counter() - start)
            peaks.append(mem.peak)
    queue.put({"model": spec, "mode": mode, "prompts": n, "hooks": len(hooks), "device": str(model.device),
               "seconds": round(statistics.median(seconds), 4), "seconds_all": [round(s, 4) for s in seconds],
               "peak_mb": round(max(peaks) / 2**20, 1)})


LIVE_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}


def measure(spec: str, mode: str, n_prompts: int, repeats: int, batch_size: int, env: dict | None = None) -> dict:
    """One (model, mode) measurement in a fresh process, started with `env` added to the environment."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(spec, mode, n_prompts, repeats, batch_size, queue))
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        proc.start()  # a spawned child reads the environment at start (glibc reads MALLOC_* then)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    while True:  # a child that dies (an import error, out of memory) never puts a result: don't wait forever
        try:
            result = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"measuring {mode} on {spec} failed: its process exited with code {proc.exitcode}")
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models-dir", default=None, help="where random-weight models are built or reused "
                                                             "(default: a temporary folder)")
    parser.add_argument("--models", default="organism,wide",
                        help=f"comma-separated: organism and random-weight shapes {list(SHAPES)}")
    args = parser.parse_args()

    results = {"prompts": args.prompts, "batch_size": args.batch_size, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        models_dir = Path(args.models_dir or tmp)
        specs = {name: "organism:defended" if name == "organism" else build_random_llama(models_dir / name, name)
                 for name in args.models.split(",")}
        for name in args.models.split(","):
            rows = {mode: measure(specs[name], mode, args.prompts, args.repeats, args.batch_size) for mode in MODES}
            if not rows["bare"]["device"].startswith("cuda"):  # CUDA's allocator stats count live tensors already
                for mode, row in rows.items():
                    live = measure(specs[name], mode, args.prompts, 1, args.batch_size, env=LIVE_MEMORY_ENV)
                    row["peak_mb_default_allocator"], row["peak_mb"] = row["peak_mb"], live["peak_mb"]
            bare, probes, full, stream = (rows[m] for m in MODES)
            results["models"][name] = {
                "runs": rows,
                "ratio_vs_bare": round(probes["seconds"] / bare["seconds"], 3),
                "speedup_vs_full_cache": round(full["seconds"] / probes["seconds"], 3),
                "memory_ratio_vs_full_cache": round(full["peak_mb"] / max(probes["peak_mb"], 0.1), 1),
                "streaming_peak_ratio_4x_prompts": round(stream["peak_mb"] / max(probes["peak_mb"], 0.1), 2),
            }
            if "peak_mb_default_allocator" in probes:
                results["models"][name]["memory_ratio_default_allocator"] = round(
                    full["peak_mb_default_allocator"] / max(probes["peak_mb_default_allocator"], 0.1), 1)
            print(f"{name:9s} " + "  ".join(f"{m}: {r['seconds']:.2f} s {r['peak_mb']:.0f} MB" for m, r in rows.items()))
    headline = list(results["models"].values())[-1]  # the widest model asked for
    for key in ("ratio_vs_bare", "speedup_vs_full_cache", "memory_ratio_vs_full_cache", "streaming_peak_ratio_4x_prompts"):
        results[key] = headline[key]
    print(json.dumps({k: v for k, v in results.items() if k != "models"}, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
