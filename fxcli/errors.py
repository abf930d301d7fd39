"""One error root: every error fxcli raises on purpose is an :class:`FxcliError`.

Messages have one format: ``WHERE: KEY: got VALUE; allowed: WHAT`` where a value
was refused (``WHERE`` is a file and line, a step, or absent for a library call).
Errors about values are also :class:`ValueError`s, so ``except ValueError`` keeps
working. Nothing here imports torch or numpy.
"""

from __future__ import annotations

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

    An error about one option of a run (a device, a shard, a manifest path) names the
    option in library words: :meth:`for_option` keeps it in :attr:`option`, so the CLI
    can print its flag (``--device``) while the library says ``device``.
    """

    option: str | None = None
    detail: str = ""

    @classmethod
    def for_option(cls, option: str, detail: str) -> FxcliError:
        exc = cls()
        exc.option, exc.detail = option, detail
        exc.args = (exc.naming(option),)
        return exc

    def naming(self, option: str) -> str:
        """The message of an option error with the option called ``option`` (the
        library says ``device``, the CLI ``--device``)."""
        sep = "" if self.detail.startswith(":") else " "
        return f"{option}{sep}{self.detail}"


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
