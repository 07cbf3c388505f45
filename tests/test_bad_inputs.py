"""Every bad input is one line: exit code 2, no traceback, the key (or file) and the bad value named, nothing run.

The table covers every config group, the data paths and the other entry points; the cases run side by side in
real subprocesses of the real CLI, and each case is checked on its own.
"""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import ROOT, child_env
from transfer.data.blink import write_split
from transfer.embedded.suite import generate_rows
from transfer.tasks import TASK_NAMES

RUN, REDUCE, RESCORE, SELECT = "transfer.run", "transfer.reduce", "transfer.rescore", "transfer.select"
CELL = ["model=qwen", "source_task=Counting"]

# (case id, module, arguments, substrings the one line must hold: the key and the bad value, as `key=value` where
# the message has that form, else the file or the unknown key itself; then what was expected). {blink}, {bad_*},
# {file}, ... are fixture paths, in the arguments and in the expected substrings alike.
CASES = [
    ("steps-not-a-number", RUN, [*CELL, "train.steps=abc"], ["train.steps='abc'", "whole number"]),
    ("steps-zero", RUN, [*CELL, "train.steps=0"], ["train.steps=0", ">= 1"]),
    ("lr-zero", RUN, [*CELL, "train.lr=0"], ["train.lr=0.0", "> 0"]),
    ("lr-negative", RUN, [*CELL, "train.lr=-1e-3"], ["train.lr=-0.001", "> 0"]),
    ("batch-zero", RUN, [*CELL, "train.batch_size=0"], ["train.batch_size=0", ">= 1"]),
    ("grad-accum-zero", RUN, [*CELL, "train.grad_accum=0"], ["train.grad_accum=0", ">= 1"]),
    ("warmup-negative", RUN, [*CELL, "train.warmup_steps=-1"], ["train.warmup_steps=-1", ">= 0"]),
    ("grad-norm-zero", RUN, [*CELL, "train.max_grad_norm=0"], ["train.max_grad_norm=0.0", "> 0"]),
    ("schedule-unknown", RUN, [*CELL, "train.schedule=cosinus"], ["train.schedule='cosinus'", "cosine"]),
    ("save-steps-negative", RUN, [*CELL, "train.save_steps=-5"], ["train.save_steps=-5", ">= 0"]),
    ("bf16-not-a-bool", RUN, [*CELL, "train.bf16=maybe"], ["train.bf16='maybe'", "true or false"]),
    ("zero-stage", RUN, [*CELL, "train.deepspeed.stage=5"], ["train.deepspeed.stage=5", "<= 3"]),
    ("deepspeed-file", RUN, [*CELL, "train.deepspeed.config=nope.json"],
     ["train.deepspeed.config='nope.json'", "DeepSpeed JSON file"]),
    ("master-port", RUN, [*CELL, "train.deepspeed.master_port=80"], ["train.deepspeed.master_port=80", ">= 1024"]),
    ("seed-not-a-number", RUN, [*CELL, "seed=abc"], ["seed='abc'", "whole number"]),
    ("seed-negative", RUN, [*CELL, "seed=-1"], ["seed=-1", ">= 0"]),
    ("threads-zero", RUN, [*CELL, "threads=0"], ["threads=0", ">= 1"]),
    ("targets-empty", RUN, [*CELL, "targets=[]"], ["targets=[]", "non-empty"]),
    ("targets-unknown", RUN, [*CELL, "targets=[Countng]"], ["targets=['Countng']", "tasks from"]),
    ("targets-twice", RUN, [*CELL, "targets=[Counting,Counting]"], ["targets=['Counting', 'Counting']", "distinct"]),
    ("sweep-escapes", RUN, [*CELL, "sweep=../../x"], ["sweep='../../x'", "one folder name"]),
    ("sweep-empty", RUN, [*CELL, "sweep=''"], ["sweep=''", "one folder name"]),
    ("sweep-nested", RUN, [*CELL, "sweep=a/b"], ["sweep='a/b'", "one folder name"]),
    ("overwrite-not-a-bool", RUN, [*CELL, "overwrite=perhaps"], ["overwrite='perhaps'", "true or false"]),
    ("dtype-unknown", RUN, [*CELL, "model.dtype=foo"], ["model.dtype='foo'", "bfloat16"]),
    ("checkpoint-missing", RUN, [*CELL, "model.checkpoint=/nonexistent"],
     ["model.checkpoint='/nonexistent'", "no such directory"]),
    ("checkpoint-not-a-checkpoint", RUN, [*CELL, "model.checkpoint={file_dir}"],
     ["model.checkpoint='{file_dir}'", "config.json"]),
    ("model-name-path", RUN, [*CELL, "model.name=a/b"], ["model.name='a/b'", "one folder name"]),
    ("lora-rank-zero", RUN, [*CELL, "model.lora.r=0"], ["model.lora.r=0", ">= 1"]),
    ("lora-dropout", RUN, [*CELL, "model.lora.dropout=1.5"], ["model.lora.dropout=1.5", "< 1"]),
    ("lora-regex", RUN, [*CELL, "model.lora.target='[unclosed'"], ["model.lora.target='[unclosed'", "regular"]),
    ("tiny-patch", RUN, [*CELL, "model.tiny.patch_size=7"], ["model.tiny.patch_size=7", "divisor"]),
    ("tiny-heads", RUN, [*CELL, "model.tiny.hidden_size=30"], ["model.tiny.hidden_size=30", "multiple"]),
    ("pixels-order", RUN, ["model=qwen2.5vl-7b", "source_task=Counting", "model.pixels.min_pixels=2000000"],
     ["model.pixels.min_pixels=2000000", "max_pixels"]),
    ("pixels-family", RUN, ["model=idefics3-8b", "source_task=Counting", "+model.pixels.max_pixels=5"],
     ["model.pixels.max_pixels=5", "idefics"]),
    ("val-size-zero", RUN, [*CELL, "data.val_size=0"], ["data.val_size=0", ">= 1"]),
    ("eval-limit-zero", RUN, [*CELL, "data.eval_limit=0"], ["data.eval_limit=0", ">= 1"]),
    ("train-limit-negative", RUN, [*CELL, "data.train_limit=-3"], ["data.train_limit=-3", ">= 1"]),
    ("train-size-zero", RUN, [*CELL, "data.train_size=0"], ["data.train_size=0", ">= 1"]),
    ("blink-without-root", RUN, [*CELL, "data=blink"], ["data.root=None", "BLINK snapshot"]),
    ("blink-root-missing", RUN, [*CELL, "data=blink", "data.root=/nonexistent"],
     ["data.root='/nonexistent'", "BLINK snapshot"]),
    ("blink-fraction", RUN, [*CELL, "data=blink", "data.root={blink}", "data.holdout_train_fraction=1.5"],
     ["data.holdout_train_fraction=1.5", "< 1"]),
    ("blink-corrupt-file", RUN, [*CELL, "data=blink", "data.root={bad_corrupt}"],
     ["{bad_corrupt}/Jigsaw/val-00000-of-00001.parquet", "unreadable parquet"]),
    ("blink-empty-file", RUN, [*CELL, "data=blink", "data.root={bad_empty}"],
     ["{bad_empty}/Counting/val-00000-of-00001.parquet", "no rows"]),
    ("blink-int-answers", RUN, [*CELL, "data=blink", "data.root={bad_answers}"],
     ["{bad_answers}/Art_Style/val-00000-of-00001.parquet", "column answer is Int32", "strings"]),
    ("blink-missing-task", RUN, [*CELL, "data=blink", "data.root={bad_partial}"],
     ["data.root='{bad_partial}'", "lacks configs: Art_Style, Counting"]),
    ("eval-batch-zero", RUN, [*CELL, "eval.batch_size=0"], ["eval.batch_size=0", ">= 1"]),
    ("calibration-unknown", RUN, [*CELL, "eval.calibration=platt"], ["eval.calibration='platt'", "batch"]),
    ("merge-not-a-bool", RUN, [*CELL, "eval.merge_lora=maybe"], ["eval.merge_lora='maybe'", "true or false"]),
    ("eval-mode", RUN, [*CELL, "eval.mode=greedy"], ["eval.mode='greedy'", "generate"]),
    ("batch-tokens-zero", RUN, [*CELL, "eval.batch_tokens=0"], ["eval.batch_tokens=0", ">= 1"]),
    ("new-tokens-zero", RUN, [*CELL, "eval.max_new_tokens=0"], ["eval.max_new_tokens=0", ">= 1"]),
    ("pretrain-steps", RUN, [*CELL, "pretrain.steps=0"], ["pretrain.steps=0", ">= 1"]),
    ("pretrain-lr", RUN, [*CELL, "pretrain.lr=0"], ["pretrain.lr=0.0", "> 0"]),
    ("pretrain-unknown", RUN, [*CELL, "pretrain=foo"], ["unknown pretrain 'foo'", "pretrain=foo", "tiny"]),
    ("old-base-group", RUN, [*CELL, "base=x"], ["unknown key 'base'", "pretrain.init_seed"]),
    ("wandb-mode", RUN, [*CELL, "wandb.mode=sometimes"], ["wandb.mode='sometimes'", "offline"]),
    ("wandb-timeout", RUN, [*CELL, "wandb.init_timeout=0"], ["wandb.init_timeout=0.0", "> 0"]),
    ("grid-fraction-zero", RUN, ["-m", *CELL, "grid.fraction=0"], ["grid.fraction=0.0", "> 0 and <= 1"]),
    ("grid-fraction-big", RUN, ["-m", *CELL, "grid.fraction=1.5"], ["grid.fraction=1.5", "> 0 and <= 1"]),
    ("typo-group", RUN, [*CELL, "trian.steps=5"], ["unknown key 'trian.steps'", "did you mean train.steps"]),
    ("typo-key", RUN, [*CELL, "train.stepz=5"], ["unknown key 'train.stepz'", "did you mean train.steps"]),
    ("appended-typo", RUN, [*CELL, "+train.stepz=5"], ["unknown key 'train.stepz'", "did you mean train.steps"]),
    ("unknown-model", RUN, ["-m", "model=llava,gpt4", "source_task=Counting"],
     ["unknown model 'gpt4'", "model=llava,gpt4", "idefics"]),
    ("unknown-source", RUN, ["model=qwen", "source_task=Countng"],
     ["unknown source_task 'Countng'", "source_task=Countng", "Counting"]),
    ("unknown-launcher", RUN, [*CELL, "hydra/launcher=slurmm"],
     ["unknown hydra/launcher 'slurmm'", "hydra/launcher=slurmm", "local"]),
    ("jobs-zero", RUN, ["-m", *CELL, "hydra.launcher.jobs=0"], ["hydra.launcher.jobs=0", ">= 1"]),
    ("outputs-is-a-file", RUN, [*CELL, "paths.outputs={file}"], ["paths.outputs='{file}'", "this path is a file"]),
    ("outputs-read-only", RUN, [*CELL, "paths.outputs={read_only}"],
     ["paths.outputs='{read_only}'", "Read-only file system"]),
    ("a-bad-value-in-a-sweep", RUN, ["-m", "model=qwen", "source_task=Counting,Jigsaw", "train.steps=4,abc"],
     ["train.steps='abc'", "whole number"]),
    ("reduce-n-boot", REDUCE, ["n_boot=0"], ["n_boot=0", ">= 1"]),
    ("reduce-alpha", REDUCE, ["analysis.persona_alpha=2"], ["analysis.persona_alpha=2.0", "< 1"]),
    ("reduce-table-missing", REDUCE, ["from_table=/nope.csv"], ["from_table='/nope.csv'", "no such file"]),
    ("reduce-table-corrupt", REDUCE, ["from_table={bad_table}"], ["{bad_table}", "unreadable PGF table"]),
    ("reduce-sweep-escapes", REDUCE, ["sweep=../x"], ["sweep='../x'", "one folder name"]),
    ("reduce-pgf-from", REDUCE, ["pgf_from=both"], ["pgf_from='both'", "raw"]),
    ("reduce-typo", REDUCE, ["n_bot=5"], ["unknown key 'n_bot'", "did you mean n_boot"]),
    ("rescore-key-missing", RESCORE, ["sweep=s", "key=/nope"], ["key='/nope'", "no such path"]),
    ("rescore-no-sweep", RESCORE, ["key={file}"], ["sweep is required", "sweep=..."]),   # the value is missing
    ("select-k-zero", SELECT, ["k=0"], ["k=0", ">= 1"]),
    ("select-few-draws", SELECT, ["n_random=2"], ["n_random=2", ">= 5"]),
    ("select-targets-unknown", SELECT, ["targets=[Countng]"], ["targets=['Countng']", "tasks from"]),
    ("select-budget-above-one", SELECT, ["budgets=[1.5]"], ["budgets=[1.5]", "(0, 1]"]),
    ("select-no-seeds", SELECT, ["seeds=[]"], ["seeds=[]", "non-empty"]),
    ("select-source-escapes", SELECT, ["from_sweep=../y"], ["from_sweep='../y'", "one folder name"]),
    ("select-source-missing", SELECT, ["from_sweep=nope"], ["from_sweep='nope'", "no finished cells"]),
    ("select-unknown-model", SELECT, ["model=gpt4"], ["unknown model 'gpt4'", "model=gpt4", "qwen"]),
]


