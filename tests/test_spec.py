"""The typed cell spec: every option of every config group composes into a valid spec, and bad values fail in one
line naming the key."""
from __future__ import annotations

import dataclasses

import pytest
from hydra.utils import instantiate

from tests.helpers import compose, compose_spec
from transfer.cli import group_options
from transfer.data.blink import write_split
from transfer.embedded.suite import generate_rows
from transfer.spec import CellSpec, ReduceSpec, SpecError, unknown_key
from transfer.tasks import TASK_NAMES


@pytest.fixture(scope="module")
def blink_root(tmp_path_factory):
    """A BLINK-layout snapshot that passes the spec's checks: a readable val file per task."""
    root = tmp_path_factory.mktemp("BLINK")
    for task in TASK_NAMES:
        write_split(root, task, "val", generate_rows(task, 2, seed=0, split="val"))
    return root


@pytest.mark.parametrize("model", group_options("model"))
def test_every_model_config_composes_into_a_spec(model):
    spec = compose_spec(f"model={model}")
    assert spec.model.family in ("llava", "qwen", "idefics") and spec.model.name
    if model in ("llava", "qwen", "idefics"):
        assert spec.model.checkpoint is None and spec.model.name == model and spec.model.dtype == "float32"
    else:   # a real checkpoint of one of the families, inheriting its chat format and LoRA targets
        assert "/" in spec.model.checkpoint and spec.model.dtype == "bfloat16"
        family = compose_spec(f"model={spec.model.family}").model
        assert spec.model.lora == family.lora and spec.model.answer_prefix == family.answer_prefix
    assert spec.train.deepspeed.stage == (spec.model.zero_stage or 2)


@pytest.mark.parametrize("data", group_options("data"))
def test_every_data_config_composes_into_a_spec(data, blink_root):
    spec = compose_spec(f"data={data}", *([f"data.root={blink_root}"] if data == "blink" else []))
    assert spec.data.source == data
    assert (spec.data.val_size is None) == (data == "blink")


@pytest.mark.parametrize("launcher", group_options("hydra/launcher"))
def test_every_launcher_config_instantiates(launcher):
    cfg = compose(f"hydra/launcher={launcher}")
    instance = instantiate(cfg.hydra.launcher)
    assert instance.validate is True
    if launcher.startswith("slurm"):
        assert instance.reducer_command.startswith("python -m transfer.reduce")
        gpus = {"slurm": None, "slurm_gpu1": 1, "slurm_gpu8": 8}[launcher]
        assert cfg.hydra.launcher.gpus_per_node == gpus


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_composes_into_a_spec(experiment, blink_root):
    uses_blink = compose(f"experiment={experiment}").data.source == "blink"
    spec = compose_spec(f"experiment={experiment}", *([f"data.root={blink_root}"] if uses_blink else []))
    assert spec.sweep == experiment


def test_experiment_paper_is_the_papers_setup(blink_root):
    cfg = compose("experiment=paper", f"data.root={blink_root}")
    spec = CellSpec.from_config(cfg)
    assert spec.data.source == "blink" and spec.model.lora.r == 8 and spec.model.lora.alpha == 16
    assert spec.train.schedule == "cosine" and spec.train.bf16 and spec.train.activation_checkpointing
    sizes = {m: compose_spec("experiment=paper", f"data.root={blink_root}", f"model={m}") for m in
             ("qwen2.5vl-3b", "qwen2.5vl-7b", "qwen2.5vl-32b")}
    for m, s in sizes.items():   # every size trains on the same batches, whatever its GPUs
        gpus = s.model.resources.gpus
        assert gpus == {"qwen2.5vl-3b": 1, "qwen2.5vl-7b": 2, "qwen2.5vl-32b": 8}[m]
        step = s.train.for_world(gpus)
        assert step.batch_size * step.grad_accum * gpus == s.train.global_batch == 16
    params = cfg.hydra.sweeper.params
    assert params.model.split(",") == ["qwen2.5vl-3b", "qwen2.5vl-7b", "qwen2.5vl-32b"]
    assert params.seed.split(",") == ["0", "1", "2", "3"] and params.source_task == "glob(*)"
    assert compose_spec("experiment=paper", f"data.root={blink_root}", "model=qwen2.5vl-32b").train.deepspeed.stage == 3


def test_the_default_spec_reads_every_group():
    spec = compose_spec()
    assert (spec.model.name, spec.source, spec.data.source, spec.sweep, spec.seed) == ("qwen", "none", "synthetic",
                                                                                      "main", 0)
    assert spec.target_tasks == TASK_NAMES and spec.name == "qwen/none/seed0"
    assert spec.pretrain.steps >= 1 and spec.train.steps >= 1 and spec.eval.calibration == "batch"


@pytest.mark.parametrize("override, message", [
    ("train.steps=abc", "train.steps='abc': expected a whole number >= 1"),
    ("train.steps=0", "train.steps=0: expected a whole number >= 1"),
    ("train.lr=0", "train.lr=0.0: expected a number > 0"),
    ("seed=-1", "seed=-1: expected a whole number >= 0"),
    ("model.dtype=foo", "model.dtype='foo': expected one of: float32, bfloat16, float16"),
    ("eval.batch_size=0", "eval.batch_size=0: expected a whole number >= 1"),
    ("sweep=a/b", "sweep='a/b': expected one folder name"),
    ("model.tiny.patch_size=7", "model.tiny.patch_size=7: expected a divisor of model.tiny.image_size=64"),
])
def test_bad_values_name_the_key_and_the_value(override, message):
    with pytest.raises(SpecError) as err:
        compose_spec(override)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_an_unknown_key_suggests_the_nearest():
    with pytest.raises(SpecError, match=r"^unknown key 'train\.stepz'; did you mean train\.steps\?$"):
        compose_spec("+train.stepz=5")
    assert "expected one of" in str(unknown_key("zzz", ["train.steps", "seed"]))


def test_config_hash_covers_what_is_computed_and_nothing_else():
    spec = compose_spec("model=qwen", "source_task=Counting")
    same = dataclasses.replace(spec, seed=3, sweep="other", overwrite=True, threads=1)
    assert same.config_hash() == spec.config_hash()
    real = compose_spec("model=qwen2.5vl-7b")
    moved = compose_spec("model=qwen2.5vl-7b", "model.resources.time_min=60", "model.resources.mem_gb=8")
    assert moved.config_hash() == real.config_hash()   # where a cell runs is not what it computes
    assert dataclasses.replace(spec, targets=["Counting"]).config_hash() != spec.config_hash()


def test_the_reducer_spec(tmp_path):
    spec = ReduceSpec.from_config(compose(config_name="reduce"))
    assert spec.sweep is None and spec.n_boot >= 1 and not spec.analysis.include_diagonal
    with pytest.raises(SpecError, match=r"^from_table='/nope.csv': expected an existing CSV or parquet file"):
        ReduceSpec.from_config(compose("from_table=/nope.csv", config_name="reduce"))
    with pytest.raises(SpecError, match=r"^analysis.persona_alpha=2.0: expected a number > 0 and < 1"):
        ReduceSpec.from_config(compose("analysis.persona_alpha=2", config_name="reduce"))
