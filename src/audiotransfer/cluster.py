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
        raise UserError(
            f"Ray address {address!r} is not host:port",
            fix="pass the head node's address as printed by `ray start --head` (e.g. 10.0.0.1:6379)",
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise UserError(
            f"the Ray cluster at {address} does not answer within {timeout_s:.0f} s ({exc})",
            fix="start it (`ray start --head` on the head node), or check --ray-address / RAY_ADDRESS and the firewall",
        ) from None


# Ray >= 2.60 advertises the host's interface address even for 127.0.0.1 unless this is 0 (read when `ray`
# is imported, and by every Ray process this one starts): a local Ray then stays on loopback
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
TOKEN_SOURCES = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
TOKEN_FILE = "~/.ray/auth_token"


def keep_on_loopback() -> None:
    """Make a local Ray started from this process listen and advertise on 127.0.0.1 only; set before `ray`
    is imported (a value the user set is kept)."""
    for key, value in LOOPBACK_ENV.items():
        os.environ.setdefault(key, value)


def _private_token() -> None:
    """A local Ray turns token auth on and, lacking a token, writes one to ~/.ray/auth_token, which a later
    `ray start --head` on this machine picks up (its workers are then refused). Give a local Ray a token of
    this process instead, unless the user configured auth."""
    import secrets

    configured = any(os.environ.get(k) for k in (*TOKEN_SOURCES, "RAY_AUTH_MODE"))
    if not configured and not os.path.exists(os.path.expanduser(TOKEN_FILE)):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)


def connect(address: str | None = None, local_cpus: int | None = None, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    """Join the cluster at `address` (or RAY_ADDRESS), else start a local Ray on loopback; True when this
    call started Ray (the caller then shuts it down). An existing connection is kept."""
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        keep_on_loopback()
    ray = ray_module()
    if ray.is_initialized():
        return False
    if address and address != "auto":
        _check_answers(address, timeout_s)
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            _private_token()
            # "local": a Ray of this process's own, even when another cluster runs on this machine (without
            # it ray.init joins that one and refuses num_cpus)
            ray.init(
                address="local", num_cpus=local_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False
            )
    except (ConnectionError, ray.exceptions.AuthenticationError) as exc:
        if _is_auth_error(exc):
            raise UserError(
                f"the Ray cluster at {address} refused this driver: its auth token is missing or "
                "does not match the head's (Ray: InvalidAuthToken / AuthenticationError)",
                fix=AUTH_FIX,
            ) from None
        raise UserError(
            f"cannot join the Ray cluster at {address}: {exc}",
            fix="check that the address is the head node's and its Ray version matches",
        ) from None
    return True


AUTH_FIX = (
    "give this process the cluster's token: set RAY_AUTH_TOKEN (the token itself) or RAY_AUTH_TOKEN_PATH "
    f"(a file holding it), or put it in {TOKEN_FILE}, and RAY_AUTH_MODE=token; it is the token the head "
    "was started with (`ray get-auth-token` on the head prints it)"
)


def _is_auth_error(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is Ray refusing a missing or wrong auth token."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def check_gpus(num_gpus: float) -> None:
    """UserError when tasks ask for GPUs and no node of the cluster has any."""
    if num_gpus <= 0:
        return
    available = ray_module().cluster_resources().get("GPU", 0.0)
    if available < num_gpus:
        raise UserError(
            f"each run asks for num_gpus={num_gpus:g} but the Ray cluster has {available:g} GPUs",
            fix="add GPU nodes to the cluster, or set resources.num_gpus to 0 in the study",
        )
