"""Command-line plumbing shared by the entry points: early checks of names, quiet libraries, logging."""
from __future__ import annotations

import fnmatch
import functools
import logging
import os
import re
import sys
import tempfile
from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
_MISSING = object()
_VALUED_FLAGS = frozenset({"--cfg", "-c", "--package", "-p", "--info", "-i", "--config-path", "-cp", "--config-name",
                           "-cn", "--config-dir", "-cd", "--experimental-rerun"})   # Hydra's flags that take a value
CHECKED_GROUPS = ("model", "source_task", "data", "train", "eval", "pretrain", "experiment", "hydra/launcher")


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _values(value: str) -> list[str]:
    """The option names in an override value: `a`, `a,b`, `glob(...)` (patterns), `[a,b]`."""
    glob = re.fullmatch(r"glob\((.*)\)", value)
    if glob:
        include = glob.group(1).split(",exclude=")[0].strip("[] ")
        return [f"glob:{p.strip()}" for p in include.split(",")]
    return [v.strip() for v in value.strip("[]").split(",") if v.strip()]


def check_overrides(argv: list[str], config_name: str = "config") -> None:
    """Exit with a one-line error if an override names an option that no config group has, a key that no config
    has (with the nearest valid key), a bad cell count, or an outputs folder that cannot be written."""
    _check_syntax(argv)
    _check_group_options(argv)
    _check_keys(argv, config_name)
    if config_name == "config" and not any(a.startswith(("--help", "-h", "--cfg", "--info", "-c")) for a in argv):
        _check_outputs(argv)


def _check_outputs(argv: list[str]) -> None:
    """The outputs root must be a folder this process can write (Hydra creates its run folders there first)."""
    given = [a.partition("=")[2] for a in argv if a.startswith("paths.outputs=")]
    root = Path(given[-1] if given else os.environ.get("TRANSFER_OUTPUTS", "outputs")).expanduser()
    if root.exists() and not root.is_dir():
        _fail(f"paths.outputs={str(root)!r}: expected a folder for the sweeps (this path is a file)")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as err:
        _fail(f"paths.outputs={str(root)!r}: cannot write there ({err.strerror or err})")


def _check_syntax(argv: list[str]) -> None:
    """Hydra's override grammar, checked first so that a syntax error is one line naming the override."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    for previous, arg in zip([None, *argv], argv):
        if arg.startswith("-") or previous in _VALUED_FLAGS:
            continue
        try:
            parser.parse_overrides([arg])
        except OverrideParseException as err:
            hint = "; quote values holding '=' or ',' (e.g. \"overrides=['experiment=test']\")" if "[" in arg else ""
            _fail(f"cannot parse the override {arg!r}: {str(err).splitlines()[0]}{hint}")


def _check_group_options(argv: list[str]) -> None:
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if key == "hydra.launcher.jobs":
            try:
                check_jobs(int(value) if value.isdigit() else value)
            except ValueError as err:
                _fail(str(err))
        if not sep or key not in CHECKED_GROUPS or value in ("", "null"):
            continue
        valid = group_options(key)
        for name in _values(value):
            if name.startswith("glob:"):
                if not fnmatch.filter(valid, name[5:]):
                    _fail(f"{key}={value} matches no {key}; expected a pattern over: {', '.join(valid)}")
            elif name not in valid:
                _fail(f"unknown {key} {name!r} (from {arg}); expected one of: {', '.join(valid)}")


def _first_option(group: str, value: str) -> str:
    """One option an override value of a config group selects (the first of a sweep or a glob)."""
    name = _values(value)[0]
    return fnmatch.filter(group_options(group), name[5:])[0] if name.startswith("glob:") else name


def _check_keys(argv: list[str], config_name: str) -> None:
    """Every `key=value` override must name a key of the composed config (`+key` appends, `hydra.*` is Hydra's)."""
    keys = []
    for arg in argv:
        key, sep, _ = arg.partition("=")
        if sep and not key.startswith(("+", "~", "hydra.", "hydra/")) and key not in CHECKED_GROUPS:
            keys.append(key)
    if not keys:
        return
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from transfer.spec import flat_keys, unknown_key

    groups = [f"{k}={_first_option(k, v)}" for k, _, v in (a.partition("=") for a in argv)
              if k in CHECKED_GROUPS and k != "hydra/launcher" and v not in ("", "null")
              and (config_name == "config" or k == "model")]   # select has the model group, reduce none
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=groups)
    tree = OmegaConf.to_container(cfg, resolve=False)
    for key in keys:
        node = tree
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            _fail(str(unknown_key(key, flat_keys(tree))))


def check_jobs(jobs: object) -> None:
    """Raise ValueError unless `jobs` (the local launcher's cells at once) is auto or a whole number >= 1."""
    if not (jobs == "auto" or isinstance(jobs, int) and not isinstance(jobs, bool) and jobs >= 1):
        raise ValueError(f"hydra.launcher.jobs={jobs}: expected auto or a whole number of cells at once, >= 1")


def one_line_errors(func):
    """Report bad input (ValueError) and I/O faults (OSError: a missing, read-only or full path, named by the
    error) as `error: ...` on one line and exit 2. In a multirun the error is raised on instead: the launcher
    records that cell as failed, runs the others and reports the failed cells at the end."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (ValueError, OSError) as err:
            if _in_multirun():
                raise
            _fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
    return wrapper


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


# Warnings that libraries raise about their own choices, not about this project's calls (those stay visible):
# accelerate sets the thread count of a process that set none (the in-process launcher with threads=null); peft
# reads transformers' deprecated `is_gradient_checkpointing` alias when it wraps or loads an adapter; DeepSpeed's
# ZeRO-3 calls torch.distributed collectives that torch deprecates.
LIBRARY_WARNINGS = (("OMP_NUM_THREADS/MKL_NUM_THREADS unset", UserWarning),
                    ("`is_gradient_checkpointing` is deprecated", FutureWarning),
                    (r"`torch\.distributed\.\w+` is deprecated", FutureWarning))


def quiet_libraries() -> None:
    """Silence library progress bars, chatter and the known library warnings (LIBRARY_WARNINGS); our own progress
    display reports instead."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("WANDB_SILENT", "true")
    if not has_cuda():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    for message, category in LIBRARY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    for name in ("DeepSpeed", "deepspeed", "torch.distributed", "accelerate", "peft"):
        logging.getLogger(name).setLevel(logging.ERROR)


def has_cuda() -> bool:
    return Path("/dev/nvidia0").exists() or bool(os.environ.get("CUDA_VISIBLE_DEVICES"))


def setup_logging() -> None:
    logging.getLogger("transfer").setLevel(logging.INFO)
