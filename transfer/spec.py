"""The typed cell spec: every user-facing key of a cell, checked once, before anything runs.

`CellSpec.from_config(cfg)` turns Hydra's composed config into frozen dataclasses and fails on the first bad
value with one line that names the key, the value and what is expected (`SpecError`, a ValueError). An unknown
key is refused with the nearest valid one. The launchers build the spec of every job of a sweep before the first
cell starts; `run_cell` builds it again inside the job, so a single cell is checked the same way.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from transfer.tasks import BASELINE, TASK_NAMES

FAMILIES = ("llava", "qwen", "idefics")
DTYPES = ("float32", "bfloat16", "float16")
SCHEDULES = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
             "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "warmup_stable_decay")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
DEEPSPEED_DIR = Path(__file__).resolve().parents[1] / "conf" / "train" / "deepspeed"
# Keys that name a cell or steer the run, not what is computed: left out of config_hash.
VOLATILE_KEYS = ("source_task", "seed", "sweep", "overwrite", "paths", "wandb", "threads", "grid", "plan", "mix")


class SpecError(ValueError):
    """A bad configuration value; the message is one line naming the key."""


def rule(expected: str = "", *, ge: float | None = None, gt: float | None = None, le: float | None = None,
         lt: float | None = None, check: typing.Callable[[Any], str | None] | None = None, default: Any = None,
         has_default: bool = False) -> Any:
    """A dataclass field with a range and an optional check returning an error (None when fine)."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "check": check, "expected": expected}
    return field(default=default, metadata=meta) if has_default else field(metadata=meta)


def _range_text(meta: dict) -> str:
    ops = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
    parts = [f"{op} {meta[k]:g}" for k, op in ops if meta[k] is not None]
    return " and ".join(parts)


