"""Every test under tests/slurm needs the loopback cluster (bash launch/slurm_up.sh); skip otherwise."""
import shutil
import socket
import subprocess

import pytest


def _why_no_cluster() -> str | None:
    """None if the loopback cluster is up with accounting, else the reason to skip."""
    if shutil.which("sbatch") is None:
        return "needs the loopback SLURM cluster: sbatch not found (bash launch/slurm_up.sh)"
    try:  # sinfo spends seconds retrying when no controller runs; a connect attempt answers at once
        socket.create_connection(("127.0.0.1", 6817), timeout=2).close()
    except OSError:
        return "needs the loopback SLURM cluster: no slurmctld on 127.0.0.1:6817 (bash launch/slurm_up.sh)"
    try:
        states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20).stdout.split()
        sacct = subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "needs the loopback SLURM cluster: sinfo/sacct timed out (bash launch/slurm_up.sh)"
    if "idle" not in states:
        return f"needs an idle SLURM node, sinfo reports {states or 'nothing'} (bash launch/slurm_up.sh)"
    if sacct.returncode != 0:
        return f"needs SLURM accounting (SLURM_ACCOUNTING=1 bash launch/slurm_up.sh): {sacct.stderr.strip()}"
    return None


@pytest.fixture(autouse=True, scope="module")
def _loopback_cluster() -> None:
    """Skip unless the cluster is up (checked only when a test here is selected)."""
    reason = _why_no_cluster()
    if reason:
        pytest.skip(reason)
