""".npz files (sample batches, ADM reference batches, statistics) read safely and without
loading them whole.

An array stored uncompressed (``np.savez``, the ADM batches) is memory-mapped where it lies
inside the zip, so reading a batch of samples costs that batch's memory, whatever the file's
size; a compressed one (``np.savez_compressed``) is read once, whole. Nothing is unpickled:
an array of Python objects is refused. A file that is empty, truncated or not an ``.npz`` is
one :class:`~vtbench.errors.VtbenchError` naming the file and the problem.
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path

import numpy as np

from vtbench.errors import DatasetError

LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # a zip member's local file header (30 bytes)


def _problem(path: Path, what: str) -> DatasetError:
    return DatasetError(f"{path}: {what}")


def npz_keys(path: str | Path) -> list[str]:
    """The array names an ``.npz`` holds (``arr_0``, ``mu`` ...)."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise _problem(path, "an empty file, not an .npz")
        with zipfile.ZipFile(path) as archive:
            return [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
    except FileNotFoundError:
        raise _problem(path, "no such .npz file") from None
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise _problem(path, f"not a readable .npz (a zip of .npy arrays): {exc}") from None


class NpzRows:
    """Rows of an uncompressed ``.npz`` array read one at a time from the file (``rows[i]``):
    memory stays at one row, however long the array (a memory map would keep every page it
    touched resident)."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype, offset: int) -> None:
        self.path, self.shape, self.dtype, self.offset = path, shape, dtype, offset
        self.ndim = len(shape)
        self.row_shape = shape[1:]
        self.row_bytes = int(np.prod(self.row_shape)) * dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < self.shape[0]:
            raise IndexError(index)
        with open(self.path, "rb") as handle:
            data = os.pread(handle.fileno(), self.row_bytes, self.offset + index * self.row_bytes)
        if len(data) != self.row_bytes:
            raise _problem(self.path, f"row {index} is cut short: a truncated file")
        return np.frombuffer(data, dtype=self.dtype).reshape(self.row_shape)


def npz_rows(path: str | Path, key: str) -> NpzRows | np.ndarray:
    """Array ``key``'s rows, read from the file one at a time when it is stored uncompressed
    (C order), else the array read whole."""
    array = npz_array(path, key)
    if isinstance(array, np.memmap) and array.flags.c_contiguous and array.ndim >= 1:
        return NpzRows(Path(path), array.shape, array.dtype, int(array.offset))
    return array


def npz_array(path: str | Path, key: str) -> np.ndarray:
    """Array ``key`` of an ``.npz``: memory-mapped when stored uncompressed, else read whole.
    Object arrays (which only unpickling could read) are refused."""
    path = Path(path)
    if key not in npz_keys(path):
        raise _problem(path, f"no {key} array (found {', '.join(npz_keys(path)) or 'none'})")
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(f"{key}.npy")
            with archive.open(info) as member:
                major, _ = np.lib.format.read_magic(member)
                readers = {1: np.lib.format.read_array_header_1_0, 2: np.lib.format.read_array_header_2_0}
                if major not in readers:
                    raise _problem(path, f"{key} is in .npy format version {major}, which vtbench does not read")
                shape, fortran, dtype = readers[major](member)
                header_length = member.tell()
        if dtype.hasobject:
            raise _problem(path, f"{key} holds Python objects, which vtbench does not unpickle: save plain numbers (np.savez)")
        count = int(np.prod(shape)) if shape else 1
        if info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as handle:
                handle.seek(info.header_offset)
                fields = LOCAL_HEADER.unpack(handle.read(LOCAL_HEADER.size))
                data = info.header_offset + LOCAL_HEADER.size + fields[-2] + fields[-1] + header_length
            if data + count * dtype.itemsize > path.stat().st_size:
                raise _problem(path, f"{key} is cut short (the file ends before its {count:,} values): a truncated file")
            return np.memmap(path, dtype=dtype, mode="r", offset=data, shape=shape, order="F" if fortran else "C")
        with zipfile.ZipFile(path) as archive, archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except DatasetError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, struct.error) as exc:
        raise _problem(path, f"{key} cannot be read ({type(exc).__name__}: {exc}): a damaged or truncated file") from None
