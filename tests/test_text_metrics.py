import pytest

from lpsr.metrics.text import char_accuracy, edit_distance, exact_match, normalise_plate


@pytest.mark.parametrize("raw, expected", [
    ("皖A·12345", "皖A12345"),
    ("皖A 123 45", "皖A12345"),
    ("京N•A8B36", "京NA8B36"),
    ("ｓｕ·Ａ１２", "SUA12"),          # full-width forms and lower case
    ("皖AO1I23", "皖A01123"),          # O and I are not plate letters: read as 0 and 1
    ("", ""),
])
def test_normalise_plate(raw, expected):
    assert normalise_plate(raw) == expected


def test_lookalikes_kept_when_alphabet_allows_them():
    assert normalise_plate("AO-1I", forbidden="") == "AO1I"
    assert normalise_plate("AO-1I", forbidden="O") == "A01I"


@pytest.mark.parametrize("a, b, d", [
    ("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3),
    ("皖A12345", "皖A12345", 0), ("皖A12345", "皖A1234", 1), ("皖A12345", "A12345", 1),
    ("皖A12345", "皖B12354", 3), ("flaw", "lawn", 2),
])
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d
    assert edit_distance(b, a) == d


def test_char_accuracy_and_exact_match():
    assert char_accuracy("皖A·12345", "皖A12345") == 1.0
    assert exact_match("皖A·12345", "皖A12345")
    assert char_accuracy("皖A1234", "皖A12345") == pytest.approx(1 - 1 / 7)
    assert not exact_match("皖A1234", "皖A12345")
    assert char_accuracy("", "皖A12345") == 0.0
    assert char_accuracy("", "") == 1.0
    assert char_accuracy("XXXXXXXXXXXXXX", "皖A12345") == 0.0   # never negative
    assert exact_match("皖AO12I5", "皖A01215")
