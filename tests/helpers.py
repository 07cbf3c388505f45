"""Test helpers, in one place: the real CLI in a subprocess, composed configs and specs, hand-made questions and
PGF frames, bench scripts as modules. Fixtures live in conftest.py."""
from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
from PIL import Image, ImageDraw

from transfer.data.prompts import format_prompt
from transfer.data.question import Question
from transfer.distributed import LAUNCHER_KEYS
from transfer.tasks import TASK_NAMES

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
BENCH = ROOT / "bench"
PAPER_PGF = ROOT / "docs" / "paper_pgf"
PAPER_MODELS = {"3B": "qwen2.5vl-3B-instruct", "7B": "qwen2.5vl-7B-instruct", "32B": "qwen2.5vl-32B-instruct"}
FAMILIES = ["llava", "qwen", "idefics"]
ARCH = dict(image_size=64, patch_size=16, merge_size=2, scale_factor=1, hidden_size=32, num_layers=1, num_heads=4,
            vision_hidden_size=32, vision_layers=1, vocab_size=400)
PREFIX = {"llava": " ", "qwen": "", "idefics": " "}
COLOURS = ["red", "blue", "green", "yellow"]
RGB = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 30), "yellow": (230, 210, 20)}


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess cell: this one's, minus any process-group rendezvous, plus `extra`."""
    dropped = {*LAUNCHER_KEYS, "LOCAL_RANK", "LOCAL_WORLD_SIZE"}
    return {**{k: v for k, v in os.environ.items() if k not in dropped}, "WANDB_MODE": "offline",
            "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


def run_cli(args: list[str], outputs: Path, module: str = "transfer.run", timeout: int = 1200,
            **env: str) -> subprocess.CompletedProcess:
    """`python -m <module> <args>` from the repository root, with outputs under `outputs`."""
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                          env=child_env(TRANSFER_OUTPUTS=str(outputs), **env), capture_output=True, text=True,
                          timeout=timeout)


def compose(*overrides: str, config_name: str = "config"):
    """The config Hydra composes for `overrides` (the real conf/ tree), with its hydra node."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides), return_hydra_config=True)


def compose_spec(*overrides: str):
    """The CellSpec of a composed config."""
    from transfer.spec import CellSpec

    return CellSpec.from_config(compose(*overrides))


def arch(family: str) -> dict:
    return {**ARCH, "patch_size": 8} if family == "qwen" else dict(ARCH)


def disc(colour: str) -> Image.Image:
    img = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(img).ellipse([8, 8, 56, 56], fill=RGB[colour])
    return img


def colour_questions(n: int, n_images: int = 1, n_choices: int = 2, seed: int = 0) -> list[Question]:
    """'What colour is the disc?' with the gold colour at a random option position."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        choices = rng.sample(COLOURS, n_choices)
        gold = rng.randrange(n_choices)
        images = [disc(choices[gold])] * n_images
        out.append(Question(f"val_Colour_{i}", "Colour", format_prompt("What colour is the disc?", choices),
                            images, choices, gold))
    return out


CORPUS = [q.prompt for q in colour_questions(40, n_choices=4)] + ["USER: ASSISTANT: Assistant: A B C D", " A B C D"]


def long_frame(cube: np.ndarray, tasks: list[str] | None = None, model: str = "m") -> pl.DataFrame:
    """Long PGF frame from cube[seed, source, target] (a 2-D matrix is one seed); NaN cells are left out."""
    cube = np.asarray(cube, dtype=float)
    cube = cube[None] if cube.ndim == 2 else cube
    tasks = tasks or TASK_NAMES[: cube.shape[1]]
    seeds, sources, targets = np.meshgrid(np.arange(cube.shape[0]), np.arange(cube.shape[1]),
                                          np.arange(cube.shape[2]), indexing="ij")
    keep = ~np.isnan(cube)
    return pl.DataFrame({
        "model": model,
        "source_task": [tasks[i] for i in sources[keep]],
        "target_task": [tasks[j] for j in targets[keep]],
        "seed": [str(s) for s in seeds[keep]],
        "pgf": cube[keep],
    })


def load_bench(name: str) -> ModuleType:
    """A script of bench/ as a module, as `python bench/<name>.py` would see it."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
