"""Stand-in reducer: records when it ran, as which SLURM job, and which cell results existed then."""

import json
import os
import sys
import time
from pathlib import Path

sweep_dir = Path(sys.argv[1])
cells = sorted(json.loads(path.read_text())["toy"] for path in sweep_dir.glob("*/result.json"))
record = {"job_id": os.environ.get("SLURM_JOB_ID"), "cwd": os.getcwd(), "started_at": time.time(), "cells": cells}
(sweep_dir / "reduced.json").write_text(json.dumps(record))
print(f"reduced {len(cells)} cells: {cells}")
