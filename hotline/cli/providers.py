"""``hotline providers lookup``: who would receive a notice for a URL or IP address, and how
the directory, the CDN list and RDAP decided it."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Annotated
from urllib.parse import urlsplit

import typer

from hotline.cli.app import JsonOption, load_config, open_session, out
from hotline.cli.render import details_table
from hotline.errors import UsageError
from hotline.takedownrun import open_router
from takedown.directory import normalize_domain

__all__ = ["providers_app"]

providers_app = typer.Typer(
    help="Who receives notices: look up the provider of a URL or IP.", no_args_is_help=True
)


@providers_app.command("lookup")
def providers_lookup(
    target: Annotated[str, typer.Argument(help="An image URL, a host name or an IP address.")],
    as_json: JsonOption = False,
) -> None:
    """Show who would receive a notice for TARGET, and how that was decided."""
    url, ip = _lookup_target(target)
    config = load_config()
    with (
        open_session(config) as session,
        open_router(session, config.takedown_settings(), data_dir=config.data_dir) as router,
    ):
        route = router.route(url, ip)
    if as_json:
        out.print_json(data=route.to_dict())
        return
    recipient = route.recipient
    rows = [
        ("host", route.host),
        ("IP", route.ip or "-"),
        ("ASN", _asn(route.asn, route.as_name)),
        ("network", route.network or "-"),
        ("provider", route.provider or "-"),
        ("decided by", route.method),
        ("CDN", route.cdn or "-"),
        (
            "recipient",
            "none: the notice would wait as unroutable"
            if recipient is None
            else f"{recipient.provider} <{recipient.address or recipient.webhook_url or '-'}>",
        ),
        ("channel", "-" if recipient is None else recipient.channel),
        ("language", "-" if recipient is None else recipient.language),
        ("registrar", _with_address(route.registrar, route.registrar_abuse)),
        ("upstream", route.upstream_abuse or "-"),
    ]
    if recipient is not None and recipient.fallbacks:
        rows.append(("fallbacks", ", ".join(recipient.fallbacks)))
    if route.suggested is not None:
        rows.append(
            (
                "suggested",
                f"{route.suggested.address} (RFC 2142; sent only once an analyst approves it)",
            )
        )
    out.print(details_table(rows))
    for step in route.trail:
        out.print(f"  - {step}", markup=False)


def _with_address(name: str | None, address: str | None) -> str:
    if not name and not address:
        return "-"
    return f"{name or '?'} <{address or 'no abuse address'}>"


def _asn(asn: int | None, name: str | None) -> str:
    if not asn:
        return "-"
    return f"AS{asn} ({name})" if name else f"AS{asn}"


def http_host(text: str, expected: str) -> str:
    """The host of ``text``, an http(s) URL, when it is an IP address or a valid host name;
    otherwise a :class:`UsageError` that starts with ``expected``."""
    if not text.lower().startswith(("http://", "https://")):
        raise UsageError(expected)
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        raise UsageError(expected) from None
    if not host:
        raise UsageError(f"{expected}: it has no host")
    try:
        ip_address(host)
    except ValueError:
        try:
            normalize_domain(host)
        except ValueError:
            raise UsageError(f"{expected}: {host!r} is not a host name or an IP address") from None
    return host


def _lookup_target(target: str) -> tuple[str, str | None]:
    text = target.strip()
    try:
        address = ip_address(text.strip("[]"))
    except ValueError:
        pass
    else:
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"http://{host}/", str(address)
    if "://" not in text:
        text = f"http://{text}/"
    http_host(text, f"{target!r}: expected an http(s) URL, a host name or an IP address")
    return text, None
