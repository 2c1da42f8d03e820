"""A hit that cannot be queued is never lost quietly: the crawl stops and says so."""

from __future__ import annotations

import contextlib
from pathlib import Path

import redis

from hotline.imagegen import encode, textured_image
from hotline.loopback import Exchange, Route, html_page, serve
from hotline.redisserver import EmbeddedRedis
from matchers.digest import digest_bytes
from matchers.lists import HashList, ListEntry
from store.connection import redis_from_url
from store.keys import Keys
from store.lists import ListStore
from tests.helpers import HOST_A, hotline_env, run_cli


def test_redis_dying_mid_crawl_fails_the_crawl(tmp_path: Path) -> None:
    body = encode(textured_image(91), "JPEG", quality=90)
    with EmbeddedRedis(tmp_path / "redis") as server:
        client = redis_from_url(server.url)
        ListStore(client, Keys()).save(
            HashList(name="k", entries=[ListEntry("sha256", digest_bytes(body).sha256, "e")])
        )
        client.close()

        def image_after_redis_dies(exchange: Exchange) -> None:
            doomed = redis_from_url(server.url)
            # The server closes the connection as it exits.
            with contextlib.suppress(redis.ConnectionError):
                doomed.shutdown(nosave=True)
            exchange.start(200, {"Content-Type": "image/jpeg"})
            exchange.write(body)

        pages: dict[str, Route] = {
            "/": html_page("<img src='/k.jpg'>"),
            "/k.jpg": image_after_redis_dies,
        }
        env = hotline_env(HOTLINE_REDIS_URL=server.url, HOTLINE_DATA_DIR=str(tmp_path / "data"))
        with serve(pages, host=HOST_A) as site:
            crawl = run_cli(["crawl", site.url("/"), "--allow-private-networks", "--json"], env)
    assert crawl.returncode != 0
    last = crawl.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert "did not finish: queue_failed" in last, crawl.stderr
    assert "hit not queued" in crawl.stderr or "stopping the crawl" in crawl.stderr
