"""What stops a `convlife` command: an operator's mistake or a service it cannot reach.

Each is a `CommandError` whose message is one line naming the problem and the fix; `cli/main.py`
`main` prints it and exits 2, in one place. `command_error` translates the few library errors
that mean the same things (a refused Redis connection, a database never migrated, an unreadable
file, an invalid `CONVLIFE_*` value) so that commands need no try/except of their own.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from kombu.exceptions import OperationalError as KombuOperationalError
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from service.preflight import PreflightError


class CommandError(Exception):
    """A command cannot go on; the message is one line for the operator. Exit code 2."""


class ConfigError(CommandError):
    """A `CONVLIFE_*` variable holds a value convlife cannot use."""


class UsageError(CommandError):
    """The command line asks for something that cannot be done (a missing file, …)."""


class RedisUnreachable(CommandError):
    """No Redis answers on a configured URL."""

    def __init__(self, url: str, error: BaseException | str) -> None:
        super().__init__(
            f"cannot reach Redis at {mask(url)}: {_first_line(error)} "
            "(start one, or set CONVLIFE_BROKER_URL / CONVLIFE_REDIS_URL)"
        )


class DatabaseUnreachable(CommandError):
    """The database does not answer (or refuses the connection)."""

    def __init__(self, url: str, error: BaseException | str) -> None:
        super().__init__(
            f"cannot use the database at {mask(url)}: {_first_line(error)} "
            "(check CONVLIFE_DATABASE_URL)"
        )


class NotMigrated(CommandError):
    """The database has no convlife schema yet, or an older one."""

    def __init__(self, url: str, detail: str = "has no convlife schema") -> None:
        super().__init__(f"the database at {mask(url)} {detail}: run `convlife migrate` first")


def mask(url: str) -> str:
    """`url` with its password replaced by `***`, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def _first_line(error: BaseException | str) -> str:
    text = str(error).strip()
    if isinstance(error, DBAPIError) and error.orig is not None:
        text = str(error.orig).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 300 else line[:300] + "…"


def command_error(
    error: BaseException,
    *,
    database_url: str | None = None,
    redis_urls: tuple[str, ...] = (),
) -> CommandError | None:
    """The CommandError that `error` means, or None for a real bug (let it trace)."""
    if isinstance(error, CommandError):
        return error
    if isinstance(error, PreflightError):
        return CommandError(f"refusing to start: {error}")
    if isinstance(error, ValidationError) and error.title == "Settings":
        return _config_error(error)
    if isinstance(error, RedisConnectionError | RedisTimeoutError | KombuOperationalError):
        return RedisUnreachable(_which_redis(error, redis_urls), error)
    if isinstance(error, OperationalError | ProgrammingError) and database_url is not None:
        text = str(error.orig if error.orig is not None else error)
        if "no such table" in text or "UndefinedTable" in type(error.orig).__name__:
            return NotMigrated(database_url)
        return DatabaseUnreachable(database_url, error)
    if isinstance(error, UnicodeDecodeError):
        return UsageError(f"the input is not UTF-8 text ({error.reason} at byte {error.start})")
    if isinstance(error, OSError) and error.filename is not None:
        return UsageError(f"cannot read {error.filename}: {error.strerror}")
    return None


def _config_error(error: ValidationError) -> ConfigError:
    problems = []
    for item in error.errors(include_url=False):
        name = "CONVLIFE_" + "_".join(str(part) for part in item["loc"][:1]).upper()
        reason = item["msg"].removeprefix("Value error, ")
        given = repr(item.get("input"))
        given = given if len(given) <= 60 else given[:60] + "…"
        if str(item.get("input")) not in reason:
            reason = f"{given}: {reason}"
        problems.append(f"invalid {name}: {reason}")
    return ConfigError("; ".join(problems))


def _which_redis(error: BaseException, urls: tuple[str, ...]) -> str:
    """The configured URL the error is about (its host:port appears in the message)."""
    text = str(error)
    for url in urls:
        parts = urlsplit(url)
        if parts.hostname and f"{parts.hostname}:{parts.port or 6379}" in text:
            return url
    return urls[0] if urls else "redis://?"
