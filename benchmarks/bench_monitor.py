"""How far ``kagg monitor`` can be trusted as a load source, next to hey and wrk.

For each local endpoint (a fast single-process asyncio server started here, and a kagg
local endpoint deployed from a one-line notebook when the local provider exists):

1. the highest rate kagg monitor sustains with its achieved rate within 2 % of the
   requested rate (doubling, then bisecting; each step a fixed-length run of the real CLI);
2. the rate hey reaches on the same endpoint when it sends as fast as it can (closed loop);
3. p50/p99 of kagg, hey (``-q`` rate limit) and wrk (a Lua ``delay()`` pacing each
   connection) at the same loads: 200/s and kagg's highest sustained rate.

hey and wrk measure from the moment they send; kagg's headline latency is from the due
time, so its uncorrected service time is listed too for a like-for-like comparison.
Everything binds 127.0.0.1 and every load is bounded in time.

    python benchmarks/bench_monitor.py                # both endpoints, 3 s steps
    python benchmarks/bench_monitor.py --server fast --step 2 --json-out figures.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = '{"x":1}'
NOTEBOOK_HANDLER = 'def handler(x: int = 1):\n    return {"x": x}'


# -- the fast endpoint (run in its own process: ``bench_monitor.py --serve``) ---------------

def serve_fast() -> None:
    """A minimal keep-alive HTTP/1.1 server with kagg's headers, as fast as asyncio allows.

    It parses only what it must (end of headers, Content-Length) so the client, not the
    server, is what the benchmark measures.
    """
    import socket

    instance = f"bench-{os.getpid()}"
    state = {"cold": True}
    length_re = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)
    body = b'{"x":1}'

    def response() -> bytes:
        cold, state["cold"] = state["cold"], False
        timing = "init;dur=1.000, handler;dur=0.010" if cold else "handler;dur=0.010"
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nServer-Timing: %s\r\nX-Kagg-Instance: %s\r\nX-Kagg-Cold: %s\r\n\r\n"
                % (len(body), timing.encode(), instance.encode(), b"1" if cold else b"0")) + body

    class Http(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            self.transport, self.buf = transport, b""
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def data_received(self, data: bytes) -> None:
            self.buf += data
            out = []
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                match = length_re.search(self.buf, 0, end)
                total = end + 4 + (int(match.group(1)) if match else 0)
                if len(self.buf) < total:
                    break
                self.buf = self.buf[total:]
                out.append(response())
            if out:
                self.transport.write(b"".join(out))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Http, "127.0.0.1", 0, backlog=1024)
        print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until stdin closes

    asyncio.run(main())


class FastServer:
    """The fast endpoint in a child process; stopped by closing its stdin."""

    label = "fast asyncio server (1 process)"

    def __enter__(self) -> str:
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        return self.proc.stdout.readline().strip()

    def __exit__(self, *exc) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class KaggLocalEndpoint:
    """A notebook deployed with the local provider, in a registry of its own; deleted after."""

    label = "kagg local endpoint (functions-framework)"

    def __enter__(self) -> str:
        self.dir = Path(tempfile.mkdtemp(prefix="kagg-bench-"))
        nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {},
                         "outputs": [], "source": NOTEBOOK_HANDLER}],
              "metadata": {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}},
              "nbformat": 4, "nbformat_minor": 5}
        (self.dir / "echo.ipynb").write_text(json.dumps(nb))
        res = kagg("deploy", str(self.dir / "echo.ipynb"), "--name", "bench-echo", registry=self.registry)
        if res.returncode != 0:
            raise SystemExit(f"deploy failed: {res.stderr.strip()}")
        return json.loads(self.registry.read_text())["endpoints"]["bench-echo"]["url"]

    @property
    def registry(self) -> Path:
        return self.dir / "endpoints.json"

    def __exit__(self, *exc) -> None:
        kagg("delete", "bench-echo", registry=self.registry)
        shutil.rmtree(self.dir, ignore_errors=True)


# -- the three tools ------------------------------------------------------------------------

@dataclass
class Measure:
    tool: str
    requested: Optional[float]  # requests per second asked for (None: as fast as possible)
    achieved: float
    p50_ms: Optional[float]
    p99_ms: Optional[float]
    errors: int = 0
    extra: dict = field(default_factory=dict)


def kagg(*args: str, registry: Optional[Path] = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if registry:
        env["KAGG_REGISTRY"] = str(registry)
    return subprocess.run([sys.executable, "-m", "kagg", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def run_kagg_monitor(url: str, rate: float, seconds: float, concurrency: int) -> Measure:
    res = kagg("monitor", url, "--rate", f"{rate:g}/s", "--duration", f"{seconds:g}s", "--payload", PAYLOAD,
               "--concurrency", str(concurrency), "--timeout", "5s", "--json", "--no-history",
               registry=Path(tempfile.gettempdir()) / "kagg-bench-none" / "endpoints.json")
    if res.returncode not in (0, 1):
        raise SystemExit(f"kagg monitor failed: {res.stderr.strip()}")
    (r,) = json.loads(res.stdout)["endpoints"]
    return Measure("kagg monitor", rate, r["achieved_rate"], r["latency_ms"]["p50"], r["latency_ms"]["p99"],
                   r["errors"]["total"], {"service_p50_ms": r["service_ms"]["p50"],
                                          "service_p99_ms": r["service_ms"]["p99"],
                                          "send_lag_p99_ms": r["schedule_lag_ms"]["p99"]})


def sustains(m: Measure) -> bool:
    return m.requested is not None and abs(m.achieved - m.requested) <= 0.02 * m.requested


def kagg_max_rate(url: str, seconds: float, concurrency: int, start: float = 250.0,
                  ceiling: float = 64000.0) -> tuple[Measure, list[Measure]]:
    """Double the rate until kagg falls behind, then bisect (to within 10 %)."""
    tried: list[Measure] = []
    good: Optional[Measure] = None
    rate, bad = start, None
    while rate <= ceiling:
        m = run_kagg_monitor(url, rate, seconds, concurrency)
        tried.append(m)
        log(f"  kagg monitor {rate:8.0f}/s -> achieved {m.achieved:8.1f}/s {'ok' if sustains(m) else 'behind'}")
        if not sustains(m):
            bad = rate
            break
        good, rate = m, rate * 2
    if good is None:
        raise SystemExit(f"kagg monitor could not sustain even {start:g}/s here")
    while bad is not None and bad / good.requested > 1.1:
        rate = round((good.requested + bad) / 2)
        m = run_kagg_monitor(url, rate, seconds, concurrency)
        tried.append(m)
        log(f"  kagg monitor {rate:8.0f}/s -> achieved {m.achieved:8.1f}/s {'ok' if sustains(m) else 'behind'}")
        if sustains(m):
            good = m
        else:
            bad = rate
    return good, tried


_HEY_PCT = re.compile(r"^\s*(\d+)% in ([\d.]+) secs", re.MULTILINE)


def run_hey(url: str, seconds: float, concurrency: int, rate: Optional[float] = None) -> Measure:
    """hey with -c workers; with ``rate``, -q limits each worker to rate/c per second."""
    cmd = ["hey", "-z", f"{seconds:g}s", "-c", str(concurrency), "-m", "POST", "-T", "application/json",
           "-d", PAYLOAD]
    if rate:
        cmd += ["-q", f"{rate / concurrency:.3f}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout
    pct = {int(p): float(v) * 1000 for p, v in _HEY_PCT.findall(out)}
    achieved = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    statuses = re.findall(r"\[(\d+)\]\s+(\d+) responses", out)
    errors = sum(int(n) for code, n in statuses if code != "200")
    failures = out.split("Error distribution:")[1] if "Error distribution:" in out else ""
    errors += sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", failures, re.MULTILINE))
    return Measure("hey" + (" -q" if rate else " (max)"), rate, achieved, pct.get(50), pct.get(99), errors)


_WRK_PCT = re.compile(r"^\s*(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk_once(url: str, seconds: float, connections: int, gap_ms: int) -> tuple[float, dict, int]:
    script = (f'wrk.method = "POST"\nwrk.body = \'{PAYLOAD}\'\n'
              f'wrk.headers["Content-Type"] = "application/json"\n'
              f"function delay() return {gap_ms} end\n")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", fh.name,
                              url], capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(fh.name)
    pct = {int(p): float(v) * _UNIT[u] for p, v, u in _WRK_PCT.findall(out)}
    achieved = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    return achieved, pct, int(bad.group(1)) if bad else 0


def run_wrk(url: str, seconds: float, rate: float) -> Measure:
    """wrk paced to ``rate``: each connection waits ``gap`` ms between requests (wrk's Lua
    ``delay()``); the number of connections is calibrated with a short run first."""
    gap = 20
    connections = max(1, round(rate * gap / 1000))
    achieved, _, _ = _wrk_once(url, 1, connections, gap)
    if achieved > 0:
        connections = max(1, round(connections * rate / achieved))
    achieved, pct, errors = _wrk_once(url, seconds, connections, gap)
    return Measure("wrk (paced)", rate, achieved, pct.get(50), pct.get(99), errors,
                   {"connections": connections, "gap_ms": gap})


# -- report -----------------------------------------------------------------------------------

def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fmt_ms(v: Optional[float]) -> str:
    return "-" if v is None else (f"{v * 1000:.0f}µs" if v < 1 else f"{v:.2f}ms")


def table(label: str, url: str, best: Measure, hey_max: Measure, loads: list[list[Measure]]) -> str:
    lines = [f"## {label}  ({url})", "",
             "| highest sustained rate | requests/s | note |", "|---|---:|---|",
             f"| kagg monitor (achieved within 2 % of requested) | {best.achieved:.0f} | requested "
             f"{best.requested:.0f}/s, send lag p99 {fmt_ms(best.extra['send_lag_p99_ms'])} |",
             f"| hey, as fast as it can (closed loop, -c {hey_max.extra.get('c', '')}) | {hey_max.achieved:.0f} | "
             f"p50 {fmt_ms(hey_max.p50_ms)}, p99 {fmt_ms(hey_max.p99_ms)} |",
             f"| ratio kagg / hey | {best.achieved / hey_max.achieved:.2f} | |", "",
             "| load | tool | achieved/s | p50 | p99 | errors |", "|---:|---|---:|---:|---:|---:|"]
    for group in loads:
        for m in group:
            lines.append(f"| {m.requested:.0f}/s | {m.tool} | {m.achieved:.0f} | {fmt_ms(m.p50_ms)} | "
                         f"{fmt_ms(m.p99_ms)} | {m.errors} |")
            if m.tool == "kagg monitor":
                lines.append(f"| {m.requested:.0f}/s | kagg monitor, service time | | "
                             f"{fmt_ms(m.extra['service_p50_ms'])} | {fmt_ms(m.extra['service_p99_ms'])} | |")
    lines.append("")
    for group in loads:
        k, others = group[0], group[1:]
        for o in others:
            if o.p50_ms and o.p99_ms:
                lines.append(f"- at {k.requested:.0f}/s, kagg/{o.tool.split()[0]}: p50 "
                             f"{k.p50_ms / o.p50_ms:.2f}x (service {k.extra['service_p50_ms'] / o.p50_ms:.2f}x), "
                             f"p99 {k.p99_ms / o.p99_ms:.2f}x (service {k.extra['service_p99_ms'] / o.p99_ms:.2f}x)")
    return "\n".join(lines) + "\n"


def bench(server, step: float, concurrency: int, low_rate: float) -> tuple[str, dict]:
    with server as url:
        log(f"# {server.label}: {url}")
        run_kagg_monitor(url, 50, 1, concurrency)  # warm up (imports, first connection, cold start)
        best, tried = kagg_max_rate(url, step, concurrency)
        hey_max = run_hey(url, step, concurrency)
        hey_max.extra["c"] = concurrency
        log(f"  hey max: {hey_max.achieved:.0f}/s")
        loads = []
        for rate in sorted({low_rate, best.requested}):
            k = best if rate == best.requested else run_kagg_monitor(url, rate, step, concurrency)
            hey_c = max(1, min(concurrency, int(rate // 50) or 1))
            loads.append([k, run_hey(url, step, hey_c, rate), run_wrk(url, step, rate)])
            log(f"  load {rate:.0f}/s measured")
        text = table(server.label, url, best, hey_max, loads)
        data = {"server": server.label, "kagg_max": asdict(best), "hey_max": asdict(hey_max),
                "kagg_steps": [asdict(m) for m in tried], "loads": [[asdict(m) for m in g] for g in loads]}
        return text, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=["fast", "kagg", "both"], default="both")
    parser.add_argument("--step", type=float, default=3.0, help="seconds per measured run")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--low-rate", type=float, default=200.0)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_fast()
        return
    for tool in ("hey", "wrk"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed: apt-get install -y hey wrk")
    servers = []
    if args.server in ("fast", "both"):
        servers.append(FastServer())
    if args.server in ("kagg", "both"):
        try:
            import importlib.util

            sys.path.insert(0, str(ROOT))
            if importlib.util.find_spec("kagg.providers.local") is None:
                raise ImportError
            servers.append(KaggLocalEndpoint())
        except ImportError:
            log("kagg.providers.local is not there yet: only the fast server is measured")
    started, load_before = time.time(), os.getloadavg()
    texts, data = [], []
    for server in servers:
        text, d = bench(server, args.step, args.concurrency, args.low_rate)
        texts.append(text)
        data.append(d)
    print(f"# kagg monitor vs hey vs wrk ({os.cpu_count()} CPUs, {args.step:g} s per run, "
          f"{time.time() - started:.0f} s in all; load average before/after "
          f"{load_before[0]:.1f}/{os.getloadavg()[0]:.1f})\n")
    print("\n".join(texts))
    if args.json_out:
        args.json_out.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
