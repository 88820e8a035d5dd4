"""Option checking both schedulers share: one check per option, the rest as given."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from gantry.backends.base import BackendError

#: A check: the option's name and value in, the normalised value out (or ValueError).
Check = Callable[[str, object], Any]


def normalise(options: Mapping[str, Any], checks: Mapping[str, Check]) -> dict[str, Any]:
    """Each option with a check, checked and normalised; ValueError names it and the fix."""
    out = dict(options)
    for key, value in options.items():
        if value is not None and key in checks:
            out[key] = checks[key](key, value)
    return out


def one_word(key: str, value: object, *, dash: bool = True) -> str:
    """A value that is one argv item: no spaces; with ``dash=False`` not starting with
    ``-`` either (a command would take it as an option)."""
    text = str(value).strip() if isinstance(value, str | int) else ""
    bad = not text or any(c.isspace() or not c.isprintable() for c in text)
    if bad or (not dash and text.startswith("-")):
        rule = "one word without spaces" + ("" if dash else ", not starting with -")
        raise ValueError(f"{key} {value!r} is not valid: give {rule}, e.g. {key}=name")
    return text


def config_number(
    config: Mapping[str, str], backend: str, key: str, kind: type[float] | type[int], low: float
) -> Any:
    """``backend.<backend>.<key>`` as a number >= ``low``; BackendError names the key."""
    try:
        value = kind(config[key])
    except ValueError:
        value = None
    if value is None or value < low:
        name = f"backend.{backend}.{key}"
        raise BackendError(
            f"{name} {config[key]!r} is not valid: give a {kind.__name__} >= {low:g}"
        )
    return value


def name_prefix(config: Mapping[str, str], backend: str, default: str = "gantry") -> str:
    """``backend.<backend>.job_name_prefix``: jobs are named ``<prefix>-<key>``."""
    prefix = config.get("job_name_prefix", default)
    if not prefix or not all(c.isalnum() or c in "-_." for c in prefix):
        raise BackendError(
            f"backend.{backend}.job_name_prefix {prefix!r} is not valid: use letters, digits, - _ ."
        )
    return prefix


def option_defaults(
    config: Mapping[str, str],
    backend: str,
    names: Iterable[str],
    check: Callable[[Mapping[str, Any]], dict[str, Any]],
) -> dict[str, Any]:
    """The job options' defaults the config sets (``backend.<backend>.queue``), checked."""
    given = {k: config[k] for k in names if config.get(k) not in (None, "")}
    try:
        return check(given)
    except ValueError as exc:
        raise BackendError(f"backend.{backend} config: {exc}") from None


def read_numbers(
    settings: Any, config: Mapping[str, str], backend: str, low: Mapping[str, float] | None = None
) -> None:
    """Set each number field of ``settings`` the config names, checked: seconds (floats)
    at least 0.01, counts (ints) at least 0, unless ``low`` says otherwise."""
    for key in config:
        current = getattr(settings, key, None)
        if isinstance(current, bool) or not isinstance(current, int | float):
            continue  # not a number setting (a job option's default, a path)
        kind = type(current)
        floor = (low or {}).get(key, 0.01 if kind is float else 0)
        setattr(settings, key, config_number(config, backend, key, kind, floor))
