import pytest

from crawler.scope import same_site, site_of
from tests.helpers import HOST_A, HOST_B


@pytest.mark.parametrize(
    ("url", "site"),
    [
        ("http://a.b.example.co.uk/x", "example.co.uk"),
        ("https://www.example.org:8443/", "example.org"),
        ("http://user.github.io/", "user.github.io"),  # a private suffix: each user a site
        (f"http://{HOST_A}:8080/", HOST_A),
        ("http://[::1]/", "::1"),
        ("http://intranet/", "intranet"),
    ],
)
def test_site_of(url: str, site: str) -> None:
    assert site_of(url) == site


def test_same_site() -> None:
    assert same_site("http://img.example.org/a", "https://www.example.org/")
    assert not same_site("http://example.net/", "https://www.example.org/")
    assert not same_site("http://other.github.io/", "http://user.github.io/")
    assert not same_site(f"http://{HOST_B}/", f"http://{HOST_A}/")
    assert not same_site("not a url", f"http://{HOST_A}/")
