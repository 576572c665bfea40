"""Reads the file test_safetensors writes (case emit_for_python) with only
json and struct, the way any independent safetensors reader does, and checks
every value: a second opinion on the byte layout the C writer produces."""
import json
import struct
import sys

EXPECTED = {
    "f32": ("F32", [3], "<3f", (0.5, -1.0, 2.0)),
    "f64": ("F64", [1, 2], "<2d", (0.1, -3.5)),
    "i32": ("I32", [2], "<2i", (-7, 7)),
    "i64": ("I64", [1], "<q", (-9000000000,)),
    "u64": ("U64", [1], "<Q", (18000000000000000000,)),
}


def main(path):
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    assert header_len % 8 == 0, f"header length {header_len} is not a multiple of 8"
    header = json.loads(blob[8:8 + header_len])
    data = blob[8 + header_len:]
    assert header.pop("__metadata__") == {"step": "12"}
    assert list(header) == list(EXPECTED), f"tensor order {list(header)}"
    end = 0
    for name, (dtype, shape, fmt, values) in EXPECTED.items():
        entry = header[name]
        assert entry["dtype"] == dtype and entry["shape"] == shape, (name, entry)
        begin, stop = entry["data_offsets"]
        assert begin == end and stop - begin == struct.calcsize(fmt), (name, entry)
        got = struct.unpack(fmt, data[begin:stop])
        assert got == values, (name, got, values)
        end = stop
    assert end == len(data), f"data block {len(data)} bytes, tensors cover {end}"
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1])
