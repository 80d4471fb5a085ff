"""Error types shared by every layer; the CLI maps them to exit codes."""

import errno


class ZooError(Exception):
    """A failure that is not the user's fault (exit code 1)."""


class UserError(ZooError, ValueError):
    """Bad input: the message names what is wrong and how to fix it (exit code 2)."""


class HubUnreachable(UserError):
    """The Hub named by --hub / ZOO_HUB could not be reached."""


class IntegrityError(ZooError):
    """Bytes on disk or from the Hub do not match their recorded sha256."""


_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def is_disk_full(exc: BaseException) -> bool:
    """Whether exc is a write that ran out of space (ENOSPC, quota, file size limit)."""
    return isinstance(exc, OSError) and exc.errno in _FULL


def disk_full(exc: OSError, target: object = None) -> ZooError | None:
    """A one-line ZooError for an out-of-space write, else None."""
    if not is_disk_full(exc):
        return None
    target = target or exc.filename
    where = f" writing {target}" if target else ""
    return ZooError(f"disk full{where} ({exc.strerror}); free space and run the command again")
