"""One error root: every error fxcli raises on purpose is an :class:`FxcliError`.

Messages have one format: ``WHERE: KEY: got VALUE; allowed: WHAT`` where a value
was refused (``WHERE`` is a file and line, a step, or absent for a library call).
Errors about values are also :class:`ValueError`s, so ``except ValueError`` keeps
working. Nothing here imports torch or numpy.
"""

from __future__ import annotations

import _string  # the parser of str.format (string.Formatter.parse), without the string module
from collections.abc import Callable
from typing import Any, Self

__all__ = [
    "AudioError",
    "DesignError",
    "FxcliError",
    "NonFiniteError",
    "ParameterError",
    "PresetError",
    "UsageError",
]


class FxcliError(Exception):
    """The root of fxcli's errors.

    An error that names options of a run (a device, a shard, ``overwrite``) names them
    in library words: :meth:`about` keeps the message as a template whose unfilled
    fields are the options, so the CLI prints their flags (``--device``,
    ``--skip-existing``: :meth:`worded`) while ``str(exc)`` says ``device`` and
    ``skip_existing``. :meth:`for_option` is the common case of a message about one
    option. CLI words appear only in ``fxcli/cli``.
    """

    option: str | None = None  # the first option named, if any
    options: tuple[str, ...] = ()
    template: str = ""
    values: dict[str, object] = {}

    @classmethod
    def about(cls, template: str, **values: object) -> Self:
        """An error with the message ``template`` (``str.format`` syntax): fields given
        in ``values`` are filled with them (paths and numbers: never parsed as a
        template), every other field names an option of the run, e.g.
        ``about("output {dest} exists (use {overwrite})", dest=path)``."""
        exc = cls.__new__(cls)
        fields = [f for _, f, _, _ in _string.formatter_parser(template) if f]
        exc.options = tuple(dict.fromkeys(f for f in fields if f not in values))
        exc.option = exc.options[0] if exc.options else None
        exc.template, exc.values = template, dict(values)
        exc.args = (exc.worded(lambda name: name),)
        return exc

    @classmethod
    def for_option(cls, option: str, detail: str) -> Self:
        """An error about ``option``: its name, then ``detail`` (a space between
        unless ``detail`` starts with a colon)."""
        sep = "" if detail.startswith(":") else " "
        return cls.about("{" + option + "}" + sep + "{detail}", detail=detail)

    @classmethod
    def wrapping(cls, exc: BaseException, prefix: str = "", suffix: str = "") -> Self:
        """``prefix``, ``exc``'s message and ``suffix`` as a ``cls``, still naming the
        options ``exc`` names (a file or step added in front of a lower error)."""
        if isinstance(exc, FxcliError) and exc.template:
            return cls.about(_literal(prefix) + exc.template + _literal(suffix), **exc.values)
        return cls(prefix + str(exc) + suffix)

    def __reduce__(self) -> str | tuple[Any, ...]:
        if not self.template:
            return super().__reduce__()
        return (_about, (type(self), self.template, self.values))

    def worded(self, flag: Callable[[str], str]) -> str:
        """The message with each option named by ``flag(name)`` (the CLI: ``--name``)."""
        if not self.template:
            return str(self)
        return self.template.format(**self.values, **{o: flag(o) for o in self.options})


def _literal(text: str) -> str:
    """``text`` as a format template that reads as itself."""
    return text.replace("{", "{{").replace("}", "}}")


def _about(cls: type[FxcliError], template: str, values: dict[str, object]) -> FxcliError:
    """Unpickle an error made by :meth:`FxcliError.about` (its options kept)."""
    return cls.about(template, **values)


class ParameterError(FxcliError, ValueError):
    """A parameter value outside what a step or function allows:
    ``ParameterError(name, got, allowed)`` reads ``name: got X; allowed: Y``."""

    def __init__(self, name: str, got: str, allowed: str) -> None:
        super().__init__(f"{name}: {got}; allowed: {allowed}")
        self.name, self.got, self.allowed = name, got, allowed


class PresetError(FxcliError, ValueError):
    """A preset that cannot be used (message: ``FILE:LINE: step I (TYPE): ...``)."""


class DesignError(FxcliError, ValueError):
    """A filter that cannot be designed for this rate (e.g. a cutoff above Nyquist)."""


class AudioError(FxcliError):
    """An audio file that cannot be read or written as asked."""


class NonFiniteError(FxcliError):
    """NaN or infinite samples where the run was told to refuse them."""


class UsageError(FxcliError):
    """A command line that cannot be run (raised by the batch layer, worded for the CLI)."""
