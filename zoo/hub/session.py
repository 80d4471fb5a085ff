"""Where the Hub is: the one place that builds the official client for a `--hub`.

A `--hub` is a URL (huggingface.co or any Hub-compatible server) or a directory. A directory is the
embedded Hub: it is served on a free 127.0.0.1 port for the duration of the `with` block, and the
directory's owner acts with its admin token. Every failure of the client is mapped here to a
one-line zoo error.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx2
import huggingface_hub
from huggingface_hub import HfApi
from huggingface_hub import errors as hf_errors

from zoo.errors import HubUnreachable, UserError, ZooError

HF_HOSTS = ("huggingface.co", "hf.co")
T = TypeVar("T")


@dataclass(frozen=True)
class Hub:
    """An open Hub: its endpoint, the token to act with, and the official client bound to both."""

    endpoint: str
    token: str | None
    api: HfApi
    label: str


def default_hub() -> str:
    """ZOO_HUB if set, else ./.zoo/hub when it exists, else ~/.cache/zoo/hub."""
    if os.environ.get("ZOO_HUB"):
        return os.environ["ZOO_HUB"]
    local = Path(".zoo/hub")
    return str(local) if local.is_dir() else str(Path.home() / ".cache" / "zoo" / "hub")


def is_url(where: str) -> bool:
    """True when a --hub value names a server rather than a directory."""
    return where.startswith(("http://", "https://"))


@contextlib.contextmanager
def open_hub(
    hub: str | os.PathLike | None = None, token: str | None = None, *, create: bool = False
) -> Iterator[Hub]:
    """Open the Hub named by hub (URL or directory; None: default_hub()) for one command.

    A directory that does not exist is created only when create=True (commands that write);
    otherwise it is a UserError. Touches the network: one probe request to fail fast.
    """
    where = str(hub) if hub else default_hub()
    if is_url(where):
        yield _connect(where.rstrip("/"), token, where)
        return
    root = Path(where).expanduser()
    if not root.is_dir() and not create:
        raise UserError(f"no embedded hub at {root}: check --hub (a URL or a hub directory)")
    from zoo.hub.server import (
        HubStore,
        serve_in_thread,
    )  # the server is needed only for directories

    store = HubStore(root)
    with serve_in_thread(root) as url:
        yield _connect(url, token or store.admin_token(), str(root))


@contextlib.contextmanager
def open_hub_if(
    needed: bool,
    hub: str | os.PathLike | None = None,
    token: str | None = None,
    *,
    create: bool = False,
) -> Iterator[Hub | None]:
    """open_hub(hub, token, create=create) when needed; else None, with no server and no probe.

    The one way a command opens a Hub it may not need (a merge of local folders, bags of a
    local base): commands that write pass create=True, so a new hub directory is made for them.
    """
    if not needed:
        yield None
        return
    with open_hub(hub, token, create=create) as h:
        yield h


def _connect(endpoint: str, token: str | None, label: str) -> Hub:
    token = (
        token
        or os.environ.get("HF_TOKEN")
        or (huggingface_hub.get_token() if _is_hf(endpoint) else None)
    )
    _probe(endpoint, label)
    return Hub(endpoint, token, HfApi(endpoint=endpoint, token=token or False), label)


def _is_hf(endpoint: str) -> bool:
    host = httpx2.URL(endpoint).host
    return any(host == h or host.endswith("." + h) for h in HF_HOSTS)


def _probe(endpoint: str, label: str) -> None:
    try:
        httpx2.get(f"{endpoint}/api/models", params={"limit": 1}, timeout=10)
    except httpx2.HTTPError as exc:
        raise HubUnreachable(
            f"hub {label} is unreachable ({type(exc).__name__}): check --hub"
        ) from None


@contextlib.contextmanager
def hub_errors(hub: Hub, what: str) -> Iterator[None]:
    """Map the official client's exceptions to one-line zoo errors naming `what`."""
    try:
        yield
    except hf_errors.GatedRepoError:
        raise UserError(f"{what}: the repository is gated; request access on {hub.label}") from None
    except hf_errors.RepositoryNotFoundError:
        raise UserError(
            f"{what}: repository not found on {hub.label} "
            "(or it is private and your token cannot read it)"
        ) from None
    except hf_errors.RevisionNotFoundError:
        raise UserError(f"{what}: revision not found on {hub.label}") from None
    except hf_errors.RemoteEntryNotFoundError as exc:
        raise UserError(f"{what}: file not found on {hub.label} ({_short(exc)})") from None
    except hf_errors.HfHubHTTPError as exc:
        raise _http_error(hub, what, exc) from None
    except RuntimeError as exc:  # an upload's HTTP error, wrapped by the client
        if isinstance(exc.__cause__, hf_errors.HfHubHTTPError):
            raise _http_error(hub, what, exc.__cause__) from None
        _raise_xet_error(hub, what, exc)
    except ConnectionError as exc:  # hf_xet reports the CAS's HTTP errors this way
        _raise_xet_error(hub, what, exc)
    except ValueError as exc:
        if not str(exc).startswith("LFS batch API returned errors"):
            raise
        detail = str(exc).splitlines()[-1].split(": ", 1)[-1].strip("` .")
        raise UserError(f"{what}: upload refused by {hub.label} ({detail})") from None
    except (
        httpx2.TransportError,
        hf_errors.OfflineModeIsEnabled,
        hf_errors.LocalEntryNotFoundError,
    ) as exc:
        raise HubUnreachable(
            f"{what}: hub {hub.label} is unreachable ({type(exc).__name__})"
        ) from None


