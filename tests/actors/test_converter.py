"""actors/converter.py: the strict converter builds inbound documents or raises InvalidDocument
naming the problem."""

from __future__ import annotations

import attrs
import orjson
import pytest

from actors.converter import InvalidDocument, structure_strictly


@attrs.frozen
class Counted:
    count: int


@pytest.mark.parametrize(
    ("literal", "shown"),
    [("9223372036854775808", "9223372036854775808"), ("1" + "0" * 30, "1e+30"),
     ("-1" + "0" * 30, "-1e+30")],
)
def test_an_integer_beyond_64_bits_is_out_of_range(literal: str, shown: str) -> None:
    with pytest.raises(InvalidDocument) as raised:
        structure_strictly(orjson.loads(f'{{"count": {literal}}}'), Counted, "the document")
    assert str(raised.value) == (
        "count is out of range: it must be an integer from -9223372036854775808 to"
        f" 9223372036854775807, got {shown}"
    )
