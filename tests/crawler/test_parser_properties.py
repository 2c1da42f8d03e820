"""Property tests of the crawler's text parsers: whatever the input, a result or the documented
one-line error, never another exception, within a time bound (hypothesis' deadline)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from crawler.discovery import clean_url, extract_css, parse_srcset
from crawler.scope import host_name_problem
from crawler.seeds import normalize_seed, parse_seed_lines
from crawler.traps import path_template, strip_session, trap_shape
from store.addresses import is_public_address
from store.clock import parse_duration
from tests.helpers import PARSER_BOUND

BOUND = PARSER_BOUND

TEXT = st.text(max_size=300)
URLISH = st.builds(
    lambda scheme, middle, tail: scheme + middle + tail,
    st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "", "//", "http://["]),
    st.text(max_size=80),
    st.text(alphabet="/?#&=;.%[]:@", max_size=20),
)


@BOUND
@given(URLISH | TEXT)
def test_a_seed_line_is_a_url_or_a_problem(text: str) -> None:
    try:
        url = normalize_seed(text)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert url.startswith(("http://", "https://"))
    seeds, problems = parse_seed_lines([text], source="seeds.txt")
    assert len(seeds) + len(problems) <= 1
    assert all("\n" not in str(problem) for problem in problems)


@BOUND
@given(URLISH | TEXT)
def test_page_references_and_urls_never_raise(text: str) -> None:
    assert all(isinstance(url, str) for url in parse_srcset(text))
    images, imports = extract_css(text, "http://site.example/a.css")
    assert all(ref.url for ref in images) and all(imports)
    cleaned = clean_url(text, "http://site.example/page")
    assert cleaned is None or cleaned.startswith(("http://", "https://", "data:"))
    template, family = path_template("http://site.example/" + text)
    assert template.startswith(family)
    assert strip_session("http://site.example/" + text).startswith("http://site.example")
    assert trap_shape("http://site.example/" + text) in (None, "repeated_segments")
    assert host_name_problem(text) is None or isinstance(host_name_problem(text), str)
    assert is_public_address(text) in (True, False)


@BOUND
@given(TEXT | st.floats(allow_nan=True, allow_infinity=True) | st.integers())
@example(float("nan"))  # TOML has nan and inf: both were durations
@example(float("inf"))
@example(10**400)  # past float range: OverflowError
def test_a_duration_is_seconds_or_a_value_error(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        assert "\n" not in str(exc)
    else:
        assert 0 <= seconds < float("inf")
