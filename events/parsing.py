"""Raw input becomes an event here, or an `InvalidEvent` that names what is wrong.

A refused payload becomes a dead letter (a database row and a stream entry) whatever it is, so
everything an `InvalidEvent` carries is bounded here: a hostile producer cannot make one dead
letter larger than `MAX_DEAD_LETTER_BYTES`, however large or strange its input.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any, Literal, get_args

from pydantic import TypeAdapter, ValidationError

from events.models import EVENT_TYPES, Event

MAX_EVENT_BYTES = 64 * 1024
"""An event larger than this (as JSON) is refused: no legitimate event comes near it."""

ReasonCode = Literal[
    "not_json",
    "not_an_object",
    "too_large",
    "unknown_type",
    "invalid_field",
    "future",
    "poison",
    "too_many_events",
    "quarantined",
]
"""Why an event was refused, as a small fixed set: the metric label and a dead letter's `reason`.

- `not_json`: not JSON text (or nested too deeply to decode);
- `not_an_object`: JSON, but not an object;
- `too_large`: over `CONVLIFE_MAX_EVENT_BYTES`;
- `unknown_type`: `type` missing or not one of the event types;
- `invalid_field`: a field missing, mistyped or out of bounds;
- `future`: dated more than `CONVLIFE_MAX_CLOCK_SKEW` ahead of convlife's clock;
- `poison`: valid, yet processing it failed for its own reasons, again and again;
- `too_many_events`: past the most events one message may carry
  (`CONVLIFE_MAX_EVENTS_PER_MESSAGE`); replay it in another message;
- `quarantined`: not an event: a stored conversation the sweep could not read or close, set
  aside so it blocks no other (not to be replayed).
"""

REASON_CODES: tuple[ReasonCode, ...] = get_args(ReasonCode)

MAX_DEAD_LETTER_BYTES = 16 * 1024
"""The most one dead letter holds, all its fields together (UTF-8 bytes), whatever the input:
the raw payload (`MAX_RAW_KEPT`), the error (`MAX_ERROR_KEPT`), two ids (`MAX_ID_KEPT`
characters each, at most 4 bytes a character) and a few short fields."""

MAX_RAW_KEPT = 8 * 1024
"""How much of a refused payload a dead letter keeps, in UTF-8 bytes (plus the cut mark)."""

MAX_ERROR_KEPT = 4 * 1024
"""How much of the error text a dead letter keeps, in UTF-8 bytes (plus the cut mark)."""

MAX_ID_KEPT = 200
"""The dead letter's id columns hold 200 characters, like every id."""

MAX_ECHO = 100
"""How many characters of an input value an error message repeats."""

MAX_ERRORS_LISTED = 10
"""How many field errors an error message lists; the rest are counted."""

CUT_MARK = "…[cut]"

_event_adapter: TypeAdapter[Any] = TypeAdapter(Event)


class InvalidEvent(ValueError):
    """Input that is not a valid event, with every field bounded for a dead letter.

    `code`: why, as a `ReasonCode`; `reason`: the error in words (one line, at most
    MAX_ERROR_KEPT bytes); `raw`: the payload as text (at most MAX_RAW_KEPT bytes);
    `event_id`, `account_id`: what the payload names, when it does (`account_id` is looked for
    in `raw` when not given).
    """

    def __init__(
        self,
        reason: str,
        raw: str,
        event_id: str | None = None,
        *,
        code: ReasonCode = "invalid_field",
        account_id: str | None = None,
    ) -> None:
        self.code: ReasonCode = code
        self.reason = cut(printable(storable(reason[: MAX_ERROR_KEPT + 1])), MAX_ERROR_KEPT)
        super().__init__(self.reason)
        self.account_id = kept_id(account_id if account_id is not None else account_named_in(raw))
        self.raw = cut(storable(raw[: MAX_RAW_KEPT + 1]), MAX_RAW_KEPT)
        self.event_id = kept_id(event_id)