def _fail(key: str, value: Any, expected: str) -> SpecError:
    return SpecError(f"{key}={value!r}: expected {expected}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce(value: Any, kind: Any, key: str, meta: dict) -> Any:
    """`value` as type `kind` (int, float, bool, str, Literal, list[str], a spec dataclass, or X | None)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if value == "???":
        raise SpecError(f"{key} is required; pass {key}=...")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return _coerce(value, kind, key, meta)
    if dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise _fail(key, value, f"a group of keys ({', '.join(f.name for f in dataclasses.fields(kind))})")
        return parse(kind, value, key + ".")
    if origin is Literal:
        if value not in args:
            raise _fail(key, value, f"one of: {', '.join(map(str, args))}")
        return value
    if origin is list:
        item = args[0] if args else str
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, str) if item is str else _is_number(v) and (item is float or isinstance(v, int))
                for v in value):
            raise _fail(key, value, meta["expected"] or ("a list of names, e.g. [a,b]" if item is str
                                                         else f"a list of {item.__name__} values"))
        value = [float(v) for v in value] if item is float else list(value)
    elif kind is bool:
        if not isinstance(value, bool):
            raise _fail(key, value, "true or false")
    elif kind is int:
        if not (isinstance(value, int) and not isinstance(value, bool)):
            raise _fail(key, value, f"a whole number{' ' + _range_text(meta) if _range_text(meta) else ''}")
    elif kind is float:
        if not _is_number(value) or value != value:
            raise _fail(key, value, f"a number{' ' + _range_text(meta) if _range_text(meta) else ''}")
        value = float(value)
    elif kind is str:
        if not isinstance(value, str):
            raise _fail(key, value, meta["expected"] or "a string")
    for name, ok in (("ge", lambda v, b: v >= b), ("gt", lambda v, b: v > b), ("le", lambda v, b: v <= b),
                     ("lt", lambda v, b: v < b)):
        if meta.get(name) is not None and not ok(value, meta[name]):
            raise _fail(key, value, f"{'a whole number' if kind is int else 'a number'} {_range_text(meta)}")
    if meta.get("check"):
        problem = meta["check"](value)
        if problem:
            raise _fail(key, value, problem)
    return value


def unknown_key(key: str, valid: list[str]) -> SpecError:
    """The one-line error for a key no config has, with the nearest valid key when one is close."""
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]}?" if near else f"; expected one of: {', '.join(sorted(valid))}"
    return SpecError(f"unknown key {key!r}{hint}")


def parse(cls: type, node: dict, prefix: str = "") -> Any:
    """A spec dataclass from a plain dict (keys under `prefix` in messages); every value checked."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in node:
        if name not in fields:
            raise unknown_key(prefix + str(name), [prefix + n for n in fields])
    values = {}
    for name, f in fields.items():
        if name not in node:
            if f.default is not dataclasses.MISSING:
                values[name] = f.default
                continue
            raise SpecError(f"{prefix}{name} is missing; expected it in the config")
        values[name] = _coerce(node[name], hints[name], prefix + name, dict(f.metadata))
    spec = cls(**values)
    problem = spec.check() if hasattr(spec, "check") else None
    if problem:
        raise SpecError(problem)
    return spec


def safe_name(value: str) -> str | None:
    if not SAFE_NAME.fullmatch(value) or ".." in value:
        return "one folder name: letters, digits, '.', '_' or '-', starting with a letter or digit (no '/', no '..')"
    return None


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as err:
        return f"a valid regular expression ({err})"
    return None


def _task(value: str) -> str | None:
    return None if value in TASK_NAMES else f"one of: {', '.join(TASK_NAMES)}"


def _source(value: str) -> str | None:
    return None if value == BASELINE or value in TASK_NAMES else f"one of: {', '.join([BASELINE, *TASK_NAMES])}"


def _targets(value: list[str] | None) -> str | None:
    if value is None:
        return None
    bad = [t for t in value if t not in TASK_NAMES]
    if not value or bad or len(set(value)) != len(value):
        return f"null (all 13 tasks) or a non-empty list of distinct tasks from: {', '.join(TASK_NAMES)}"
    return None


def _checkpoint(value: str | None) -> str | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            return "a checkpoint directory with config.json (save_pretrained's layout), or a hub id"
        return None
    if value.startswith(("/", ".", "~")) or not HUB_ID.fullmatch(value):
        return "an existing checkpoint directory (no such directory) or a hub id such as Qwen/Qwen2.5-VL-7B-Instruct"
    return None


def _deepspeed_file(value: str) -> str | None:
    path = Path(value) if Path(value).is_absolute() else DEEPSPEED_DIR / value
    return None if path.is_file() else f"a DeepSpeed JSON file (absolute, or a name in {DEEPSPEED_DIR})"


@dataclass(frozen=True)
class TinySpec:
    """Architecture of the embedded random-init model (used when model.checkpoint is null)."""
    image_size: int = rule(ge=16)
    patch_size: int = rule(ge=1)
    merge_size: int = rule(ge=1)
    scale_factor: int = rule(ge=1)
    hidden_size: int = rule(ge=8)
    num_layers: int = rule(ge=1)
    num_heads: int = rule(ge=1)
    vision_hidden_size: int = rule(ge=8)
    vision_layers: int = rule(ge=1)
    vocab_size: int = rule(ge=300)

    def check(self) -> str | None:
        if self.image_size % self.patch_size:
            return (f"model.tiny.patch_size={self.patch_size}: expected a divisor of "
                    f"model.tiny.image_size={self.image_size}")
        for key in ("hidden_size", "vision_hidden_size"):
            if getattr(self, key) % self.num_heads:
                return (f"model.tiny.{key}={getattr(self, key)}: expected a multiple of "
                        f"model.tiny.num_heads={self.num_heads}")
        return None


@dataclass(frozen=True)
class LoraSpec:
    r: int = rule(ge=1)
    alpha: float = rule(gt=0)
    dropout: float = rule(ge=0, lt=1)
    target: str = rule(check=_regex)
    trainable_modules: list[str] = rule(default=(), has_default=True)


@dataclass(frozen=True)
class PixelSpec:
    """The image budget a real checkpoint's processor gets (null keys keep the checkpoint's own values)."""
    min_pixels: int | None = rule(ge=1, default=None, has_default=True)       # qwen: smallest image area
    max_pixels: int | None = rule(ge=1, default=None, has_default=True)       # qwen: largest image area
    longest_edge: int | None = rule(ge=1, default=None, has_default=True)     # idefics: resized longest edge
    image_splitting: bool | None = rule(default=None, has_default=True)       # idefics: tiles + a global view

    def processor_kwargs(self) -> dict:
        """The processor's from_pretrained keywords for this budget."""
        out: dict = {}
        if self.max_pixels is not None:   # the keys a checkpoint stores override `size`: set both
            out |= {"size": {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels},
                    "min_pixels": self.min_pixels, "max_pixels": self.max_pixels}
        if self.longest_edge is not None:
            out["size"] = {"longest_edge": self.longest_edge}
        if self.image_splitting is not None:
            out["do_image_splitting"] = self.image_splitting
        return out


PIXEL_KEYS = {"qwen": ("min_pixels", "max_pixels"), "idefics": ("longest_edge", "image_splitting"), "llava": ()}


@dataclass(frozen=True)
class ResourcesSpec:
    """What one cell of this model needs on a cluster: the SLURM launcher gives each class its own job array."""
    gpus: int = rule(ge=0)
    cpus: int = rule(ge=1)
    mem_gb: int = rule(ge=1)
    time_min: int = rule(gt=10)


@dataclass(frozen=True)
class ModelSpec:
    name: str = rule(check=safe_name)
    family: Literal["llava", "qwen", "idefics"] = rule()
    checkpoint: str | None = rule(check=_checkpoint)
    dtype: Literal["float32", "bfloat16", "float16"] = rule()
    answer_prefix: str = rule()
    tiny: TinySpec = rule()
    lora: LoraSpec = rule()
    pixels: PixelSpec | None = rule()
    cache_pixels: bool = rule()
    resources: ResourcesSpec | None = rule(default=None, has_default=True)
    zero_stage: int | None = rule(ge=0, le=3, default=None, has_default=True)

    def check(self) -> str | None:
        if self.pixels is None:
            return None
        allowed = PIXEL_KEYS[self.family]
        for key in ("min_pixels", "max_pixels", "longest_edge", "image_splitting"):
            if getattr(self.pixels, key) is not None and key not in allowed:
                return (f"model.pixels.{key}={getattr(self.pixels, key)!r}: expected null for the {self.family} "
                        f"family (its budget keys: {', '.join(allowed) or 'none, the image size is fixed'})")
        low, high = self.pixels.min_pixels, self.pixels.max_pixels
        if (low is None) != (high is None):
            return "model.pixels.min_pixels and model.pixels.max_pixels: expected both set, or both null"
        if low is not None and low > high:
            return f"model.pixels.min_pixels={low}: expected at most model.pixels.max_pixels={high}"
        return None


@dataclass(frozen=True)
class DataSpec:
    source: Literal["synthetic", "blink"] = rule()
    seed: int = rule()
    train_size: int | None = rule(ge=1)
    image_size: int | None = rule(ge=16)
    val_size: int | None = rule(ge=1)
    eval_split: str = rule(check=safe_name)
    train_limit: int | None = rule(ge=1)
    eval_limit: int | None = rule(ge=1)
    root: str | None = rule(default=None, has_default=True)
    train_root: str | None = rule(default=None, has_default=True)
    holdout_train_fraction: float = rule(gt=0, lt=1, default=0.5, has_default=True)

    def check(self) -> str | None:
        if self.source == "blink":
            if not self.root or not Path(self.root).is_dir():
                return (f"data.root={self.root!r} is not a directory; expected a local BLINK snapshot "
                        "(<root>/<Config>/val-00000-of-00001.parquet)")
            present = {p.name for p in Path(self.root).iterdir() if p.is_dir() and any(p.glob("*.parquet"))}
            missing = sorted(set(TASK_NAMES) - present)
            if missing:
                return f"data.root={self.root!r}: BLINK snapshot lacks configs: {', '.join(missing)}"
            from transfer.data.blink import check_file, split_files

            for task in TASK_NAMES:
                for file in split_files(self.root, task, "val"):
                    check_file(file)
            if self.train_root is not None and not Path(self.train_root).is_dir():
                return (f"data.train_root={self.train_root!r}: expected a directory of BLINK-format training data "
                        "(<dir>/<Config>/train-*.parquet), or null")
            return None
        if self.train_size is None or self.image_size is None:
            return "data.train_size and data.image_size: expected whole numbers for the synthetic suite"
        return None


@dataclass(frozen=True)
class PretrainSpec:
    """The embedded tiny models' pretraining stage."""
    steps: int = rule(ge=1)
    lr: float = rule(gt=0)
    batch_size: int = rule(ge=1)
    warmup_steps: int = rule(ge=0)
    size_per_kind: int = rule(ge=1)
    data_seed: int = rule()
    init_seed: int = rule()


@dataclass(frozen=True)
class DeepSpeedSpec:
    config: str = rule(check=_deepspeed_file)
    stage: int = rule(ge=0, le=3)
    master_port: int | None = rule(ge=1024, le=65535)

    @property
    def path(self) -> Path:
        return Path(self.config) if Path(self.config).is_absolute() else DEEPSPEED_DIR / self.config


@dataclass(frozen=True)
class TrainSpec:
    steps: int = rule(ge=1)
    batch_size: int = rule(ge=1)
    grad_accum: int = rule(ge=1)
    global_batch: int | None = rule(ge=1)
    lr: float = rule(gt=0)
    weight_decay: float = rule(ge=0)
    schedule: str = rule(check=lambda v: None if v in SCHEDULES else f"one of: {', '.join(SCHEDULES)}")
    warmup_steps: int = rule(ge=0)
    max_grad_norm: float = rule(gt=0)
    save_steps: int = rule(ge=0)
    bf16: bool = rule()
    activation_checkpointing: bool = rule()
    deepspeed: DeepSpeedSpec | None = rule()

    def for_world(self, world: int) -> TrainSpec:
        """The spec with grad_accum set so that a step sees `global_batch` questions over `world` processes (every
        size of a model then trains on the same batches, whatever its GPUs); itself without a global batch."""
        if self.global_batch is None:
            return self
        per_step = self.batch_size * world
        if self.global_batch % per_step:
            raise SpecError(f"train.global_batch={self.global_batch}: expected a multiple of train.batch_size x "
                            f"processes = {self.batch_size} x {world}")
        return dataclasses.replace(self, grad_accum=self.global_batch // per_step)


@dataclass(frozen=True)
class EvalSpec:
    mode: Literal["loglik", "generate"] = rule()
    batch_size: int = rule(ge=1)
    batch_tokens: int | None = rule(ge=1)
    calibration: Literal["none", "batch"] = rule()
    merge_lora: bool = rule()
    max_new_tokens: int = rule(ge=1)


@dataclass(frozen=True)
class SourceSpec:
    name: str = rule(check=_source)


@dataclass(frozen=True)
class MixtureSpec:
    """A training mixture of source tasks (the data-selection experiment's arms, transfer.selection)."""
    label: str          # the cell's name in place of a source task
    tasks: tuple[str, ...]
    weights: tuple[float, ...]
    examples: int       # training questions in all (every arm of an experiment gets the same)
    steps_scale: float  # share of train.steps (the budget curve)


@dataclass(frozen=True)
class MixSpec:
    """`mix.arms` (a JSON list the selection experiment writes) and `mix.arm` (an index into it): the cell trains
    on that arm's mixture instead of a source task (with source_task=none)."""
    arms: str | None = rule()
    arm: int | None = rule(ge=0)

    def check(self) -> str | None:
        if (self.arms is None) != (self.arm is None):
            return "mix.arms and mix.arm: expected both set (a mixture cell), or both null"
        if self.arms is None:
            return None
        try:
            arms = json.loads(Path(self.arms).read_text())
        except (OSError, ValueError) as err:
            return f"mix.arms={self.arms!r}: expected a readable JSON list of arms ({err})"
        if not isinstance(arms, list) or self.arm >= len(arms):
            return f"mix.arm={self.arm}: expected an index below the {len(arms)} arms of {self.arms}"
        return _mixture_problem(arms[self.arm], f"mix.arm={self.arm}")

    @property
    def mixture(self) -> MixtureSpec | None:
        if self.arms is None:
            return None
        entry = json.loads(Path(self.arms).read_text())[self.arm]
        return MixtureSpec(entry["label"], tuple(entry["tasks"]), tuple(float(w) for w in entry["weights"]),
                           int(entry["examples"]), float(entry.get("steps_scale", 1.0)))


def _mixture_problem(entry: dict, key: str) -> str | None:
    if not isinstance(entry, dict) or not {"label", "tasks", "weights", "examples"} <= set(entry):
        return f"{key}: expected an arm with label, tasks, weights and examples"
    if safe_name(str(entry["label"])):
        return f"{key}: label {entry['label']!r} is not one folder name"
    tasks, weights = entry["tasks"], entry["weights"]
    if any(t not in TASK_NAMES for t in tasks) or len(set(tasks)) != len(tasks):
        return f"{key}: tasks {tasks!r}: expected distinct tasks from: {', '.join(TASK_NAMES)}"
    if len(weights) != len(tasks) or any(not _is_number(w) or w < 0 for w in weights) or (tasks and not sum(weights)):
        return f"{key}: weights {weights!r}: expected one share >= 0 per task, not all 0"
    if not isinstance(entry["examples"], int) or entry["examples"] < 1:
        return f"{key}: examples {entry['examples']!r}: expected a whole number >= 1"
    if not _is_number(entry.get("steps_scale", 1.0)) or not 0 < entry.get("steps_scale", 1.0) <= 1:
        return f"{key}: steps_scale {entry.get('steps_scale')!r}: expected a share of train.steps in (0, 1]"
    return None


def _folder(value: str) -> str | None:
    path = Path(value)
    if path.exists() and not path.is_dir():
        return "a folder for the sweeps (this path is a file)"
    return None


@dataclass(frozen=True)
class PathsSpec:
    outputs: str = rule(check=_folder)
    cache: str = rule(check=_folder)


@dataclass(frozen=True)
class WandbSpec:
    mode: Literal["offline", "online", "disabled"] = rule()
    project: str = rule(check=lambda v: None if v.strip() else "a W&B project name")
    entity: str | None = rule()
    init_timeout: float = rule(gt=0)


@dataclass(frozen=True)
class GridSpec:
    """Which cells of a multirun run: all, a seeded fraction of the sources (the `none` cells always run), or a
    list of model/source/seed names."""
    fraction: float = rule(gt=0, le=1)
    cells: list[str] | None = rule()
    seed: int = rule(ge=0)


@dataclass(frozen=True)
class CellSpec:
    """One cell: model x source_task x seed, and everything that decides what it computes."""
    model: ModelSpec = rule()
    source_task: SourceSpec = rule()
    data: DataSpec = rule()
    pretrain: PretrainSpec = rule()
    train: TrainSpec = rule()
    eval: EvalSpec = rule()
    sweep: str = rule(check=safe_name)
    seed: int = rule(ge=0)
    targets: list[str] | None = rule(check=_targets)
    overwrite: bool = rule()
    threads: int | None = rule(ge=1)
    paths: PathsSpec = rule()
    wandb: WandbSpec = rule()
    grid: GridSpec = rule()
    plan: bool = rule()
    mix: MixSpec = rule()

    @classmethod
    def from_config(cls, cfg: DictConfig | dict) -> CellSpec:
        """The spec of a composed config; a bad value raises SpecError (one line naming the key)."""
        return parse(cls, as_dict(cfg))

    @property
    def source(self) -> str:
        """The cell's source: a task, `none`, or a mixture's label."""
        mixture = self.mixture
        return mixture.label if mixture else self.source_task.name

    @cached_property
    def mixture(self) -> MixtureSpec | None:
        return self.mix.mixture

    @property
    def finetunes(self) -> bool:
        return self.source != BASELINE and (self.mixture is None or bool(self.mixture.tasks))

    def check(self) -> str | None:
        if self.mix.arms is not None and self.source_task.name != BASELINE:
            return f"source_task={self.source_task.name}: expected none with mix.arms (a mixture cell)"
        return None

    @property
    def target_tasks(self) -> list[str]:
        return list(self.targets or TASK_NAMES)

    @property
    def name(self) -> str:
        """The cell's name in logs and W&B: model/source/seed<k>."""
        return f"{self.model.name}/{self.source}/seed{self.seed}"

    @property
    def sweep_dir(self) -> Path:
        return Path(self.paths.outputs) / self.sweep

    @property
    def cache_dir(self) -> Path:
        return Path(self.paths.cache)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def config_hash(self) -> str:
        """Hash of what the cell computes: the spec minus cell identity and run-control keys (a mixture's tasks,
        shares, examples and steps are what it computes, its label and file are its identity)."""
        data = {k: v for k, v in self.to_dict().items() if k not in VOLATILE_KEYS}
        data["model"].pop("resources")   # where a cell runs on a cluster, not what it computes
        if self.mixture:
            data["mixture"] = {k: v for k, v in dataclasses.asdict(self.mixture).items() if k != "label"}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def as_dict(cfg: DictConfig | dict) -> dict:
    """The resolved config as plain containers; a broken interpolation is a one-line SpecError."""
    if isinstance(cfg, dict):
        return cfg
    if "hydra" in cfg:   # a launcher's or callback's view of the config: the job's config is the rest
        cfg = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", "") or "config"
        raise SpecError(f"{key}: {str(err).splitlines()[0]}") from None


def flat_keys(node: dict, prefix: str = "") -> list[str]:
    """Every leaf key of a nested dict, dotted (for nearest-key suggestions)."""
    out = []
    for key, value in node.items():
        out += flat_keys(value, f"{prefix}{key}.") if isinstance(value, dict) and value else [f"{prefix}{key}"]
    return out


def _existing_file(value: str | None) -> str | None:
    if value is None or Path(value).is_file():
        return None
    return "an existing CSV or parquet file (no such file)"


@dataclass(frozen=True)
class AnalysisSpec:
    include_diagonal: bool = rule()
    graph_threshold: float = rule(ge=0)
    clique_min_pgf: float = rule(ge=0)
    selection_threshold: float = rule()
    persona_alpha: float = rule(gt=0, lt=1)
    persona_permutations: int = rule(ge=1)


@dataclass(frozen=True)
class OutputsSpec:
    outputs: str = rule(check=_folder)


@dataclass(frozen=True)
class ReduceSpec:
    """The reducer's keys (conf/reduce.yaml)."""
    sweep: str | None = rule(check=lambda v: None if v is None else safe_name(v))
    from_table: str | None = rule(check=_existing_file)
    out: str | None = rule()
    n_boot: int = rule(ge=1)
    pgf_from: Literal["scored", "raw"] = rule()
    paths: OutputsSpec = rule()
    analysis: AnalysisSpec = rule()
    wandb: WandbSpec = rule()
    analysis_on: Literal["observed", "completed"] = rule(default="observed", has_default=True)

    @classmethod
    def from_config(cls, cfg: DictConfig | dict) -> ReduceSpec:
        return parse(cls, as_dict(cfg))


def _existing_path(value: str) -> str | None:
    return None if Path(value).exists() else "an existing BLINK snapshot folder or idx/answer table (no such path)"


@dataclass(frozen=True)
class RescoreSpec:
    """The re-scorer's keys (conf/rescore.yaml)."""
    sweep: str = rule(check=safe_name)
    key: str = rule(check=_existing_path)
    out: str | None = rule(check=lambda v: None if v is None else safe_name(v))
    paths: OutputsSpec = rule()

    @classmethod
    def from_config(cls, cfg: DictConfig | dict) -> RescoreSpec:
        return parse(cls, as_dict(cfg))


def _budgets(value: list) -> str | None:
    if not value or any(not _is_number(b) or not 0 < b <= 1 for b in value):
        return "a non-empty list of shares of train.steps in (0, 1], e.g. [0.25,0.5,1.0]"
    return None


@dataclass(frozen=True)
class SelectSpec:
    """The data-selection experiment's keys (conf/select.yaml)."""
    sweep: str = rule(check=safe_name)
    from_sweep: str = rule(check=safe_name)
    model: ModelSpec = rule()
    targets: list[str] = rule(check=lambda v: _targets(v) if v else "a non-empty list of target tasks")
    k: int = rule(ge=1, le=12)
    n_random: int = rule(ge=5)
    seeds: list[int] = rule(check=lambda v: None if v and all(isinstance(s, int) and s >= 0 for s in v)
                            else "a non-empty list of whole numbers >= 0")
    budgets: list[float] = rule(check=_budgets)
    examples: int | None = rule(ge=1)
    split_salt: str = rule()
    n_boot: int = rule(ge=100)
    run: bool = rule()
    overrides: list[str] = rule()
    paths: OutputsSpec = rule()
    wandb: WandbSpec = rule()

    @classmethod
    def from_config(cls, cfg: DictConfig | dict) -> SelectSpec:
        return parse(cls, as_dict(cfg))
