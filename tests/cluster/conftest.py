"""The SLURM the cluster tests submit to: one already running here, or one started for the session.

Skipped, with the reason, where SLURM is not installed; `.ci/run` installs it, so CI runs them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.cluster.slurm import Slurm, SlurmStartError, missing_tools, running_slurm, start_slurm


@pytest.fixture(scope="session")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slurm]:
    """A SLURM with an idle node; SLURM_CONF points at its config for the whole session."""
    missing = missing_tools()
    if missing:
        pytest.skip(
            f"SLURM is not installed (no {', '.join(missing)}): "
            "apt-get install slurm-wlm munge, as .ci/run does"
        )
    found = running_slurm()
    if found is not None:
        yield found
        return
    if os.geteuid() != 0:
        pytest.skip("no SLURM is running and the test SLURM must be started as root")
    stack = ExitStack()
    try:
        started = stack.enter_context(start_slurm(tmp_path_factory.mktemp("slurm")))
    except SlurmStartError as exc:
        stack.close()
        pytest.fail(f"SLURM is installed but did not start: {exc}", pytrace=False)
    with stack, pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(started.conf))
        yield started
