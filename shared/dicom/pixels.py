"""Pixel values of frames: stored values into one array, then Hounsfield units.

Uncompressed little-endian Pixel Data is read with ``readinto`` straight into the output array
(no pydicom element, no per-slice copies); anything else (JPEG, JPEG-LS, JPEG 2000, RLE, deflate,
big endian) goes through pydicom's pixel-data decoders and their plugins (pylibjpeg, pyjpegls).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from shared.dicom import header
from shared.dicom.errors import LoadError, Reason
from shared.dicom.frames import Frame
from shared.dicom.instances import Instance

PADDING_HU = -1024
"""HU given to Pixel Padding Value voxels (PS3.3 C.7.5.1.1.2): air, outside the reconstruction."""


def read_stored_values(frames: list[Frame]) -> np.ndarray:
    """Stored values of the frames, stacked in the given order: shape ``(n, rows, columns)``."""
    first = frames[0].instance.dataset
    shape = (len(frames), header.integer(first, "Rows", 0), header.integer(first, "Columns", 0))
    dtypes = [stored_dtype(frame.instance) for frame in frames]
    out = np.empty(shape, np.result_type(*set(dtypes)))
    decoded: dict[int, np.ndarray] = {}  # multi-frame objects are decoded once
    for k, (frame, dtype) in enumerate(zip(frames, dtypes)):
        if frame.instance.native is not None:
            _read_native(frame.instance, frame.index, out[k], dtype)
        else:
            out[k] = _decoded_frame(frame.instance, frame.index, shape[1:], decoded)
    return out


def stored_to_hu(stored: np.ndarray, frames: list[Frame]) -> np.ndarray:
    """HU = stored x RescaleSlope + RescaleIntercept, padding set to :data:`PADDING_HU`; int16 when exact.

    ``stored`` is consumed: the int16 result may share its memory.
    """
    slopes = np.array([f.slope for f in frames])
    intercepts = np.array([f.intercept for f in frames])
    paddings = [_padding_range(f.instance, stored.dtype) for f in frames]
    hu = _as_int16_hu(stored, slopes, intercepts)
    if hu is None:
        hu = np.empty(stored.shape, np.float32)
    for k in range(len(frames)):
        padding = _padding_mask(stored[k], paddings[k]) if paddings[k] is not None else None
        if hu.dtype == np.float32:
            np.multiply(stored[k], slopes[k], out=hu[k], casting="unsafe")
            hu[k] += intercepts[k]
        elif intercepts[k] != 0:
            hu[k] += np.int16(intercepts[k])
        if padding is not None:
            hu[k][padding] = PADDING_HU
    return hu


def stored_dtype(instance: Instance) -> np.dtype:
    """Little-endian numpy dtype of stored values (BitsAllocated, PixelRepresentation)."""
    ds = instance.dataset
    bits = header.integer(ds, "BitsAllocated", 16)
    signed = header.integer(ds, "PixelRepresentation", 0) == 1
    size = 1 if bits <= 8 else 2 if bits <= 16 else 4
    return np.dtype(f"<{'i' if signed else 'u'}{size}")


def _read_native(instance: Instance, index: int, target: np.ndarray, dtype: np.dtype) -> None:
    assert instance.native is not None
    frame_bytes = target.size * dtype.itemsize
    if (index + 1) * frame_bytes > instance.native.length:
        raise LoadError(
            Reason.CORRUPT_PIXEL_DATA,
            f"Pixel Data holds {instance.native.length} bytes, too few for frame {index + 1} of {frame_bytes} bytes",
        )
    start = instance.native.offset + index * frame_bytes
    buffer = target if target.dtype == dtype else np.empty(target.shape, dtype)
    if isinstance(instance.source, Path):
        with open(instance.source, "rb", buffering=0) as stream:
            stream.seek(start)
            got = stream.readinto(memoryview(buffer).cast("B"))
        if got != frame_bytes:
            raise LoadError(Reason.TRUNCATED, "file ends inside its Pixel Data")
    else:
        buffer[...] = np.frombuffer(instance.source, dtype, count=target.size, offset=start).reshape(target.shape)
    _clear_unused_bits(buffer, header.integer(instance.dataset, "BitsStored", dtype.itemsize * 8))
    if buffer is not target:
        target[...] = buffer


def _clear_unused_bits(values: np.ndarray, bits_stored: int) -> None:
    """Keep only the BitsStored low bits (PS3.5 8.1.1): mask unsigned values, sign-extend signed ones."""
    unused = values.dtype.itemsize * 8 - bits_stored
    if unused <= 0:
        return
    if values.dtype.kind == "u":
        values &= values.dtype.type((1 << bits_stored) - 1)
    else:
        np.left_shift(values, unused, out=values)
        np.right_shift(values, unused, out=values)


def _decoded_frame(
    instance: Instance, index: int, frame_shape: tuple[int, int], cache: dict[int, np.ndarray]
) -> np.ndarray:
    frames = cache.get(id(instance))
    if frames is None:
        frames = _decode(instance).reshape((instance.n_frames, *frame_shape))
        if instance.n_frames > 1:
            cache[id(instance)] = frames
    return frames[index]


def _decode(instance: Instance) -> np.ndarray:
    syntax = UID(instance.transfer_syntax_uid) if instance.transfer_syntax_uid else None
    if syntax is not None:
        try:
            decoder = get_decoder(syntax)
        except NotImplementedError:
            raise LoadError(
                Reason.UNSUPPORTED_TRANSFER_SYNTAX, f"no decoder for transfer syntax {syntax}",
                transfer_syntax_uid=str(syntax),
            ) from None
        if not decoder.is_available:
            raise LoadError(
                Reason.UNSUPPORTED_TRANSFER_SYNTAX,
                f"{syntax.name} needs a pixel-data plugin that is not installed",
                transfer_syntax_uid=str(syntax),
            )
    source = instance.source
    try:
        ds = dcmread(source if isinstance(source, Path) else io.BytesIO(source), force=True)
        return np.asarray(ds.pixel_array)
    except Exception as exc:  # decoders raise anything from ValueError to RuntimeError on bad streams
        name = syntax.name if syntax is not None else "pixel data"
        raise LoadError(Reason.CORRUPT_PIXEL_DATA, f"cannot decode {name}: {type(exc).__name__}") from None


def _as_int16_hu(stored: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray | None:
    """An int16 view or copy of ``stored`` when integer HU are exact and fit int16; else None."""
    if stored.dtype.kind not in "iu" or stored.dtype.itemsize > 2:
        return None
    if np.any(slopes != 1) or np.any(intercepts != np.round(intercepts)):
        return None
    low, high = int(stored.min()), int(stored.max())
    if low + intercepts.min() < -32768 or high + intercepts.max() > 32767 or high > 32767:
        return None
    if stored.dtype == np.uint16:
        return stored.view(np.int16)  # values <= 32767 read the same as int16
    return stored.astype(np.int16, copy=False)


def _padding_range(instance: Instance, dtype: np.dtype) -> tuple[int, int] | None:
    """Stored-value range of Pixel Padding Value .. Pixel Padding Range Limit, in ``dtype``'s terms."""
    ds = instance.dataset
    value = header.number(ds, "PixelPaddingValue")
    if value is None:
        return None
    limit = header.number(ds, "PixelPaddingRangeLimit")
    ends = [_as_stored(int(v), dtype) for v in (value, value if limit is None else limit)]
    return min(ends), max(ends)


def _as_stored(value: int, dtype: np.dtype) -> int:
    # Padding is US or SS by PixelRepresentation; a value written with the other VR wraps around.
    bits = dtype.itemsize * 8
    if dtype.kind == "i" and value >= 1 << (bits - 1):
        return value - (1 << bits)
    if dtype.kind == "u" and value < 0:
        return value + (1 << bits)
    return value


def _padding_mask(values: np.ndarray, padding: tuple[int, int]) -> np.ndarray:
    low, high = padding
    return values == low if low == high else (values >= low) & (values <= high)
