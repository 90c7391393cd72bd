"""A real single-node SLURM cluster for the tests: munge, slurmctld and slurmd from Debian.

Everything the daemons write (config, state, logs, PID files, the job completion log)
lives under one folder. Clients find the config through SLURM_CONF, except inside jobs:
the executor's job step drops every SLURM_* variable before calling srun, so the config
is also linked at the default path /etc/slurm (only when no real one is there). Two fake GPUs
(`gres/gpu:fake:2`, device files /dev/null and /dev/zero) let jobs request `--gpus=1` and
queue for them.
Daemons started here are stopped by their PID files, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")
MUNGE_PID = Path("/run/munge/munged.pid")
SYSTEM_CONF_DIR = Path("/etc/slurm")
CPU_PARTITION = "ci"
GPU_PARTITION = "ci-gpu"


class ClusterUnavailable(RuntimeError):
    """SLURM cannot be started here (binaries missing, not root)."""


@dataclass(frozen=True)
class Cluster:
    root: Path
    conf: Path
    jobcomp: Path

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def completed_jobs(self) -> list[dict[str, str]]:
        """One dict per finished job, from the jobcomp/filetxt log (no accounting DB)."""
        if not self.jobcomp.exists():
            return []
        jobs = []
        for line in self.jobcomp.read_text().splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if fields:
                jobs.append(fields)
        return jobs


def missing_binaries() -> list[str]:
    return [b for b in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if not _which(b)]


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")


def _node_hardware() -> tuple[int, int]:
    """CPUs and RealMemory (MB) as slurmd measures them; above either drains the node."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, check=True)
    cpus = int(re.search(r"CPUs=(\d+)", out.stdout).group(1))
    memory = int(re.search(r"RealMemory=(\d+)", out.stdout).group(1))
    return cpus, memory


def write_config(root: Path) -> Cluster:
    host = socket.gethostname().split(".")[0]
    cpus, memory = _node_hardware()
    memory = int(memory * 0.9)
    for sub in ("state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    conf = root / "slurm.conf"
    jobcomp = root / "log" / "jobcomp.txt"
    conf.write_text(
        f"""ClusterName=synthvad-ci
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
MailProg=/bin/true
ReturnToService=2
# squeue is the status command (no slurmdbd): finished jobs must stay visible to it
# for longer than the executor's first status check.
MinJobAge=3600
JobCompType=jobcomp/filetxt
JobCompLoc={jobcomp}
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} Gres=gpu:fake:2 State=UNKNOWN
PartitionName={CPU_PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
PartitionName={GPU_PARTITION} Nodes={host} MaxTime=INFINITE State=UP
"""
    )
    (root / "gres.conf").write_text(
        "Name=gpu Type=fake File=/dev/null\nName=gpu Type=fake File=/dev/zero\n"
    )
    return Cluster(root=root, conf=conf, jobcomp=jobcomp)


def _start_munge() -> bool:
    """Start munged unless one is running; True when this call started it."""
    if MUNGE_PID.exists() and _alive(int(MUNGE_PID.read_text().split()[0])):
        return False
    MUNGE_PID.parent.mkdir(parents=True, exist_ok=True)
    shutil.chown(MUNGE_PID.parent, "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", _which("munged")], check=True)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(pid_file: Path) -> None:
    if not pid_file.exists():
        return
    with contextlib.suppress(ValueError, ProcessLookupError):
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not _alive(pid):
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def _wait_idle(cluster: Cluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=cluster.env
        )
        state = out.stdout.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    log = (cluster.root / "log" / "slurmctld.log").read_text()[-2000:]
    raise ClusterUnavailable(f"node did not become idle (state {state!r}):\n{log}")


@contextlib.contextmanager
def single_node_cluster(root: Path) -> Iterator[Cluster]:
    """Start munge (if needed), slurmctld and slurmd under `root`; stop them on exit."""
    if os.geteuid() != 0:
        raise ClusterUnavailable("starting SLURM daemons needs root")
    if missing := missing_binaries():
        raise ClusterUnavailable(
            f"missing {', '.join(missing)}: apt-get install {' '.join(PACKAGES)}"
        )
    for name in ("slurm.conf", "gres.conf"):
        system = SYSTEM_CONF_DIR / name
        if system.exists() and not system.is_symlink():
            raise ClusterUnavailable(f"{system} exists: this machine has its own SLURM setup")
    cluster = write_config(root)
    started_munge = False
    linked: list[Path] = []
    try:
        SYSTEM_CONF_DIR.mkdir(parents=True, exist_ok=True)
        for name in ("slurm.conf", "gres.conf"):
            system = SYSTEM_CONF_DIR / name
            system.unlink(missing_ok=True)
            system.symlink_to(root / name)
            linked.append(system)
        started_munge = _start_munge()
        env = cluster.env
        subprocess.run([_which("slurmctld"), "-f", str(cluster.conf)], check=True, env=env)
        subprocess.run([_which("slurmd"), "-f", str(cluster.conf)], check=True, env=env)
        _wait_idle(cluster)
        yield cluster
    finally:
        _stop(root / "slurmd.pid")
        _stop(root / "slurmctld.pid")
        if started_munge:
            _stop(MUNGE_PID)
        for link in linked:
            link.unlink(missing_ok=True)