def _blink(root: Path, tasks=TASK_NAMES) -> Path:
    for task in tasks:
        write_split(root, task, "val", generate_rows(task, 4, seed=1, split="val"))
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """The fixture paths, and every case's CompletedProcess, run 4 at a time, each with its own empty outputs
    folder."""
    base = tmp_path_factory.mktemp("bad")
    paths = {"blink": _blink(base / "blink"), "bad_partial": _blink(base / "partial", TASK_NAMES[2:])}
    for name in ("corrupt", "empty", "answers"):
        paths[f"bad_{name}"] = _blink(base / name)
    jigsaw = paths["bad_corrupt"] / "Jigsaw" / "val-00000-of-00001.parquet"
    jigsaw.write_bytes(jigsaw.read_bytes()[:200])   # truncated, as by an interrupted download
    counting = paths["bad_empty"] / "Counting" / "val-00000-of-00001.parquet"
    pl.read_parquet(counting).head(0).write_parquet(counting)
    art = paths["bad_answers"] / "Art_Style" / "val-00000-of-00001.parquet"
    pl.read_parquet(art).with_columns(pl.lit(1).alias("answer")).write_parquet(art)
    paths["file"] = base / "a-file.txt"
    paths["file"].write_text("not a folder\n")
    paths["file_dir"] = base / "not-a-checkpoint"
    paths["file_dir"].mkdir()
    paths["bad_table"] = base / "pgf.parquet"
    paths["bad_table"].write_bytes(b"PAR1 not really")

    paths["read_only"] = base / "read-only" / "outputs"   # a read-only file system, mounted if this machine can
    paths["read_only"].parent.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(paths["read_only"].parent)],
                             capture_output=True).returncode == 0

    def run(case):
        name, module, args, _ = case
        if "{read_only}" in " ".join(args) and not mounted:
            return name, None
        outputs = base / "outputs" / name
        outputs.mkdir(parents=True)
        argv = [a.format(**paths) for a in args]
        proc = subprocess.run([sys.executable, "-m", module, *argv], cwd=ROOT, capture_output=True, text=True,
                              env=child_env(TRANSFER_OUTPUTS=str(outputs)), timeout=300)
        return name, (proc, outputs)

    with ThreadPoolExecutor(4) as pool:
        yield {k: str(v) for k, v in paths.items()}, dict(pool.map(run, CASES))
    if mounted:
        subprocess.run(["umount", str(paths["read_only"].parent)], check=True)


def test_the_table_covers_every_config_group_and_entry_point():
    assert len(CASES) >= 40
    keys = " ".join(" ".join(args) for _, _, args, _ in CASES)
    for group in ("model.", "data", "train.", "eval.", "pretrain.", "wandb.", "grid.", "seed", "targets", "sweep",
                  "threads", "paths.", "hydra", "n_boot", "from_table", "key=", "pretrain=", "from_sweep"):
        assert group in keys, group
    assert {module for _, module, _, _ in CASES} == {RUN, REDUCE, RESCORE, SELECT}


@pytest.mark.parametrize("name, module, args, expected", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_is_one_line_naming_the_key_and_the_value(results, name, module, args, expected):
    paths, runs = results
    if runs[name] is None:
        pytest.skip("mounting a read-only tmpfs is not allowed on this machine")
    proc, outputs = runs[name]
    message = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    assert message.count("\n") == 0 and message.startswith("error: "), message
    for part in (p.format(**paths) for p in expected):
        assert part in message, (part, message)
    assert not list(outputs.rglob("cells")), "a cell folder was created"
