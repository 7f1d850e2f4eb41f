"""Web-vital ratings at p75 against the web-vitals thresholds, and the per-page pivot."""

from __future__ import annotations

import pytest

from storage.dashboard import vitals


@pytest.mark.parametrize(
    ("vital", "value", "words", "css"),
    [
        ("LCP", 2500, "Good", "good"),
        ("LCP", 2501, "Needs improvement", "needs-improvement"),
        ("LCP", 4000, "Needs improvement", "needs-improvement"),
        ("LCP", 4001, "Poor", "poor"),
        ("INP", 200, "Good", "good"),
        ("INP", 201, "Needs improvement", "needs-improvement"),
        ("INP", 500, "Needs improvement", "needs-improvement"),
        ("INP", 501, "Poor", "poor"),
        ("CLS", 0.1, "Good", "good"),
        ("CLS", 0.11, "Needs improvement", "needs-improvement"),
        ("CLS", 0.25, "Needs improvement", "needs-improvement"),
        ("CLS", 0.26, "Poor", "poor"),
        ("FCP", 1800, "Good", "good"),
        ("FCP", 1801, "Needs improvement", "needs-improvement"),
        ("FCP", 3001, "Poor", "poor"),
        ("TTFB", 800, "Good", "good"),
        ("TTFB", 801, "Needs improvement", "needs-improvement"),
        ("TTFB", 1800, "Needs improvement", "needs-improvement"),
        ("TTFB", 1801, "Poor", "poor"),
        ("lcp", 100, "Good", "good"),
    ],
)
def test_a_p75_value_rates_by_the_web_vitals_thresholds(
    vital: str, value: float, words: str, css: str
) -> None:
    rating = vitals.rate(vital, value)
    assert rating is not None
    assert (rating.words, rating.key) == (words, css)


def test_an_unknown_vital_or_a_missing_value_has_no_rating() -> None:
    assert vitals.rate("FID", 10) is None
    assert vitals.rate("LCP", None) is None


@pytest.mark.parametrize(
    ("vital", "value", "text"),
    [("LCP", 2300.4, "2,300 ms"), ("CLS", 0.123, "0.12"), ("TTFB", None, "—")],
)
def test_values_read_with_their_unit(vital: str, value: float | None, text: str) -> None:
    assert vitals.shown(vital, value) == text


ROWS = [
    {"page": "/", "vital": "LCP", "p75": 2000.0, "samples": 30},
    {"page": "/a", "vital": "LCP", "p75": 5000.0, "samples": 10},
    {"page": "/a", "vital": "CLS", "p75": 0.3, "samples": 10},
    {"page": "/a", "vital": "FID", "p75": 9.0, "samples": 99},
]


def test_pages_pivot_vitals_per_page_busiest_first_and_skip_unknown_vitals() -> None:
    found = vitals.pages(ROWS)
    assert [(p.page, p.samples, p.p75) for p in found] == [
        ("/", 30, {"LCP": 2000.0}),
        ("/a", 20, {"LCP": 5000.0, "CLS": 0.3}),
    ]


def test_headlines_weight_the_pages_p75_by_samples_and_say_when_approximate() -> None:
    by_vital = {h.vital: h for h in vitals.headlines(ROWS)}
    assert by_vital["LCP"].value == (2000 * 30 + 5000 * 10) / 40
    assert (by_vital["LCP"].samples, by_vital["LCP"].exact) == (40, False)
    assert (by_vital["CLS"].value, by_vital["CLS"].exact) == (0.3, True)
    assert (by_vital["INP"].value, by_vital["INP"].samples) == (None, 0)
    assert [h.vital for h in vitals.headlines(ROWS)] == ["LCP", "INP", "CLS", "FCP", "TTFB"]
