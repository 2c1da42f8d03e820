"""Provider directory benchmark: loading a 300 000-entry directory, and looking providers up.

Run from anywhere (the repo root is put on ``sys.path``)::

    .venv/bin/python bench/directory.py [--n 300000] [--queries 10000] [--reference-n 30000]

Prints one JSON object on stdout; progress goes to stderr.

A directory of N made-up providers (``Provider 123``, ``provider-123.example``, networks from
10.0.0.0/8 and 2001:db8::/32, AS numbers from the private ranges of RFC 6996; a few webhook,
outbox and form channels, languages, CDN flags and upstreams, so every validator runs) is
written as YAML and as CSV in a temporary directory, deleted afterwards. Every 256th provider
also holds the /20 around its own network and every 4096th the /16, so lookups have seven IPv4
prefix lengths to try (nine IPv6 ones).

Each load runs in a fresh process (spawned, so each measures its own memory):
``ProviderDirectory.load`` of the CSV file, of the YAML file (libyaml's parser when PyYAML has
it, the default), and, as the reference, of a YAML file of ``--reference-n`` entries read by
PyYAML's own parser (pure Python: what runs without libyaml, and the parser the directory
always used before). For each: seconds, entries per second, peak RSS above what the process held
before the call (``VmHWM``, reset to the resident size before the call) and the RSS the loaded
directory keeps. ``ratios.yaml_reference_over_yaml`` compares seconds per entry.

Lookups, in the process that loaded the YAML file: Q random queries each of ``match_ip`` (half
IPv4, half IPv6; half inside a provider's network, half anywhere in 10.0.0.0/8 or
2001:db8::/32), ``match_domain`` (the provider's domain or a name under it, or an unknown
name) and ``match_asn`` (listed or not), timed one by one: p50, p99, max in microseconds, and
the share that found a provider. ``match_ip_previous`` times the previous ``match_ip`` (one
``ip_network`` object per prefix length tried, looked up in per-length tables of network
objects) over the same addresses, and checks that it finds the same providers.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import multiprocessing
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_N = 300_000
DEFAULT_QUERIES = 10_000
DEFAULT_REFERENCE_N = 30_000
#: Each provider's own IPv4 network lies in a block of this many addresses of 10.0.0.0/8.
IPV4_BLOCK = 16
IPV4_BASE = int(ipaddress.IPv4Address("10.0.0.0"))
IPV4_SPACE = 2**24
#: ... and its IPv6 network in a /56 of 2001:db8::/32.
IPV6_BASE = int(ipaddress.IPv6Address("2001:db8::"))
IPV6_BLOCK_SHIFT = 128 - 56
IPV6_SPACE_BITS = 128 - 32
PRIVATE_ASN_16 = 64512  # RFC 6996: 64512-65534
PRIVATE_ASN_16_COUNT = 1023
PRIVATE_ASN_32 = 4_200_000_000  # RFC 6996: 4200000000-4294967294
MAX_N = IPV4_SPACE // IPV4_BLOCK
CSV_COLUMNS = (
    "name",
    "cidrs",
    "asns",
    "domains",
    "abuse",
    "channel",
    "webhook_url",
    "form_url",
    "language",
    "cdn",
    "upstream",
)
START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - START:7.1f}s] {message}", file=sys.stderr, flush=True)


# --- the made-up directory -------------------------------------------------------------------


def asn_of(i: int) -> int:
    return PRIVATE_ASN_16 + i if i < PRIVATE_ASN_16_COUNT else PRIVATE_ASN_32 + i


def networks_of(i: int) -> list[str]:
    """Provider ``i``'s networks: one IPv4 and one IPv6 of its own, sometimes a covering one."""
    v4_length = 28 + (i * 7919) % 5  # /28 to /32, inside its block of 16
    v6_length = 56 + (i * 104_729) % 9  # /56 to /64
    v4 = ipaddress.IPv4Network((IPV4_BASE + i * IPV4_BLOCK, v4_length))
    v6 = ipaddress.IPv6Network((IPV6_BASE + (i << IPV6_BLOCK_SHIFT), v6_length))
    out = [str(v4), str(v6)]
    if i % 256 == 0:  # one /20 (256 blocks of 16) and one /16 (4096 blocks) per owner
        out.append(str(v4.supernet(new_prefix=20)))
    if i % 4096 == 0:
        out.append(str(v4.supernet(new_prefix=16)))
    return out


def domains_of(i: int) -> list[str]:
    return [f"provider-{i}.example"] + ([f"cdn-{i}.example.net"] if i % 3 == 0 else [])


