"""Shared fixtures: tiny models of each family saved to disk, small hand-made questions."""
from __future__ import annotations

import os
import random

import pytest
from PIL import Image, ImageDraw

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DS_ACCELERATOR", "cpu")

from transfer.data.prompts import format_prompt  # noqa: E402
from transfer.distributed import LAUNCHER_KEYS  # noqa: E402
from transfer.data.question import Question  # noqa: E402

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


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> dict[str, str]:
    from transfer.models.tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny")
    return {f: str(build_tiny(f, arch(f), CORPUS, 0, root / f)) for f in FAMILIES}
