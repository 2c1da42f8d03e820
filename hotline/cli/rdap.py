"""``hotline rdap``: the IANA RDAP bootstrap registry the router uses to find the right registry.

``hotline rdap update`` refreshes the four bootstrap files (``ipv4.json``, ``ipv6.json``,
``asn.json``, ``dns.json``) into ``<data dir>/rdap-bootstrap``; ``hotline rdap status`` shows
which files are in use and when IANA published them.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Column

from hotline.cli.app import JsonOption, err, load_config, out
from hotline.cli.render import table
from hotline.errors import UsageError
from takedown.bootstrap import (
    BOOTSTRAP_DIR_NAME,
    IANA_BOOTSTRAP_URL,
    Bootstrap,
    BootstrapError,
    registries_summary,
    update_bootstrap,
)
from takedown.errors import RdapUrlError
from takedown.http import DEFAULT_HTTP_TIMEOUT, outbound_policy

__all__ = ["rdap_app"]

rdap_app = typer.Typer(
    help="The IANA RDAP bootstrap registry: which registry to ask about an IP or domain.",
    no_args_is_help=True,
)


@rdap_app.command("update")
def rdap_update(
    url: Annotated[
        str,
        typer.Option(
            "--url",
            metavar="BASE",
            help="Where to fetch ipv4.json, ipv6.json, asn.json and dns.json from "
            "(IANA, or a mirror of it).",
        ),
    ] = IANA_BOOTSTRAP_URL,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds allowed per request.")
    ] = DEFAULT_HTTP_TIMEOUT,
    as_json: JsonOption = False,
) -> None:
    """Fetch the current RDAP bootstrap files into the data directory.

    All four files are downloaded and checked completely before any is replaced; if one is
    missing or malformed, the files in use stay as they were and the command exits 1.
    """
    config = load_config()
    target = config.data_dir / BOOTSTRAP_DIR_NAME
    try:
        updated = update_bootstrap(
            target,
            url,
            timeout=timeout,
            policy=outbound_policy(config.takedown_settings().allowed_networks),
        )
    except RdapUrlError as exc:
        raise UsageError(f"--url: {exc}") from None
    except BootstrapError as exc:
        err.print(f"error: bootstrap files not updated: {exc}", markup=False)
        raise typer.Exit(1) from None
    if as_json:
        out.print_json(
            data={
                "directory": str(target),
                "files": [
                    {
                        "name": f.name,
                        "publication": f.publication,
                        "entries": f.entries,
                        "previous": f.previous,
                    }
                    for f in updated
                ],
            }
        )
        return
    for f in updated:
        before = f" (was {f.previous})" if f.previous and f.previous != f.publication else ""
        out.print(f"{f.name}: published {f.publication}{before}, {f.entries} entries", markup=False)
    out.print(f"written to {target}", markup=False)


@rdap_app.command("status")
def rdap_status(as_json: JsonOption = False) -> None:
    """Show the bootstrap files in use (updated copy or the one shipped) and their dates."""
    config = load_config()
    try:
        bootstrap = Bootstrap.load(config.data_dir / BOOTSTRAP_DIR_NAME)
    except BootstrapError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1) from None
    rows = registries_summary(bootstrap.registries.values())
    if as_json:
        out.print_json(data=rows)
        return
    columns = [
        Column("kind", no_wrap=True),
        Column("published", no_wrap=True),
        Column("entries", justify="right"),
        Column("file", overflow="fold"),
    ]
    body = [(r["kind"], r["publication"], str(r["entries"]), r["source"]) for r in rows]
    out.print(table("RDAP bootstrap", columns, body))
