"""A toy cell: works `steps` steps, resuming from progress.txt in its job dir, then writes result.json."""

import json
import os
import socket
import time
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    progress = job_dir / "progress.txt"
    step = int(progress.read_text()) if progress.exists() else 0
    with (job_dir / "starts.log").open("a") as log:
        log.write(f"start at step {step} restart={os.environ.get('SLURM_RESTART_COUNT', '0')}\n")
    while step < cfg.steps:
        time.sleep(cfg.step_s)
        step += 1
        (job_dir / "progress.tmp").write_text(str(step))
        os.replace(job_dir / "progress.tmp", progress)
    if cfg.toy.name == cfg.fail_on:
        raise RuntimeError(f"toy cell {cfg.toy.name} fails as asked (fail_on={cfg.fail_on})")
    result = {
        "toy": cfg.toy.name,
        "model": OmegaConf.select(cfg, "model.name"),
        "array_job_id": os.environ.get("SLURM_ARRAY_JOB_ID"),
        "array_task_id": os.environ.get("SLURM_ARRAY_TASK_ID"),
        "host": socket.gethostname(),
        "finished_at": time.time(),
    }
    (job_dir / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
