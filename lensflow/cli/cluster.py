"""`lensflow cluster show CONFIG`: what a scan's [cluster] would start, before anything runs.

SLURM: the batch script each worker job runs (the scheduler's address is filled in when it
listens). Kubernetes: the operator's manifests as YAML, checked against its CRD schemas, ready
for `kubectl apply -f -`. Local and address: a paragraph saying what would run where.
Nothing is started or submitted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lensflow.cli.common import app, command, err
from lensflow.cluster_config import ClusterConfig

cluster_app = typer.Typer(
    help="Show what a config's \\[cluster] starts: job script, manifests or a description.",
    no_args_is_help=True,
)
app.add_typer(cluster_app, name="cluster")


def describe(cluster: ClusterConfig) -> str:
    """One paragraph on what kind "local" or "address" runs, where, and how it is secured."""
    if cluster.kind_name == "local":
        workers = cluster.n_workers or "one per core"
        tls = "over tls:// with the [cluster.tls] certificates" if cluster.tls else "over tcp://"
        dashboard = "a dashboard on 127.0.0.1" if cluster.dashboard else "no dashboard"
        return (
            f"kind local: the command starts a Dask LocalCluster on this host, {workers} worker "
            f"processes of {cluster.threads_per_worker} thread(s) each (memory limit "
            f"{cluster.memory_limit} per worker), scheduler and workers bound to 127.0.0.1 "
            f"{tls}, {dashboard}; allowed_failures {cluster.allowed_failures}. It stops with "
            "the command.\n"
        )
    address = str(cluster.scheduler)
    if cluster.tls is not None:
        security = f"over TLS with [cluster.tls] (CA {cluster.tls.ca_file})"
    elif address.startswith("tls://"):
        security = "over TLS with Dask's own distributed.comm.tls certificates"
    else:
        security = "over plain TCP (a remote host needs --insecure: Dask unpickles messages)"
    return (
        f"kind address: the command joins the running Dask scheduler at {address} {security}, "
        f"giving up after {cluster.connect_timeout:g} s; its workers, their resources (GPU=1) "
        "and allowed-failures are the scheduler's own settings. Nothing is started here.\n"
    )


@command(cluster_app, "show")
def show_command(
    config: Annotated[Path, typer.Argument(help="A scan config (TOML) with a [cluster] section.")],
) -> None:
    """Print the SLURM job script, the Kubernetes manifests (YAML) or what would run where."""
    from lensflow.config import PlanConfig

    cluster = PlanConfig.from_toml(config).cluster
    kind = cluster.kind_name
    if kind == "slurm":
        from lensflow.cluster_slurm import job_script

        jobs = cluster.n_workers or 1
        where = cluster.slurm_settings.interface or cluster.slurm_settings.host
        err.print(f"# {jobs} job(s) like this; their scheduler runs on {where}", markup=False)
        typer.echo(job_script(cluster), nl=False)
    elif kind == "kubernetes":
        from lensflow.cluster_kubernetes import check_manifest, manifests, to_yaml

        documents = manifests(cluster)
        for manifest in documents:
            check_manifest(manifest)
        typer.echo(to_yaml(documents), nl=False)
    else:
        typer.echo(describe(cluster), nl=False)