def storable(text: str) -> str:
    """`text` as any store can hold it: NUL and lone surrogates written as escapes.

    A dead letter must be storable whatever arrived, or one bad event would fail its batch.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text


def cut(text: str, max_bytes: int) -> str:
    """`text` if it is at most `max_bytes` in UTF-8, else its first `max_bytes` bytes (never
    half a character) and CUT_MARK. `text` must be storable (no lone surrogates)."""
    if len(text) * 4 <= max_bytes:
        return text  # cannot be over: a character is at most 4 bytes
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", errors="ignore") + CUT_MARK


def kept_id(value: str | None) -> str | None:
    """An id as a dead letter keeps it: storable, at most MAX_ID_KEPT characters."""
    return None if value is None else storable(value[: MAX_ID_KEPT + 1])[:MAX_ID_KEPT]


_CONTROL = {
    **{c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)]},
    # Unicode line and paragraph separators end a line in some terminals and log viewers; the
    # bidirectional overrides and isolates reorder what a terminal shows ("Trojan Source").
    **{c: f"\\u{c:04x}" for c in [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]},
}


def printable(text: str) -> str:
    """`text` with every control character written as an escape (`\\x1b`, `\\x0a`,
    `\\u2028`): C0, DEL, C1, the Unicode line and paragraph separators and the bidirectional
    controls. Untrusted text is passed through this before it reaches a log line or a terminal,
    so it cannot start a forged line, move the cursor or recolour what follows."""
    # Every control character above is one `str.isprintable` refuses: text it accepts (nearly
    # every log line) is returned as it is, checked in C at a third of translate's cost.
    return text if text.isprintable() else text.translate(_CONTROL)


_JSON_CONTROL = {c: f"\\u{c:04x}" for c in _CONTROL if c >= 0x7F}


def printable_json(text: str) -> str:
    """JSON text (as `json.dumps(..., ensure_ascii=False)` writes it) with the control characters
    JSON leaves raw (DEL, C1, U+2028/2029, the bidirectional controls) escaped as `\\uXXXX`: the
    same JSON value, safe to print to a terminal. (JSON itself escapes C0.)"""
    return text if text.isprintable() else text.translate(_JSON_CONTROL)


def echo(value: object) -> str:
    """An input value as an error message repeats it: quoted, at most MAX_ECHO characters."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > MAX_ECHO:
        text = text[:MAX_ECHO] + "…"
    return "'" + printable(text) + "'"


_ACCOUNT_KEY = '"account_id"'
_ACCOUNT_VALUE = re.compile(r'\s*:\s*"((?:[^"\\]|\\.){1,' + str(MAX_ID_KEPT * 6) + r'})"')
_ACCOUNT_LOOK_CHARS = 1024 * 1024
"""How far into a payload's text the account is looked for (a refused payload can be huge)."""
_ACCOUNT_LOOK_TRIES = 16
"""How many `"account_id"` keys are looked at before giving up (each costs a regex match)."""


def account_named_in(raw: str) -> str | None:
    """The `account_id` a payload names, read from its text without decoding it: a refused payload
    may be invalid JSON, or too large to decode, and its dead letter still belongs to an account.
    A cheap, bounded look: the first `"account_id": "…"` among the first 16 such keys in the
    first MiB (a key written inside a string value, `\\"account_id\\"`, excepted); None when
    there is none."""
    at = raw.find(_ACCOUNT_KEY, 0, _ACCOUNT_LOOK_CHARS)
    for _ in range(_ACCOUNT_LOOK_TRIES):
        if at < 0:
            return None
        found = _ACCOUNT_VALUE.match(raw, at + len(_ACCOUNT_KEY))
        if found is not None and (at == 0 or raw[at - 1] != "\\"):
            try:
                value = json.loads(f'"{found.group(1)}"')
            except ValueError:
                return None
            return value if isinstance(value, str) and value.strip() else None
        at = raw.find(_ACCOUNT_KEY, at + 1, _ACCOUNT_LOOK_CHARS)
    return None  # a payload naming the key this often is not worth reading further


def raw_text(payload: object) -> str:
    """The payload as text, for a dead letter, whatever it is."""
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    if isinstance(payload, str):
        return payload
    try:
        return json.dumps(payload, ensure_ascii=False, default=repr)
    except (ValueError, TypeError, RecursionError):  # cycles, non-string keys, deep nesting
        pass
    try:
        return repr(payload)[: MAX_RAW_KEPT + 1]
    except RecursionError:
        return f"<{type(payload).__name__} nested too deeply to show>"


