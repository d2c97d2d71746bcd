"""Connecting to Ray: a cluster by address (checked to answer within a timeout) or a local Ray.

Shared by the study's Ray backend and distributed feature extraction. A cluster address that does not
answer, and a request for GPUs that the cluster lacks, are UserErrors instead of a hang or a run that
waits forever for resources.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from audiotransfer.errors import UserError

CONNECT_TIMEOUT_S = 10.0


def ray_module() -> Any:
    """The `ray` package, or a UserError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError("the Ray backend needs Ray", fix="pip install 'audiotransfer[ray]'") from None
    return ray


def _check_answers(address: str, timeout_s: float) -> None:
    """Open a TCP connection to the cluster's GCS (host:port) to see that something answers there."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"Ray address {address!r} is not host:port",
                        fix="pass the head node's address as printed by `ray start --head` (e.g. 10.0.0.1:6379)")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UserError(f"the Ray cluster at {address} does not answer within {timeout_s:.0f} s ({exc})",
                        fix="start it (`ray start --head` on the head node), or check --ray-address / "
                            "RAY_ADDRESS and the firewall") from None


def connect(address: str | None = None, local_cpus: int | None = None,
            timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    """Join the cluster at `address` (or RAY_ADDRESS), else start a local Ray; True when this call
    started Ray (the caller then shuts it down). An existing connection is kept."""
    ray = ray_module()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "auto":
        _check_answers(address, timeout_s)
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=local_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False)
    except ConnectionError as exc:
        raise UserError(f"cannot join the Ray cluster at {address}: {exc}",
                        fix="check that the address is the head node's and its Ray version matches") from None
    return True


def check_gpus(num_gpus: float) -> None:
    """UserError when tasks ask for GPUs and no node of the cluster has any."""
    if num_gpus <= 0:
        return
    available = ray_module().cluster_resources().get("GPU", 0.0)
    if available < num_gpus:
        raise UserError(f"each run asks for num_gpus={num_gpus:g} but the Ray cluster has {available:g} GPUs",
                        fix="add GPU nodes to the cluster, or set resources.num_gpus to 0 in the study")
