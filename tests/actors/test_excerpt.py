"""actors/excerpt.py: error messages quote at most 200 characters of a client's value."""

from __future__ import annotations

import pytest

from actors.excerpt import EXCERPT_LENGTH, excerpt


@pytest.mark.parametrize("text", ["", "w", "é🙂", "x" * EXCERPT_LENGTH])
def test_a_value_of_at_most_200_characters_is_quoted_whole(text: str) -> None:
    assert excerpt(text) == text


@pytest.mark.parametrize("length", [EXCERPT_LENGTH + 1, 900_000])
def test_a_longer_value_is_cut_and_says_its_length(length: int) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(length))
    assert excerpt(text) == f"{text[:EXCERPT_LENGTH]}… ({length} characters)"