def parse_event(payload: object, *, max_bytes: int = MAX_EVENT_BYTES) -> Event:
    """Turn one raw payload (a dict, or JSON as str/bytes) into an event.

    Raises InvalidEvent with a code and a one-line reason: not JSON, not an object, too large,
    unknown type, missing or mistyped fields.
    """
    if not _surely_within(payload, max_bytes):
        text = raw_text(payload)
        if len(text.encode("utf-8", errors="replace")) > max_bytes:
            raise InvalidEvent(
                f"payload larger than {max_bytes} bytes",
                text,
                code="too_large",
                account_id=_account_of(payload),
            )
    original = payload
    if isinstance(payload, _TEXT):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise InvalidEvent(f"not JSON: {exc}", raw_text(original), code="not_json") from None
    if not isinstance(payload, dict):
        raise InvalidEvent(
            f"an event is a JSON object, got {type(payload).__name__}",
            raw_text(original),
            code="not_an_object",
        )
    event_id = payload.get("event_id") if isinstance(payload.get("event_id"), str) else None
    try:
        return _event_adapter.validate_python(payload)  # type: ignore[no-any-return]
    except ValidationError as exc:
        code, reason = _one_line(exc)
        raise InvalidEvent(
            reason, raw_text(original), event_id, code=code, account_id=_account_of(payload)
        ) from None
    except RecursionError:
        raise InvalidEvent(
            "payload nested too deeply",
            raw_text(original),
            event_id,
            account_id=_account_of(payload),
        ) from None


def refuse(payload: object, reason: str, code: ReasonCode) -> InvalidEvent:
    """An InvalidEvent for a payload refused after parsing (too far in the future, poison), with
    the event and account ids it names."""
    decoded = payload
    if isinstance(payload, str | bytes) and len(payload) <= MAX_EVENT_BYTES:
        with contextlib.suppress(ValueError, RecursionError):  # then it is kept as text
            decoded = json.loads(payload)
    event_id = decoded.get("event_id") if isinstance(decoded, dict) else None
    return InvalidEvent(
        reason,
        raw_text(payload),
        event_id if isinstance(event_id, str) else None,
        code=code,
        account_id=_account_of(decoded),
    )


def _account_of(payload: object) -> str | None:
    if isinstance(payload, dict):
        account = payload.get("account_id")
        return account if isinstance(account, str) and account.strip() else None
    return account_named_in(raw_text(payload) if isinstance(payload, bytes) else str(payload))


_STR = frozenset({str})
# Tuples, not `str | bytes`: a union is built anew on every call (3x the isinstance cost).
_TEXT = (str, bytes)
_BOOL_OR_FLOAT = (bool, float)


def _surely_within(payload: object, max_bytes: int) -> bool:
    """True when `payload` cannot exceed `max_bytes` as UTF-8 JSON, judged without encoding it:
    a flat dict of short scalars (every event) is bounded by its lengths, each character taking at
    most 6 bytes (`\\uXXXX`). Anything else is measured by encoding it."""
    if isinstance(payload, _TEXT):
        return len(payload) * 6 <= max_bytes  # as measured below: at most 4 bytes a character
    if not isinstance(payload, dict):
        return False
    if _STR.issuperset(map(type, payload)) and _STR.issuperset(map(type, payload.values())):
        # The common case, all text, summed at C speed: the same budget as the loop below.
        chars = sum(map(len, payload)) + sum(map(len, payload.values()))
        return 2 + 6 * chars + 6 * len(payload) <= max_bytes
    budget = 2  # the braces
    for key, value in payload.items():
        if not isinstance(key, str):
            return False
        if isinstance(value, str):
            budget += 6 * len(value) + 2
        elif value is None or isinstance(value, _BOOL_OR_FLOAT):
            budget += 32
        elif isinstance(value, int) and value.bit_length() <= 64:
            budget += 32  # at most 20 digits and a sign
        else:
            return False
        budget += 6 * len(key) + 4  # quotes, colon, comma
    return budget <= max_bytes


def _one_line(exc: ValidationError) -> tuple[ReasonCode, str]:
    """The errors as one bounded line, and their code. pydantic's own messages may repeat the
    input (an unknown `type` in full): such values are cut to MAX_ECHO characters."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = []
    code: ReasonCode = "invalid_field"
    for error in errors[:MAX_ERRORS_LISTED]:
        loc = [str(p)[:MAX_ECHO] for p in error["loc"]]
        if error["type"] == "union_tag_invalid":
            code = "unknown_type"
            tag = (error.get("ctx") or {}).get("tag", "")
            parts.append(f"type: {echo(tag)} is not one of {', '.join(EVENT_TYPES)}")
            continue
        if error["type"] == "union_tag_not_found":
            code = "unknown_type"
            parts.append(f"type: {error['msg']}")
            continue
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]  # pydantic prefixes the union member; the field is what helps
        message = error["msg"]
        if len(message) > 2 * MAX_ECHO:
            message = message[: 2 * MAX_ECHO] + "…"
        parts.append(f"{'.'.join(loc) or 'event'}: {message}")
    if len(errors) > MAX_ERRORS_LISTED:
        parts.append(f"and {len(errors) - MAX_ERRORS_LISTED} more errors")
    return code, printable("; ".join(parts))
