"""Errors that vtbench reports to users: each names the file or name and the problem."""

from __future__ import annotations


class VtbenchError(Exception):
    """Base class: a problem the user can fix; the CLI prints it without a traceback."""


class UnknownNameError(VtbenchError, KeyError):
    """A registry lookup for a name nobody registered."""

    def __init__(self, kind: str, name: str, close: list[str], known: list[str]) -> None:
        self.kind, self.name, self.close, self.known = kind, name, close, known
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        listing = ", ".join(known[:30]) + (", ..." if len(known) > 30 else "")
        super().__init__(f"unknown {kind.rstrip('s')} {name!r}.{hint} Known {kind}: {listing}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class PluginLoadError(VtbenchError):
    """A registered plugin (built-in or entry point) failed to import."""


class BadImageError(VtbenchError):
    """An input image that cannot be read or converted; names the file."""

    def __init__(self, image_id: str, problem: str) -> None:
        self.image_id, self.problem = image_id, problem
        super().__init__(f"{image_id}: {problem}")


class TokenizerOutputError(VtbenchError):
    """A tokenizer broke its contract (wrong shape, dtype or non-finite values)."""


class RecipeError(VtbenchError):
    """A recipe file that does not parse or names unknown things."""


class DatasetError(VtbenchError):
    """A dataset that cannot be opened (missing folder, no images)."""


class RunStateError(VtbenchError):
    """Partial state on disk that does not match the run being started."""


class CheckpointFormatError(VtbenchError):
    """A weights or state file that cannot be read without running code from it."""


class ComponentOptionError(VtbenchError, ValueError):
    """A tokenizer, dataset, metric or other plugin refused its options (names the component)."""
