"""A private one-node Slurm cluster for the tests (slurm-wlm from Debian, auth/none, its own
ports and config, both daemons running as the current user: no munge, no systemd, no root
needed; up in about a second)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest


def wait_for(check, timeout: float = 20.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SLURM_CONF = """\
ClusterName=outfs
SlurmctldHost=localhost
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/none
CredType=cred/none
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
NodeName=localhost CPUs=1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@contextlib.contextmanager
def private_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Start the cluster; yields the environment its clients need (SLURM_CONF)."""
    # The daemons live in /usr/sbin, which a non-root PATH may lack.
    slurmctld, slurmd = (
        shutil.which(d, path=f"{os.environ['PATH']}:/usr/sbin") for d in ("slurmctld", "slurmd")
    )
    if not (slurmctld and slurmd and all(shutil.which(c) for c in ("sbatch", "sinfo", "scancel"))):
        pytest.skip("slurm-wlm is not installed (.ci/install-queues.sh installs it)")
    here = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (here / sub).mkdir()
    conf = here / "slurm.conf"
    # Both daemons run as us: jobs of our own user need no root (checked as root and uid 1000).
    user = pwd.getpwuid(os.geteuid()).pw_name
    conf.write_text(
        SLURM_CONF.format(ctld_port=free_port(), d_port=free_port(), dir=here, user=user)
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    daemons = [
        subprocess.Popen([slurmctld, "-D", "-i", "-f", str(conf)], env=env),
        subprocess.Popen([slurmd, "-D", "-N", "localhost", "-f", str(conf)], env=env),
    ]
    try:

        def idle() -> bool:
            out = subprocess.run(
                ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True
            ).stdout
            return out.strip() == "idle"

        wait_for(idle, timeout=30, what="the private Slurm node to come up")
        yield env
    finally:
        subprocess.run(["scancel", "--me"], env=env, capture_output=True, check=False)
        for daemon in daemons:
            daemon.terminate()
        for daemon in daemons:
            try:
                daemon.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
