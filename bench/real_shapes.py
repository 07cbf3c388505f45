"""Benchmark: evaluation at real input shapes on the CPU, with pixels cached per question (the embedded default's
way) against pixels made per batch with a token budget (the real path's way).

Each family's real-class smoke checkpoint (transfer.models.smoke: small width, the real processor settings and
the pixel budget of its conf/model config) scores a BLINK-layout snapshot of realistic images (640-1500 px, JPEG
and PNG). Each run is its own process, so its peak RSS is its own. Prints, per family and way: questions, prompt
tokens per question, stored pixel bytes per question, peak RSS, questions per second, and the ratios.

    python bench/real_shapes.py [--per-task 20] [--families qwen llava idefics]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = {"llava": "llava-1.5-7b", "qwen": "qwen2.5vl-7b", "idefics": "idefics3-8b"}


def measure(family: str, root: Path, checkpoint: Path, cached: bool, batch_tokens: int) -> dict:
    """One way, in this process: encode the snapshot's val questions and score them; the figures as a dict."""
    import torch
    from hydra import compose, initialize_config_dir

    from transfer.data.blink import list_configs, read_split
    from transfer.encode import ImageSource, encode_questions
    from transfer.evaluate import score_examples
    from transfer.models.families import load_pretrained
    from transfer.spec import CellSpec

    torch.set_num_threads(1)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        model = CellSpec.from_config(compose(config_name="config", overrides=[f"model={REAL[family]}"])).model
    loaded = load_pretrained(family, checkpoint, "float32", model.pixels.processor_kwargs() if model.pixels else None)
    questions = [q for task in list_configs(root) for q in read_split(root, task, "val")]
    start = time.perf_counter()
    examples = encode_questions(loaded.processor, family, model.answer_prefix, questions, pixels=cached)
    encoded = time.perf_counter() - start
    stored = sum(t.numel() * t.element_size() for ex in examples for t in ex.get("images", {}).values())
    source = None if cached else ImageSource(loaded.processor, family, lambda: questions)
    start = time.perf_counter()
    score_examples(loaded.model.eval(), examples, family, loaded.tokenizer.pad_token_id, batch_size=16,
                   images=source, batch_tokens=None if cached else batch_tokens)
    scored = time.perf_counter() - start
    return {"questions": len(examples), "tokens": sum(len(ex["prompt_ids"]) for ex in examples) / len(examples),
            "stored_mib": stored / 2**20, "encode_s": encoded, "score_s": scored,
            "questions_per_s": len(examples) / (encoded + scored),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-task", type=int, default=20, help="val questions per task (BLINK has 117-172)")
    parser.add_argument("--families", nargs="+", default=list(REAL), choices=list(REAL))
    parser.add_argument("--batch-tokens", type=int, default=16384, help="token budget of the per-batch way")
    parser.add_argument("--one", nargs=4, metavar=("FAMILY", "ROOT", "CHECKPOINT", "CACHED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        family, root, checkpoint, cached = args.one
        print(json.dumps(measure(family, Path(root), Path(checkpoint), cached == "1", args.batch_tokens)))
        return
    from transfer.models.smoke import build_smoke, write_blink_fixture

    work = Path(tempfile.mkdtemp(prefix="transfer-real-shapes-"))
    root = write_blink_fixture(work / "BLINK", per_task=args.per_task)
    print(f"BLINK-layout snapshot: {args.per_task} questions per task, 13 tasks, realistic images (in {work})")
    for family in args.families:
        checkpoint = build_smoke(family, work / family)
        runs = {}
        for cached in (True, False):
            out = subprocess.run([sys.executable, __file__, "--batch-tokens", str(args.batch_tokens), "--one",
                                  family, str(root), str(checkpoint), "1" if cached else "0"],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            runs[cached] = json.loads(out.stdout.strip().splitlines()[-1])
        before, after = runs[True], runs[False]
        print(f"\n== {family} ({REAL[family]}'s processor and pixel budget): {before['questions']} questions, "
              f"{before['tokens']:.0f} prompt tokens per question")
        for name, r in (("pixels cached per question", before), ("pixels made per batch, token budget", after)):
            print(f"  {name:38s} stored pixels {r['stored_mib']:8.1f} MiB ({r['stored_mib'] / r['questions']:.2f} "
                  f"MiB/question)  peak RSS {r['peak_rss_gib']:.2f} GiB  {r['questions_per_s']:.2f} questions/s")
        per_question = before["stored_mib"] / before["questions"]
        print(f"  ratios: peak RSS per-batch/cached {after['peak_rss_gib'] / before['peak_rss_gib']:.2f}; "
              f"throughput per-batch/cached {after['questions_per_s'] / before['questions_per_s']:.2f}; "
              f"cached pixels for BLINK val (1901 questions) would be {per_question * 1901 / 1024:.1f} GiB")


if __name__ == "__main__":
    main()