def _http_error(hub: Hub, what: str, exc: hf_errors.HfHubHTTPError) -> ZooError:
    status = exc.response.status_code if exc.response is not None else None
    detail = (getattr(exc, "server_message", None) or str(status)).splitlines()[0]
    return _status_error(hub, what, status, detail, exc)


_XET_STATUS = re.compile(r"HTTP status (?:client|server) error \((\d{3})[^)]*\)")


def _raise_xet_error(hub: Hub, what: str, exc: Exception) -> None:
    """Raise the zoo error for an hf_xet failure that names an HTTP status, else `exc` itself.

    hf_xet reports the CAS's answers as text only: the status is all there is to map."""
    match = _XET_STATUS.search(str(exc))
    if match is None:
        raise exc
    status = int(match.group(1))
    detail = "Xet storage is full" if status == 507 else str(status)
    raise _status_error(hub, what, status, detail, exc) from None


def _status_error(hub: Hub, what: str, status: int | None, detail: str, exc: Exception) -> ZooError:
    """The one-line zoo error for an HTTP status from the Hub (git-lfs, API or Xet)."""
    if status == 401:
        return UserError(f"{what}: the token was refused by {hub.label} (check --token / HF_TOKEN)")
    if status == 403:
        return UserError(f"{what}: your token may not write here on {hub.label}")
    if status == 507:
        return ZooError(
            f"{what}: {hub.label} is out of storage ({detail}); free space there and retry"
        )
    if status == 413:
        return UserError(f"{what}: upload refused by {hub.label} (larger than this Hub accepts)")
    if status == 412:
        return UserError(f"{what}: the branch moved while you were pushing; run the command again")
    if status is not None and 400 <= status < 500:
        return UserError(f"{what}: refused by {hub.label} ({status}: {_short(exc)})")
    return ZooError(f"{what}: {hub.label} failed ({status}: {_short(exc)})")


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def retrying(what: str, call: Callable[[], T]) -> T:
    """call(), retried with exponential backoff while the hub is unreachable; then one clear error.

    Only for idempotent reads (pulls): a download resumes where it stopped. ZOO_HUB_RETRIES
    (default 4) retries wait ZOO_HUB_BACKOFF seconds (default 1) doubling each time, at most 30.
    """
    retries = int(os.environ.get("ZOO_HUB_RETRIES", "4"))
    wait = float(os.environ.get("ZOO_HUB_BACKOFF", "1"))
    start = time.monotonic()
    for attempt in range(retries + 1):
        try:
            return call()
        except HubUnreachable as exc:
            if attempt == retries:
                spent = time.monotonic() - start
                raise HubUnreachable(
                    f"{exc} — gave up after {retries + 1} attempts over "
                    f"{spent:.0f} s (ZOO_HUB_RETRIES)"
                ) from None
        time.sleep(min(wait * 2**attempt, 30.0))
    raise AssertionError("unreachable")