def provider_fields(i: int) -> dict[str, Any]:
    """Provider ``i`` as a YAML mapping would hold it (lists as lists)."""
    fields: dict[str, Any] = {
        "name": f"Provider {i}",
        "cidrs": networks_of(i),
        "asns": [f"AS{asn_of(i)}"] if i % 2 else [asn_of(i)],
        "domains": domains_of(i),
        "abuse": f"abuse@provider-{i}.example",
    }
    kind = i % 100
    if kind == 1:
        fields["channel"] = "webhook"
        fields["webhook_url"] = f"https://abuse.provider-{i}.example/api/notices"
    elif kind == 2:
        fields["channel"] = "outbox"
    elif kind == 3:
        fields["channel"] = "form"
        fields["form_url"] = f"https://abuse.provider-{i}.example/report"
    if i % 5 == 0:
        fields["language"] = "de"
    if i % 97 == 0:
        fields["cdn"] = True
    if i % 10 == 0:
        fields["upstream"] = f"abuse@transit-{i % 50}.example"
    return fields


def yaml_lines(n: int) -> Iterator[str]:
    """The directory as YAML, in the styles people write: flow lists, block lists, comments."""
    yield "# Made-up providers for the directory benchmark.\nproviders:\n"
    for i in range(n):
        fields = provider_fields(i)
        lines = [f"  - name: {fields['name']}\n", f"    cidrs: [{', '.join(fields['cidrs'])}]\n"]
        lines.append(f"    asns: [{', '.join(str(a) for a in fields['asns'])}]\n")
        lines.append("    domains:\n" + "".join(f"      - {d}\n" for d in fields["domains"]))
        for key in ("abuse", "channel", "webhook_url", "form_url", "language", "upstream"):
            if key in fields:
                lines.append(f"    {key}: {fields[key]}\n")
        if fields.get("cdn"):
            lines.append("    cdn: true  # forwards to the origin\n")
        yield "".join(lines)


def csv_lines(n: int) -> Iterator[str]:
    yield ",".join(CSV_COLUMNS) + "\n"
    for i in range(n):
        fields = provider_fields(i)
        cells = []
        for column in CSV_COLUMNS:
            value = fields.get(column, "")
            if isinstance(value, list):
                value = " ".join(str(v) for v in value)
            elif value is True:
                value = "yes"
            cells.append(str(value))
        yield ",".join(cells) + "\n"


def write(path: Path, lines: Iterator[str]) -> int:
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(lines)
    return path.stat().st_size


# --- measuring, in a fresh process per load --------------------------------------------------


def _status_kib(field: str) -> int:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Reset this process's peak RSS (``VmHWM``) to its current RSS (Linux 4.0 and later).
    ``ru_maxrss`` would not do: it carries the parent's peak over fork and exec."""
    Path("/proc/self/clear_refs").write_text("5")


