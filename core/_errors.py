"""The project's errors: one tree, so a caller catches what it can act on.

::

    DataRequestError
    ├── ConfigError              a setting is missing or malformed (the operator's to fix)
    ├── PrimeError               Buy with Prime did not do what was asked
    │   ├── PrimeUnavailable     try again later: throttling, 5xx, network, an answer of the wrong shape,
    │   │                        or an outage the operator fixes (credentials refused, access denied)
    │   └── PrimeRejected        Amazon's verdict on this call (validation, conflict, unknown task): final
    ├── RelayRejected            a relay request the sender got wrong (carries its 4xx status)
    ├── BackupFailed             a backup copy did not verify; nothing was written
    ├── StoreUnavailable         the database refused a write (disk full, read-only, I/O error)
    └── EmailUnreadable          one stored email does not open with the key (altered, or sealed under another)
"""

from __future__ import annotations

__all__ = [
    "BackupFailed",
    "ConfigError",
    "DataRequestError",
    "EmailUnreadable",
    "PrimeError",
    "PrimeRejected",
    "PrimeUnavailable",
    "RelayRejected",
    "StoreUnavailable",
]


class DataRequestError(Exception):
    """Root of every error the bot raises on purpose."""


class ConfigError(DataRequestError):
    """A setting or the environment is wrong; one line per problem, naming the setting and the fix.

    Each problem is ``(what is wrong, how to fix it)``; ``str()`` gives one line per problem,
    and ``check`` prints the two halves apart. A plain string is a problem whose fix is in it.
    """

    def __init__(self, *problems: str | tuple[str, str]) -> None:
        self.problems: tuple[tuple[str, str], ...] = tuple(
            (problem, "") if isinstance(problem, str) else problem for problem in problems
        )
        super().__init__("\n".join(f"{what}: {fix}" if fix else what for what, fix in self.problems))


class PrimeError(DataRequestError):
    """Buy with Prime answered with an error, or could not be reached.

    ``kind`` is Amazon's ``extensions.classification.type`` (or an HTTP-level
    stand-in such as ``HTTP 503``), kept so that messages and logs can say which.
    """

    def __init__(self, message: str, *, kind: str = "") -> None:
        super().__init__(message)
        self.kind = kind


class PrimeUnavailable(PrimeError):
    """Worth trying again later: the same call may succeed (throttling, 5xx, network, an odd answer).

    ``retry_after`` is the wait Amazon asked for (HTTP Retry-After), 0 when it asked none.
    ``needs_operator``: waiting alone will not end it; someone must act (credentials refused,
    access denied, a gateway answering instead of Amazon), so the operator is alerted.
    ``reached``: the call may have been carried out at Amazon (a start may have created its task),
    False when it certainly was not (no token, refused at the door, throttled).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "",
        retry_after: float = 0.0,
        needs_operator: bool = False,
        reached: bool = True,
    ) -> None:
        super().__init__(message, kind=kind)
        self.retry_after = retry_after
        self.needs_operator = needs_operator
        self.reached = reached


class PrimeRejected(PrimeError):
    """Trying again will not help: the request itself was refused.

    ``reason`` is Amazon's ``classification.code`` when it names one (``CannotCancelPersonalDataDeletionTask``
    tells a cancel that came too late from other validation errors), else "".
    ``earlier_reached``: an earlier attempt of the same call, whose answer was lost, may have been carried out
    at Amazon, so this verdict may be about what that attempt did (a cancel that took is then "not found").
    """

    def __init__(self, message: str, *, kind: str = "", reason: str = "", earlier_reached: bool = False) -> None:
        super().__init__(message, kind=kind)
        self.reason = reason
        self.earlier_reached = earlier_reached


class RelayRejected(DataRequestError):
    """The relay request is the sender's fault; answer it with ``status`` (401, 400, 413)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class BackupFailed(DataRequestError):
    """The copy of the database did not verify (integrity check); the destination was left as it was."""


class StoreUnavailable(DataRequestError):
    """The database cannot take writes now; nothing was saved. Tell the person, report not ready, retry later."""


class EmailUnreadable(DataRequestError):
    """One request's stored email does not open with the key: that request waits alone, the others go on.

    The key check at start proves the key is the database's, so this is one damaged row (altered, or
    sealed under another key by a copy made elsewhere), not a wrong key: nothing to retry quickly.
    """

    def __init__(self, request_id: int) -> None:
        super().__init__(f"request {request_id}: its stored email cannot be decrypted with this key")
        self.request_id = request_id
