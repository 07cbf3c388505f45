"""Test helpers, in one place: the real CLI in a subprocess, composed configs and specs, hand-made questions and
PGF frames, the planted primitives read off generated pixels, bench scripts as modules, the loopback SLURM
cluster's commands. Fixtures live in conftest.py."""
from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
from PIL import Image, ImageDraw

from transfer.data.prompts import format_prompt
from transfer.data.question import Question
from transfer.distributed import LAUNCHER_KEYS
from transfer.embedded.suite.draw import COLORS, MARKERS
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


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


def centre(image: Image.Image, color: str) -> tuple[float, float]:
    """Centroid (x, y) of the pixels drawn in exactly one colour (a marker's or a shape's)."""
    ys, xs = np.nonzero((pixels(image) == np.array(COLORS[color])).all(-1))
    assert len(xs), f"no {color} marker"
    return float(xs.mean()), float(ys.mean())


def _mean_colour(image: Image.Image) -> np.ndarray:
    drawn = pixels(image).reshape(-1, 3)
    return drawn[drawn.sum(1) > 0].mean(0)   # the puzzle's blacked-out quarter is not a colour of the scene


def colour_match_pick(row) -> int:
    """The candidate whose mean colour is nearest the reference's."""
    ref, *candidates = row["images"]
    return int(np.argmin([np.linalg.norm(_mean_colour(c) - _mean_colour(ref)) for c in candidates]))


def leftmost_point_pick(row) -> int:
    """The circled point of the second image that lies furthest left."""
    return int(np.argmin([centre(row["images"][1], MARKERS[label])[0] for label in "ABCD"]))


def mark_height_pick(row) -> int:
    """The lower of the red (A) and blue (B) marks."""
    return int(np.argmax([centre(row["images"][0], MARKERS[label])[1] for label in "AB"]))


# what each shared primitive picks on a generated question, read off its pixels
PICKS = {"colour_match": colour_match_pick, "leftmost_point": leftmost_point_pick, "mark_height": mark_height_pick}


def load_bench(name: str) -> ModuleType:
    """A script of bench/ as a module, as `python bench/<name>.py` would see it."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


# The loopback SLURM cluster (bash launch/slurm_up.sh): the toy app of tests/slurm/app, real cells, sacct.
SLURM_APP = ROOT / "tests" / "slurm" / "app"
SLURM_TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
                  "BOOT_FAIL"}


def slurm_app_command(sweep_dir: Path, *overrides: str) -> list[str]:
    """The toy app's multirun on hydra/launcher=slurm, with its reducer command."""
    return [
        sys.executable, str(SLURM_APP / "app.py"), "-m", "hydra/launcher=slurm",
        f"hydra.searchpath=[file://{ROOT}/conf]",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.launcher.validate=false",   # the toy app has no cell spec
        f"hydra.launcher.reducer_command='python {SLURM_APP}/reduce.py ${{hydra.sweep.dir}}'",
        *overrides,
    ]  # fmt: skip


def slurm_app_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def run_slurm_app(sweep_dir: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(slurm_app_command(sweep_dir, *overrides), cwd=ROOT, env=slurm_app_env(),
                          capture_output=True, text=True, timeout=120)


def slurm_cells_env(outputs: Path) -> dict[str, str]:
    """The environment of real cells on either launcher: one thread per process, so that local and SLURM cells
    compute bit for bit the same."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**child_env(), "PYTHONPATH": path, "TRANSFER_OUTPUTS": str(outputs), "OMP_NUM_THREADS": "1"}


def cells_command(cache: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "transfer.run", *args, f"paths.cache={cache}"]


def run_cells(outputs: Path, cache: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess[str]:
    """Real cells (`python -m transfer.run`) with the shared cache, on whichever launcher `args` name."""
    return subprocess.run(cells_command(cache, *args), cwd=ROOT, env=slurm_cells_env(outputs), capture_output=True,
                          text=True, timeout=timeout)


def hydra_sweep_dir(outputs: Path, sweep: str) -> Path:
    return outputs / sweep / "hydra"


def slurm_job_ids(sweep_dir: Path) -> dict[int, str]:
    """Cell index -> SLURM job id, from submitit's per-job folders ("<array>_<i>", or "<id>" for one cell)."""
    names = [p.name for p in (sweep_dir / ".submitit").iterdir() if re.fullmatch(r"\d+(_\d+)?", p.name)]
    arrayed = [n for n in names if "_" in n]
    if not arrayed:
        return {0: names[0]}
    return {int(n.split("_")[1]): n for n in arrayed}


def sacct(job_ids: list[str], attempts: bool = False, timeout_s: float = 60) -> list[dict[str, str]]:
    """sacct rows (one per job; with attempts=True one per run attempt) once every job has ended."""
    fields = ["JobID", "State", "Start", "End"]
    cmd = ["sacct", "-X", "-n", "-P", "-o", ",".join(fields), "-j", ",".join(job_ids)] + (["-D"] if attempts else [])
    deadline = time.monotonic() + timeout_s
    while True:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows = [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]
        final = {row["JobID"]: row["State"].split()[0] for row in rows}  # the last attempt of each job
        if set(final) >= set(job_ids) and set(final.values()) <= SLURM_TERMINAL:
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"jobs {job_ids} did not all end within {timeout_s}s: {rows}")
        time.sleep(0.5)


def stop_slurm_sweep(proc: subprocess.Popen, job: str | None) -> None:
    """After a failed wait: kill the sweep command and cancel its SLURM array, so no job outlives the test."""
    if proc.poll() is None:
        proc.kill()
        if job:
            subprocess.run(["scancel", job.split("_")[0]], check=False)


def slurm_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def slurm_reducer(sweep_dir: Path) -> tuple[str, dict]:
    """The toy reducer's job id (reducer_job.txt) and what it recorded (reduced.json), after it has ended."""
    job_id = (sweep_dir / "reducer_job.txt").read_text().strip()
    (row,) = sacct([job_id])
    assert row["State"] == "COMPLETED", row
    return job_id, json.loads((sweep_dir / "reduced.json").read_text())
