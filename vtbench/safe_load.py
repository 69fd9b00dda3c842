"""Reading ``torch.save`` files without running code from them.

Training scripts save weights beside Python objects (``argparse.Namespace``, config
objects, optimiser classes). Unpickling those would import and call whatever the file
names, so a crafted checkpoint could run a payload. Here every file is read with torch's
``weights_only`` unpickler; classes and functions it does not allow are replaced by
:class:`Opaque` placeholders that keep their arguments and never construct or call the
named object. Tensors and plain containers come back as usual.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from vtbench.errors import CheckpointFormatError

BOILERPLATE = ("Weights only load failed", "Check the documentation", "Please file an issue")  # torch's message around the reason


class Opaque:
    """Stands for an object a checkpoint names but vtbench does not construct.

    ``qualified_name`` is the name in the file; ``args`` and ``state`` are what the pickle
    would have passed to it (plain data, tensors or other placeholders).
    """

    qualified_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Opaque:
        placeholder = object.__new__(cls)
        placeholder.args, placeholder.state = args, None
        return placeholder

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<not loaded: {self.qualified_name}>"


def _placeholder(qualified_name: str) -> type[Opaque]:
    return type("Opaque", (Opaque,), {"qualified_name": qualified_name})


def load_checkpoint(path: str | Path, mmap: bool = False) -> Any:
    """The contents of a ``torch.save`` file, with tensors on the CPU and every non-allow-listed
    object replaced by an :class:`Opaque` placeholder. A file that is not a zip-format
    ``torch.save`` archive (legacy or raw pickle, a blocked module) is refused by name."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "pickle protocol 4 ..." from raw pickles, refused below
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError:
        pass
    except Exception as exc:
        raise CheckpointFormatError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from None
    try:
        foreign = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as exc:
        raise CheckpointFormatError(
            f"{path}: a legacy or raw pickle file; vtbench reads only zip-format torch.save archives safely "
            f"(re-save its tensors with torch.save or safetensors) ({type(exc).__name__})"
        ) from None
    placeholders = [(_placeholder(name), name) for name in foreign]
    try:
        with torch.serialization.safe_globals(placeholders):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, TypeError, AttributeError) as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        detail = [
            line for line in lines if not line.startswith(("Weights only load failed", "Check the documentation", "Please file an issue"))
        ]
        reason = (detail or lines or [type(exc).__name__])[0]
        raise CheckpointFormatError(f"{path}: refused: it cannot be read without running code from it ({reason})") from None