def _load(mode: str, path: str, n: int, queries: int, seed: int, out: Any) -> None:
    import takedown.directory as directory_module  # noqa: PLC0415

    if mode == "yaml_reference":
        directory_module._LIBYAML_PARSER = None  # PyYAML's own parser, as without libyaml
    before = _status_kib("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    directory = directory_module.ProviderDirectory.load(path)
    seconds = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    result: dict[str, Any] = {
        "entries": len(directory),
        "seconds": round(seconds, 2),
        "entries_per_s": round(len(directory) / seconds),
        "peak_rss_mib": round((peak - before) / 1024),
        "retained_rss_mib": round((_status_kib("VmRSS") - before) / 1024),
    }
    if queries:
        result["lookups"] = lookups(directory, n, queries, random.Random(seed))
    out.send(result)


def measure(mode: str, path: Path, n: int, queries: int, seed: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_load, args=(mode, str(path), n, queries, seed, send))
    child.start()
    result: dict[str, Any] = receive.recv()
    child.join()
    return result


def lookups(directory: Any, n: int, count: int, rng: random.Random) -> dict[str, Any]:
    half = count // 2
    addresses: list[str] = []
    for k in range(count):
        i = rng.randrange(n)
        if k % 2:  # IPv6
            inside = IPV6_BASE + (i << IPV6_BLOCK_SHIFT) + rng.getrandbits(64)
            anywhere = IPV6_BASE + rng.getrandbits(IPV6_SPACE_BITS)
            value = inside if k < half else anywhere
            addresses.append(str(ipaddress.IPv6Address(value)))
        else:
            inside = IPV4_BASE + i * IPV4_BLOCK + rng.randrange(IPV4_BLOCK)
            anywhere = IPV4_BASE + rng.randrange(IPV4_SPACE)
            addresses.append(str(ipaddress.IPv4Address(inside if k < half else anywhere)))
    hosts = []
    for k in range(count):
        i = rng.randrange(n)
        if k < half:
            domain = rng.choice(domains_of(i))
            hosts.append(rng.choice([domain, f"www.{domain}", f"a.b.{domain}"]))
        else:
            hosts.append(f"www.unknown-{i}.example.org")
    asns = [asn_of(rng.randrange(n)) if k < half else 70_000 + k for k in range(count)]
    report = {
        "match_ip": timed(directory.match_ip, addresses),
        "match_domain": timed(directory.match_domain, hosts),
        "match_asn": timed(directory.match_asn, asns),
    }
    previous = PreviousNetworkIndex(directory.providers)
    report["match_ip_previous"] = timed(previous.match_ip, addresses)
    report["match_ip_previous"]["same_providers"] = all(
        _provider(directory.match_ip(a)) is _provider(previous.match_ip(a)) for a in addresses
    )
    report["ratios"] = {
        "match_ip_previous_over_match_ip_p50": round(
            report["match_ip_previous"]["p50_us"] / report["match_ip"]["p50_us"], 1
        )
    }
    return report


def _provider(found: Any) -> Any:
    return None if found is None else found[0]


def timed(lookup: Callable[[Any], Any], queries: list[Any]) -> dict[str, Any]:
    durations, found = [], 0
    for query in queries:
        started = time.perf_counter_ns()
        result = lookup(query)
        durations.append(time.perf_counter_ns() - started)
        found += result is not None
    durations.sort()
    return {
        "queries": len(queries),
        "p50_us": round(statistics.median(durations) / 1000, 2),
        "p99_us": round(durations[int(len(durations) * 0.99)] / 1000, 2),
        "max_us": round(durations[-1] / 1000, 2),
        "found": round(found / len(queries), 3),
    }


class PreviousNetworkIndex:
    """The previous ``match_ip``: per prefix length a table of network objects, and for each
    length tried an ``ip_network`` built from the address (the reference of the ratio)."""

    def __init__(self, providers: Any) -> None:
        self.tables: dict[tuple[int, int], dict[Any, Any]] = {}
        for provider in providers:
            for network in provider.cidrs:
                key = (network.version, network.prefixlen)
                self.tables.setdefault(key, {})[network] = provider
        self.lengths = {
            version: sorted((n for v, n in self.tables if v == version), reverse=True)
            for version in (4, 6)
        }

    def match_ip(self, ip: str) -> Any:
        address = ipaddress.ip_address(ip)
        for length in self.lengths[address.version]:
            network = ipaddress.ip_network((address, length), strict=False)
            provider = self.tables[(address.version, length)].get(network)
            if provider is not None:
                return provider, network
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="providers in the directory")
    parser.add_argument("--queries", type=int, default=DEFAULT_QUERIES, help="per lookup kind")
    parser.add_argument(
        "--reference-n",
        type=int,
        default=DEFAULT_REFERENCE_N,
        help="providers in the YAML file read by PyYAML's own parser (0: skip)",
    )
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args()
    if not 0 < args.n <= MAX_N or args.queries < 0 or args.reference_n < 0:
        parser.error(f"--n must be 1 to {MAX_N}; --queries and --reference-n at least 0")
    reference_n = min(args.reference_n, args.n)
    import yaml  # noqa: PLC0415

    report: dict[str, Any] = {
        "n": args.n,
        "queries": args.queries,
        "reference_n": reference_n,
        "python": platform.python_version(),
        "pyyaml": yaml.__version__,
        "libyaml": bool(yaml.__with_libyaml__),
        "machine": platform.machine(),
    }
    with tempfile.TemporaryDirectory(prefix="directory-bench-") as tmp:
        files = {
            "csv": Path(tmp) / "providers.csv",
            "yaml": Path(tmp) / "providers.yaml",
            "yaml_reference": Path(tmp) / "reference.yaml",
        }
        log(f"writing {args.n} providers as CSV and YAML")
        sizes = {
            "csv": write(files["csv"], csv_lines(args.n)),
            "yaml": write(files["yaml"], yaml_lines(args.n)),
        }
        if reference_n:
            sizes["yaml_reference"] = write(files["yaml_reference"], yaml_lines(reference_n))
        report["file_mib"] = {mode: round(size / 2**20, 1) for mode, size in sizes.items()}
        report["load"] = {}
        for mode, path in files.items():
            if mode not in sizes:
                continue
            log(f"loading {mode}")
            queries = args.queries if mode == "yaml" else 0
            report["load"][mode] = measure(mode, path, args.n, queries, args.seed)
    loads = report["load"]
    report["lookups"] = loads["yaml"].pop("lookups", None)
    if "yaml_reference" in loads:
        per_entry = {mode: loads[mode]["seconds"] / loads[mode]["entries"] for mode in loads}
        report["ratios"] = {
            "yaml_reference_over_yaml": round(per_entry["yaml_reference"] / per_entry["yaml"], 1)
        }
    report["elapsed_s"] = round(time.perf_counter() - START, 1)
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
