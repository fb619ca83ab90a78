"""Decoding of bytes-literal text: the cases the MSD file holds, checked against Python itself."""

from __future__ import annotations

import ast
import random

import pyarrow as pa
import pytest

from msd_tasks.stages.text import decode_byte_literal, decode_byte_literals


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("b'SOSIYAD12A8C14097F'", "SOSIYAD12A8C14097F"),
        ('b"It\'s So Good"', "It's So Good"),
        ("b'Beyonc\\xc3\\xa9'", "Beyoncé"),
        ("b''", ""),
        ("b'Say \\'hi\\' \"now\"'", "Say 'hi' \"now\""),
        ("b'back\\\\slash'", "back\\slash"),
        ("b'tab\\there'", "tab\there"),
        (repr("日本語 🎵".encode()), "日本語 🎵"),
        ("Plain Artist", "Plain Artist"),  # already text: unchanged
        ("b'unterminated", "b'unterminated"),  # not a literal: unchanged
        ("", ""),
    ],
)
def test_decodes_each_kind_of_value(stored, expected):
    assert decode_byte_literals(pa.array([stored])).to_pylist() == [expected]


def test_nulls_stay_null_and_order_is_kept():
    values = pa.array([None, "b'a'", "b'Beyonc\\xc3\\xa9'", None, "x"])
    assert decode_byte_literals(values).to_pylist() == [None, "a", "Beyoncé", None, "x"]


def test_chunked_input_is_accepted():
    values = pa.chunked_array([["b'a'"], ["b'\\xc3\\xa9'"]])
    assert decode_byte_literals(values).to_pylist() == ["a", "é"]


def test_agrees_with_python_on_random_bytes():
    rng = random.Random(7)
    texts = []
    for _ in range(500):
        chars = [
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(160, 0x3000)]))
            for _ in "x" * rng.randrange(12)
        ]
        chars += rng.sample(["'", '"', "\\", "\t", "\n"], k=rng.randrange(3))
        rng.shuffle(chars)
        texts.append("".join(chars))
    stored = [repr(text.encode("utf-8")) for text in texts]
    assert decode_byte_literals(pa.array(stored)).to_pylist() == texts
    assert [ast.literal_eval(s).decode("utf-8") for s in stored] == texts


def test_invalid_utf8_becomes_replacement_character():
    assert decode_byte_literal("b'caf\\xe9'") == "caf\ufffd"
