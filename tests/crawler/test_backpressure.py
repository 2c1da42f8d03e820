"""``CRAWL_MAX_HELD_RESPONSES``: a crawl holds at most that many responses at once, so images
that download faster than they hash wait as requests, not as held responses.

Observed through the hash pool, not the middleware: with at most two responses held and two
places in the pool, no body ever waits for a place (``matcher/pool/waited``), where without
the bound every one of the 120 images downloads at once and most wait. A real loopback site,
the session's redis-server and ``hotline crawl`` in a subprocess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.imagegen import encode, textured_image
from hotline.loopback import Route, html_page, image_response, serve
from tests.helpers import HOST_A, hotline_env, run_cli

IMAGES = 120
HELD = 2


@pytest.fixture(scope="module")
def seed() -> Iterator[str]:
    with serve(host=HOST_A) as server:
        routes: dict[str, Route] = {
            f"/img/{n}.jpg": image_response(
                encode(textured_image(9100 + n, 320, 240), "JPEG"), "image/jpeg"
            )
            for n in range(IMAGES)
        }
        imgs = "".join(f"<img src='/img/{n}.jpg'>" for n in range(IMAGES))
        routes["/"] = html_page(imgs)
        server.mount(routes)
        yield f"{server.base_url}/"


def _crawl(seed: str, redis_server: str, tmp_path: Path, held: int) -> tuple[dict[str, int], str]:
    env = hotline_env(
        HOTLINE_REDIS_URL=redis_server,
        HOTLINE_KEY_PREFIX=f"held-{held}:",
        HOTLINE_DATA_DIR=str(tmp_path / f"data-{held}"),
        HOTLINE_ALLOW_PRIVATE_NETWORKS="1",
    )
    sets = [
        "AUTOTHROTTLE_ENABLED=0",
        "CONCURRENT_REQUESTS_PER_DOMAIN=16",
        "MATCHER_POOL=thread",
        "MATCHER_WORKERS=1",
        "MATCHER_MAX_IN_FLIGHT=2",
        f"CRAWL_MAX_HELD_RESPONSES={held}",
    ]
    args = ["crawl", seed, "--json", "--verbose", *(a for s in sets for a in ("--set", s))]
    done = run_cli(args, env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), done.stderr


def _stat(output: str, name: str) -> int:
    found = re.search(rf"'{re.escape(name)}': (\d+)", output)
    return int(found.group(1)) if found else 0


def test_a_crawl_holds_no_more_responses_than_its_bound(
    seed: str, redis_server: str, tmp_path: Path
) -> None:
    summary, output = _crawl(seed, redis_server, tmp_path, HELD)
    assert summary["images"] == summary["hashed"] == IMAGES
    assert "'matcher/pool/in_flight_max':" in output  # the pool's stats are in the dump
    assert _stat(output, "matcher/pool/waited") == 0
    assert _stat(output, "crawl/held_responses/waited") > 0


def test_a_negative_bound_is_one_line_exit_2(seed: str, tmp_path: Path) -> None:
    env = hotline_env(HOTLINE_DATA_DIR=str(tmp_path / "data"))
    done = run_cli(["crawl", seed, "--set", "CRAWL_MAX_HELD_RESPONSES=-1"], env)
    assert done.returncode == 2, done.stderr
    assert "CRAWL_MAX_HELD_RESPONSES" in done.stderr.strip().splitlines()[-1]
