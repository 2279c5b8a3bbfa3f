"""Settings: one name each, set in three places.

A setting ``clip_model`` is read, first to last, from ``SET lancesql.clip_model = ...``
on the connection, from ``lancesql.connect(..., settings={"clip_model": ...})`` (or a
group argument such as ``clip={"model": ...}``), from the environment variable
``LANCESQL_CLIP_MODEL``, and from its default. Every feature declares its settings
beside its code with :func:`declare`, so ``SHOW lancesql`` can list them all.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lancesql.errors import ProgrammingError

PREFIX = "lancesql."
ENV_PREFIX = "LANCESQL_"


@dataclass(frozen=True)
class Setting:
    """A declared setting: its name, default, parser and what it does."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    doc: str


SETTINGS: dict[str, Setting] = {}


def parse_bool(text: str) -> bool:
    """``true``/``false`` and their usual spellings.

    >>> parse_bool("on"), parse_bool("0")
    (True, False)
    """
    value = str(text).strip().lower()
    if value in ("1", "true", "t", "yes", "y", "on"):
        return True
    if value in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def declare(name: str, default: Any, parse: Callable[[str], Any], doc: str) -> Setting:
    """Declare setting ``name`` (idempotent, so a module may be reloaded)."""
    setting = Setting(name, default, parse, doc)
    SETTINGS[name] = setting
    return setting


class Settings:
    """The settings of one connection."""

    def __init__(self, given: Mapping[str, Any] | None = None):
        self._given: dict[str, Any] = {}
        self._set: dict[str, Any] = {}
        for key, value in (given or {}).items():
            name = self._check(key)
            self._given[name] = self._coerce(name, value)

    def get(self, name: str) -> Any:
        """The value of ``name`` from SET, connect(), the environment or the default."""
        name = self._check(name)
        setting = SETTINGS[name]
        if name in self._set:
            return self._set[name]
        if name in self._given:
            return self._given[name]
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None:
            return self._coerce(name, env)
        return setting.default

    def set(self, name: str, value: Any) -> None:
        """``SET lancesql.<name> = value``."""
        name = self._check(name)
        self._set[name] = self._coerce(name, value)

    def reset(self, name: str) -> None:
        """``RESET lancesql.<name>``."""
        self._set.pop(self._check(name), None)

    def items(self) -> list[tuple[str, Any, str]]:
        """Every declared setting with its current value and description."""
        return [(name, self.get(name), SETTINGS[name].doc) for name in sorted(SETTINGS)]

    @staticmethod
    def _check(name: str) -> str:
        name = name.removeprefix(PREFIX)
        if name not in SETTINGS:
            known = ", ".join(sorted(SETTINGS))
            raise ProgrammingError(f"unknown setting lancesql.{name}; the settings are: {known}")
        return name

    @staticmethod
    def _coerce(name: str, value: Any) -> Any:
        setting = SETTINGS[name]
        if value is None:
            return None
        try:
            # Every value goes through the setting's parser, whatever type it came as
            # (SET lancesql.x = 3 gives a number, connect(settings=...) any Python value).
            return setting.parse(value if isinstance(value, str) else str(value))
        except ValueError as exc:
            raise ProgrammingError(f"bad value for lancesql.{name}: {exc}") from None

