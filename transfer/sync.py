"""Upload a sweep's offline W&B runs so that each run id is one W&B run with its history and its latest summary.

    python -m transfer.sync [sweep=NAME] [outputs=DIR] [dry_run=true]    # default: every sweep under outputs/

A resumed offline run writes another folder with the same run id: the reducer writes each cell's PGF into the
cell's run that way, and a re-run cell writes its run again. `wandb sync` of a second folder of one id has been
reported to replace the run's data with that folder's, `--append` included (wandb issues #3841, #2423, #5865), so
per run id this uploads one folder with `wandb sync` (the last one holding history or artifacts: the run as last
computed, normally its first folder) and applies the summaries of the later folders, which hold nothing else (the
reducer's), to the uploaded run through W&B's public API (`wandb.Api().run(...).summary.update`). Earlier folders
are superseded by the uploaded one and stay local. `dry_run=true` prints this plan without touching the network.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from transfer.tracking import command_options, has_credentials
from transfer.wandb_files import read_run

OPTIONS = {"sweep": None, "outputs": None, "dry_run": "false"}


@dataclass(frozen=True)
class RunSync:
    """What syncing one run id does: upload a folder, then apply the summary read from later folders."""
    run_id: str
    name: str
    job_type: str
    entity: str           # empty: the logged-in user's default entity, as `wandb sync` uses
    project: str
    upload: Path
    uploaded: bool        # `wandb sync` marked the folder synced already (run-<id>.wandb.synced)
    summary: dict         # the later folders' summary keys, later folders winning; wandb's own `_` keys left out
    summary_from: tuple[Path, ...]
    superseded: tuple[Path, ...]


@dataclass(frozen=True)
class SyncPlan:
    runs: tuple[RunSync, ...]
    unreadable: tuple[tuple[Path, str], ...]   # folders whose transaction log cannot be read: (folder, why)


def _holds_data(run: dict) -> bool:
    return bool(run["history"] or run["artifacts"] or run["used_artifacts"])


def _run_sync(parts: list[tuple[Path, dict]]) -> RunSync:
    """The plan of one run id from its folders, oldest first."""
    with_data = [i for i, (_, run) in enumerate(parts) if _holds_data(run)]
    chosen = with_data[-1] if with_data else 0
    folder, run = parts[chosen]
    later = parts[chosen + 1:]
    summary = {k: v for _, part in later for k, v in part["summary"].items() if not k.startswith("_")}
    return RunSync(run_id=run["id"], name=run["name"], job_type=run["job_type"], entity=run["entity"],
                   project=run["project"], upload=folder,
                   uploaded=any(folder.glob("run-*.wandb.synced")), summary=summary,
                   summary_from=tuple(f for f, _ in later), superseded=tuple(f for f, _ in parts[:chosen]))


def plan_sync(sweep_dirs: list[Path]) -> SyncPlan:
    """The sync plan of the offline runs under each sweep's wandb/ folder, from the transaction logs alone."""
    by_id: dict[str, list[tuple[Path, dict]]] = {}
    unreadable = []
    for sweep_dir in sweep_dirs:
        for folder in sorted(Path(sweep_dir, "wandb").glob("offline-run-*")):
            try:
                run = read_run(folder)
            except (OSError, ValueError) as err:
                unreadable.append((folder, str(err).splitlines()[0] if str(err) else type(err).__name__))
                continue
            by_id.setdefault(run["id"], []).append((folder, run))
    runs = [_run_sync(sorted(parts, key=lambda p: (p[1]["start_time"] or 0.0, p[0].name)))
            for parts in by_id.values()]
    return SyncPlan(tuple(sorted(runs, key=lambda r: (str(r.upload.parent), r.job_type, r.name, r.run_id))),
                    tuple(unreadable))


def describe(plan: SyncPlan) -> list[str]:
    """The plan in lines: a count, then one line per run id and one per unreadable folder."""
    summaries = sum(bool(r.summary) for r in plan.runs)
    lines = [f"{len(plan.runs)} W&B runs: {sum(not r.uploaded for r in plan.runs)} folders to upload, "
             f"{summaries} summaries to apply afterwards, {sum(len(r.superseded) for r in plan.runs)} folders "
             f"superseded, {len(plan.unreadable)} unreadable"]
    for r in plan.runs:
        line = f"{r.run_id} {r.name} [{r.job_type}]: upload {r.upload}" + (" (already uploaded)" if r.uploaded else "")
        if r.summary:
            line += f"; then set {len(r.summary)} summary keys from {', '.join(f.name for f in r.summary_from)}"
        if r.superseded:
            line += f"; superseded: {', '.join(f.name for f in r.superseded)}"
        lines.append(line)
    lines += [f"unreadable {folder}: {why}" for folder, why in plan.unreadable]
    return lines


def upload(folder: Path) -> str | None:
    """`wandb sync <folder>` (it skips a folder it marked synced); None, or why it failed (one line)."""
    done = subprocess.run([sys.executable, "-m", "wandb", "sync", str(folder)], capture_output=True, text=True)
    if done.returncode == 0:
        return None
    return ((done.stderr or done.stdout).strip().splitlines() or [f"exit code {done.returncode}"])[-1]


def apply_summary(api, run: RunSync) -> None:
    """Write the later folders' summary into the uploaded run (one upsert of its summary)."""
    entity = run.entity or api.default_entity
    api.run(f"{entity}/{run.project}/{run.run_id}").summary.update(run.summary)


def sync(plan: SyncPlan) -> list[str]:
    """Upload and apply every run of the plan; the failures, one line each (an upload that failed skips its
    summary)."""
    import wandb

    api, failures = None, []
    for run in plan.runs:
        problem = upload(run.upload)
        if problem is None and run.summary:
            try:
                api = api or wandb.Api()
                apply_summary(api, run)
            except Exception as err:   # noqa: BLE001 - any failure of the W&B service, reported per run
                problem = f"summary not applied: {type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
        if problem:
            failures.append(f"{run.run_id} {run.name}: {problem}")
        else:
            print(f"synced {run.run_id} {run.name}" + (f" (+{len(run.summary)} summary keys)" if run.summary else ""))
    return failures


def main(argv: list[str] | None = None) -> int:
    """Print the plan (dry_run=true) or sync it: 0, 1 if any run failed or W&B cannot log in, 2 for bad input."""
    try:
        args = command_options(sys.argv[1:] if argv is None else argv, "python -m transfer.sync",
                               __doc__.splitlines()[0], OPTIONS)
        dry_run = {"true": True, "false": False}.get(str(args["dry_run"]).lower())
        if dry_run is None:
            raise ValueError(f"dry_run={args['dry_run']!r}: expected true or false")
        outputs = Path(args["outputs"] or os.environ.get("TRANSFER_OUTPUTS", "outputs"))
        sweeps = [outputs / args["sweep"]] if args["sweep"] else sorted(p.parent for p in outputs.glob("*/wandb"))
        if not any(Path(s, "wandb").is_dir() for s in sweeps):
            where = sweeps[0] if args["sweep"] else outputs
            raise FileNotFoundError(f"no offline W&B runs under {where} (expected <sweep>/wandb/offline-run-*)")
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 2
    plan = plan_sync(sweeps)
    if dry_run:
        print("\n".join(describe(plan)))
        return 0
    if not has_credentials():
        print("not synced: no W&B credentials (WANDB_API_KEY or `wandb login`); dry_run=true prints the plan")
        return 1
    failures = [f"unreadable {folder}: {why}" for folder, why in plan.unreadable] + sync(plan)
    for line in failures:
        print(f"not synced: {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
