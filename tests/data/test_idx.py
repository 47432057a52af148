import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinycnn.data.idx import encode_idx, parse_idx, read_idx, write_idx
from tinycnn.errors import TinycnnError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from(DTYPES),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
        elements={"allow_nan": False},
    )
)
def test_round_trip(array):
    back = parse_idx(encode_idx(array))
    assert back.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, array)


def test_header_is_big_endian_mnist_style():
    data = encode_idx(np.zeros((2, 28, 28), np.uint8))
    assert data[:4] == bytes([0, 0, 0x08, 3])
    assert data[4:16] == (2).to_bytes(4, "big") + (28).to_bytes(4, "big") + (28).to_bytes(4, "big")
    assert len(data) == 16 + 2 * 28 * 28


def test_file_round_trip(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    write_idx(tmp_path / "a-idx3", a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3"), a)
    assert [p.name for p in tmp_path.iterdir()] == ["a-idx3"]  # no temporary left behind


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: b"\x01\x02" + d[2:], "bad magic"),
        (lambda d: d[:2] + b"\x77" + d[3:], "bad magic"),
        (lambda d: d[:3], "shorter than"),
        (lambda d: d[:6], "truncated IDX header"),
        (lambda d: d[:-1], "truncated"),
        (lambda d: d + b"\x00", "trailing bytes"),
    ],
)
def test_malformed_input_gives_clear_error(mutate, message):
    good = encode_idx(np.ones((3, 4), np.uint8))
    with pytest.raises(TinycnnError, match=message):
        parse_idx(mutate(good), "x-idx2")


def test_missing_file(tmp_path):
    with pytest.raises(TinycnnError, match="no such file"):
        read_idx(tmp_path / "nope")


def test_unsupported_dtype():
    with pytest.raises(ValueError, match="cannot store"):
        encode_idx(np.zeros(3, np.complex64))
