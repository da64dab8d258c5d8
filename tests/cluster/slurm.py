"""A single-node SLURM for the tests: munged, slurmctld and slurmd, started as root on this host.

Debian's slurm-wlm and munge (`.ci/run` installs them). One folder holds everything: the munge
key and socket, slurm.conf (filled in from `slurm.conf` beside this file), the controller's
state, slurmd's spool and the logs. The daemons run in the foreground as children of the test
process and are stopped with it. Every SLURM command, and every job, finds the config through
the SLURM_CONF environment variable.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from string import Template

TEMPLATE = Path(__file__).with_name("slurm.conf")
TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")


class SlurmStartError(RuntimeError):
    """SLURM is installed but did not come up; the message ends with the daemons' logs."""


class SlurmCommandError(RuntimeError):
    """A SLURM command failed; the message holds the command, its exit status and stderr."""


@dataclass(frozen=True)
class Slurm:
    """A running SLURM: its config, its default partition and node, the environment to use it."""

    conf: Path
    partition: str
    node: str
    env: dict[str, str]
    owned: bool  # started here (and stopped here), not found running

    def run(self, *args: str, timeout: float = 30.0) -> str:
        """A SLURM command's stdout; SlurmCommandError (with its stderr) when it fails."""
        done = subprocess.run(
            [tool(args[0]), *args[1:]],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode:
            command = " ".join(args)
            raise SlurmCommandError(f"{command}: exit {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    def jobs(self) -> dict[str, tuple[str, str]]:
        """The jobs squeue lists: job id -> (job name, state)."""
        found = {}
        for line in self.run("squeue", "--noheader", "--format=%i|%j|%T").splitlines():
            job, name, state = line.strip().split("|")
            found[job] = (name, state)
        return found

    def job_state(self, job: str) -> str:
        """A job's state as the controller remembers it (RUNNING, COMPLETED, CANCELLED, ...)."""
        for field in self.run("scontrol", "show", "job", job).split():
            if field.startswith("JobState="):
                return field.removeprefix("JobState=")
        raise AssertionError(f"scontrol shows no JobState for job {job}")


def tool(name: str) -> str:
    """A SLURM or munge program's path: on PATH, or in /usr/sbin or /sbin (daemons live there)."""
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if found is None:
        raise FileNotFoundError(name)
    return found


def missing_tools() -> list[str]:
    """The SLURM and munge programs not found."""
    missing = []
    for name in TOOLS:
        try:
            tool(name)
        except FileNotFoundError:
            missing.append(name)
    return missing


def short_hostname() -> str:
    """This host's name as `hostname -s` prints it: SLURM's name for the node."""
    return socket.gethostname().split(".")[0]


def running_slurm() -> Slurm | None:
    """The SLURM this machine already runs (SLURM_CONF or /etc/slurm), when it has an idle node."""
    env = dict(os.environ)
    try:
        out = subprocess.run(
            [tool("sinfo"), "--noheader", "--format=%P|%t|%N"],
            env=env,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        partition, state, nodes = line.strip().split("|")
        if partition.endswith("*") and state in ("idle", "mix"):
            conf = Path(env.get("SLURM_CONF", DEFAULT_CONF))
            return Slurm(conf, partition.rstrip("*"), nodes, env, owned=False)
    return None


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_line(*, memory_fraction: float = 0.9) -> str:
    """This host as a slurm.conf NodeName line (`slurmd -C`), RealMemory a bit under the machine's.

    Memory in MB; the fraction leaves room so slurmd never finds less than configured.
    """
    out = subprocess.run(
        [tool("slurmd"), "-C"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    fields = out.splitlines()[0].split()
    memory = next(int(f.removeprefix("RealMemory=")) for f in fields if f.startswith("RealMemory="))
    kept = [f for f in fields if not f.startswith(("RealMemory=", "NodeName="))]
    return " ".join(
        [f"NodeName={short_hostname()}", *kept, f"RealMemory={int(memory * memory_fraction)}"]
    )


def write_config(root: Path) -> Path:
    """slurm.conf for one node (this host), every path under `root`, on two free ports."""
    for sub in ("munge", "state", "spool", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    (root / "munge").chmod(0o755)  # munged wants its socket's folder searchable by all
    text = Template(TEMPLATE.read_text()).substitute(
        root=root,
        host=short_hostname(),
        ctld_port=free_port(),
        slurmd_port=free_port(),
        node=node_line(),
    )
    conf = root / "slurm.conf"
    conf.write_text(text)
    return conf


def munge_key(root: Path) -> Path:
    """The munge key under `root`, written (1,024 random bytes, mode 0400) when absent."""
    key = root / "munge" / "munge.key"
    if not key.exists():
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
    return key


def _logs(root: Path, lines: int = 15) -> str:
    text = []
    for log in sorted((root / "log").glob("*")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        text.append(f"--- {log.name}\n" + "\n".join(tail))
    return "\n".join(text)


def _wait(what: str, ready: Callable[[], bool], *, root: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SlurmStartError(f"{what} not ready after {timeout:g} s\n{_logs(root)}")
        time.sleep(0.2)


@contextmanager
def _daemon(
    args: list[str], *, root: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """A foreground daemon, its output in root/log, stopped (TERM, then KILL) on exit."""
    name = Path(args[0]).name
    with (root / "log" / f"{name}.out").open("ab") as out:
        process = subprocess.Popen(
            [tool(args[0]), *args[1:]],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _node_state(slurm: Slurm) -> str:
    try:
        return slurm.run("sinfo", "--noheader", "--format=%t", f"--nodes={slurm.node}").strip()
    except (OSError, subprocess.SubprocessError, SlurmCommandError):
        return ""


def _cancel_all(slurm: Slurm, *, timeout: float = 20.0) -> None:
    """Cancel every job and wait until squeue lists none (best effort: the daemons stop next)."""
    try:
        jobs = list(slurm.jobs())
        if jobs:
            slurm.run("scancel", *jobs)
        deadline = time.monotonic() + timeout
        while slurm.jobs() and time.monotonic() < deadline:
            time.sleep(0.3)
    except (OSError, subprocess.SubprocessError, SlurmCommandError):
        return


@contextmanager
def start_slurm(root: Path, *, timeout: float = 60.0) -> Iterator[Slurm]:
    """munged, slurmctld and slurmd on this host, configured under `root`; all stopped on exit.

    Needs root (jobs run as root, SlurmUser=root). SlurmStartError, with the daemons' logs,
    when the node is not idle within `timeout` seconds.
    """
    if os.geteuid() != 0:
        raise PermissionError("the test SLURM runs its daemons as root")
    conf = write_config(root)
    key = munge_key(root)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    slurm = Slurm(conf, "debug", short_hostname(), env, owned=True)
    socket_path = root / "munge" / "munge.socket"
    munged = [
        "munged",
        "--foreground",
        "--force",
        f"--socket={socket_path}",
        f"--key-file={key}",
        f"--pid-file={root / 'munge' / 'munged.pid'}",
        f"--seed-file={root / 'munge' / 'munged.seed'}",
        f"--log-file={root / 'log' / 'munged.log'}",
    ]
    with ExitStack() as stack:
        stack.enter_context(_daemon(munged, root=root, env=env))
        _wait("munged", socket_path.exists, root=root, timeout=timeout)
        stack.enter_context(_daemon(["slurmctld", "-D", "-i"], root=root, env=env))
        stack.enter_context(_daemon(["slurmd", "-D", "-N", slurm.node], root=root, env=env))
        _wait(
            f"node {slurm.node}",
            lambda: _node_state(slurm) == "idle",
            root=root,
            timeout=timeout,
        )
        try:
            yield slurm
        finally:
            _cancel_all(slurm)
