"""A mixture cell's training examples: the budget shared among its tasks by their weights, drawn reproducibly."""
from __future__ import annotations

import logging
import random

from transfer.spec import MixtureSpec

log = logging.getLogger("transfer")


def mixture_examples(pools: dict[str, list], mixture: MixtureSpec, seed: int) -> list:
    """`mixture.examples` training examples in all, shared among the tasks by the mixture's weights (largest
    remainders round), each task's drawn at random without replacement (seeded by the cell's seed; a pool smaller
    than its share gives all it has)."""
    total = sum(mixture.weights)
    exact = [w / total * mixture.examples for w in mixture.weights]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))[:mixture.examples - sum(counts)]:
        counts[i] += 1
    out = []
    for task, n in zip(mixture.tasks, counts):
        pool = pools[task]
        if n > len(pool):
            log.warning("mixture %s: %s has %d training questions, its share is %d: all are used", mixture.label,
                        task, len(pool), n)
        out += random.Random(f"{seed}/{task}/mix").sample(pool, min(n, len(pool)))
    return out
