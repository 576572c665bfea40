"""Minimal safetensors reader/writer (struct + json + numpy, no extra packages).

File layout: 8-byte little-endian header length N, N bytes of JSON
  {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
   "__metadata__": {"key": "value"}}
then the data block; offsets are relative to the start of the data block.
The header is padded with spaces to a multiple of 8 so the data stays aligned.

    write(path, {"w": tensor, ...}, metadata={"k": "v"})
    tensors, metadata = read(path)      # dict name -> torch.Tensor, dict
"""
import json
import struct

import numpy as np
import torch

# safetensors dtype name -> little-endian numpy dtype
_NP = {"F32": "<f4", "F64": "<f8", "I32": "<i4", "I64": "<i8", "U64": "<u8"}
_TORCH = {torch.float32: "F32", torch.float64: "F64",
          torch.int32: "I32", torch.int64: "I64"}


class SafetensorsError(Exception):
    pass


def write(path, tensors, metadata=None):
    """Write a dict name -> torch.Tensor (F32/F64/I32/I64)."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in _TORCH:
            raise SafetensorsError(f"{name}: unsupported dtype {t.dtype}")
        dt = _TORCH[t.dtype]
        data = t.numpy().astype(_NP[dt], copy=False).tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read(path):
    """Return (dict name -> torch.Tensor, metadata dict). U64 becomes int64."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise SafetensorsError(f"{path}: file too short")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise SafetensorsError(f"{path}: header length {n} exceeds file size")
    try:
        header = json.loads(raw[8:8 + n].decode())
    except (UnicodeDecodeError, ValueError) as e:
        raise SafetensorsError(f"{path}: bad header JSON: {e}")
    data = raw[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        dt, shape = info.get("dtype"), info.get("shape")
        if dt not in _NP:
            raise SafetensorsError(f"{path}: {name}: unsupported dtype {dt}")
        b, e = info["data_offsets"]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= b <= e <= len(data)) or e - b != count * np.dtype(_NP[dt]).itemsize:
            raise SafetensorsError(f"{path}: {name}: bad data_offsets {[b, e]} for {dt}{shape}")
        arr = np.frombuffer(data[b:e], dtype=_NP[dt]).reshape(shape)
        if dt == "U64":
            arr = arr.astype(np.int64)
        out[name] = torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))
    return out, meta


def dtype_name(t):
    return _TORCH.get(t.dtype, str(t.dtype))
