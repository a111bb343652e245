"""One validating path for what a query string or a form carries: ids, dates, choices and text are read
here, and what cannot be read is dropped (or refused by the caller with a message), never a 500.

The traps this closes: `"²".isdigit()` is True but `int("²")` raises; a 23-digit id overflows SQLite and
PostgreSQL integers; `9999-12-31` overflows date arithmetic; NUL bytes are refused by PostgreSQL (those are
stopped earlier, by `middleware.RefuseMalformedInput`)."""

from datetime import date, datetime, time

from django.utils import timezone

MAX_ID_DIGITS = 18  # below 2**63: fits every integer primary key
YEARS = range(1900, 3000)


def object_id(value) -> int | None:
    """A positive database id written in ASCII digits, or None."""
    value = str(value or "").strip()
    if not value or len(value) > MAX_ID_DIGITS or not (value.isascii() and value.isdigit()):
        return None
    return int(value)


def day(value) -> date | None:
    """An ISO date (YYYY-MM-DD) in 1900–2999, or None."""
    try:
        parsed = date.fromisoformat(str(value or "").strip())
    except ValueError:
        return None
    return parsed if parsed.year in YEARS else None


def choice(value, allowed) -> str:
    """`value` when it is one of `allowed`, else ""."""
    value = str(value or "")
    return value if value in allowed else ""


def text(value, max_length: int = 200) -> str:
    return str(value or "").strip()[:max_length]


def local_midnight(value: date) -> datetime:
    """The start of `value` in the portal's time zone (TIME_ZONE): where a day of created_at begins for
    filters, the dashboard's ranges and the stats' day rows alike."""
    return datetime.combine(value, time.min, tzinfo=timezone.get_default_timezone())


def key_values(text: str, *, reserved: tuple[str, ...] = ()) -> dict[str, str]:
    """`key=value` lines (blank lines skipped) -> a dict; ValueError("Line n: ...") on the first bad line."""
    pairs: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"Line {number}: write one per line as key=value.")
        if key.strip() in reserved:
            raise ValueError(f"Line {number}: {key.strip()} is set by the registration itself.")
        pairs[key.strip()] = value.strip()
    return pairs
