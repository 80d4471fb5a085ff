"""Error types shared by every layer; the CLI maps them to exit codes."""


class ZooError(Exception):
    """A failure that is not the user's fault (exit code 1)."""


class UserError(ZooError, ValueError):
    """Bad input: the message names what is wrong and how to fix it (exit code 2)."""


class HubUnreachable(UserError):
    """The Hub named by --hub / ZOO_HUB could not be reached."""


class IntegrityError(ZooError):
    """Bytes on disk or from the Hub do not match their recorded sha256."""
