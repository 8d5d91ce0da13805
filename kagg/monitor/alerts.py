"""``--alert`` expressions: parse them before probing, check them against the final report.

Grammar: ``METRIC OP VALUE`` with OP one of ``> >= < <=``.

* latency: ``p50 p90 p95 p99 p99.9 max mean min`` (from the due time), or prefixed
  ``service. handler. network. cold. warm. lag.`` (e.g. ``handler.p99>50ms``);
  VALUE in ``us ms s`` (a bare number is ms);
* failures: ``errors``, or one kind: ``timeout``, ``connection``, ``closed``, ``reset``,
  ``invalid_http``, ``short_body``, ``bad_redirect``, ``http_500`` ... as a share (``1%``)
  or a count (``3``); ``availability`` in percent (``99.9%``);
* ``cold`` (cold starts seen), ``instances`` (distinct instances), ``rate`` (achieved, ``/s`` or ``/m``).

A bad expression is a :class:`BadInput` (exit 2) before any request is sent, so a typo in
a CI job cannot pass as "no alert fired".
"""

from __future__ import annotations

import asyncio
import json
import operator
import re
from dataclasses import dataclass
from typing import Callable, Optional

from kagg.errors import BadInput
from kagg.model import utc_now
from kagg.monitor.units import format_ms
from kagg.urls import redact_url, split_userinfo

#: the webhook POST's total deadline, from connecting to the last byte of the answer
WEBHOOK_TIMEOUT = 10.0

_EXPR = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.]*?)\s*(>=|<=|>|<)\s*(\d+(?:\.\d*)?|\.\d+)\s*(\S*)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_LATENCY = re.compile(r"^(?:(service|handler|network|cold|warm|lag)\.)?(p\d+(?:\.\d+)?|max|mean|min)$")
_LATENCY_UNITS = {"": 1.0, "ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1000.0}
_FAMILY = {None: "latency_ms", "service": "service_ms", "handler": "handler_ms",
           "network": "network_ms", "lag": "schedule_lag_ms"}
_ERROR_KIND = re.compile(r"^(errors|timeouts?|connection|closed|reset|invalid_http|short_body|bad_redirect"
                         r"|http_\d{3})$")
_HELP = "expected METRIC OP VALUE, such as 'p95>300ms', 'errors>1%' or 'availability<99.9%'"


@dataclass(frozen=True)
class Alert:
    """One parsed ``--alert``; ``threshold`` is in the metric's unit (ms, %, count or /s)."""

    expression: str
    metric: str
    op: str
    threshold: float
    unit: str  # "ms", "%", "count" or "/s"

    def value(self, report: dict) -> Optional[float]:
        """The metric's value in ``report`` (one endpoint's), or None if not measured."""
        m = _LATENCY.match(self.metric)
        if m:
            family, stat = m.groups()
            if family in ("cold", "warm"):
                summary = report[family]["service_ms"]
            else:
                summary = report[_FAMILY[family]]
            return summary.get(stat)
        if self.metric == "availability":
            return report["availability_pct"] if report["requests"] else None
        if self.metric == "rate":
            return report["achieved_rate"]
        if self.metric == "cold":
            return float(report["cold"]["count"])
        if self.metric == "instances":
            return float(report["instances"])
        kind = "timeout" if self.metric.startswith("timeout") else self.metric
        count = report["errors"]["total"] if kind == "errors" else report["errors"]["by_kind"].get(kind, 0)
        if self.unit == "%":
            return 100.0 * count / report["requests"] if report["requests"] else None
        return float(count)

    def check(self, report: dict) -> dict:
        """``{"fired": bool, "value": …}`` for this endpoint's report."""
        value = self.value(report)
        fired = value is not None and _OPS[self.op](value, self.threshold)
        return {"endpoint": report["target"], "url": report["url"], "expression": self.expression,
                "metric": self.metric, "op": self.op, "threshold": self.threshold, "unit": self.unit,
                "value": None if value is None else round(value, 4), "fired": fired}


def parse_alert(text: str) -> Alert:
    """Parse one expression; :class:`BadInput` naming it if it is malformed."""
    match = _EXPR.match(text or "")
    if not match:
        raise BadInput(f"invalid --alert {text!r}: {_HELP}")
    metric, op, number, unit = match.group(1).lower(), match.group(2), float(match.group(3)), match.group(4)
    latency = _LATENCY.match(metric)
    if latency:
        stat = latency.group(2)
        if stat.startswith("p") and stat not in ("p50", "p90", "p95", "p99", "p99.9"):
            raise BadInput(f"invalid --alert {text!r}: percentile {stat} is not reported; "
                           "use p50, p90, p95, p99, p99.9, max, mean or min")
        scale = _LATENCY_UNITS.get(unit) or _LATENCY_UNITS.get(unit.lower())
        if scale is None:
            raise BadInput(f"invalid --alert {text!r}: a latency takes us, ms or s (e.g. 300ms)")
        return Alert(text, metric, op, number * scale, "ms")
    if metric == "availability":
        if unit not in ("", "%"):
            raise BadInput(f"invalid --alert {text!r}: availability is a percentage (e.g. 99.9%)")
        if number > 100:
            raise BadInput(f"invalid --alert {text!r}: availability cannot exceed 100%")
        return Alert(text, metric, op, number, "%")
    if _ERROR_KIND.match(metric):
        if unit not in ("", "%"):
            raise BadInput(f"invalid --alert {text!r}: {metric} is a share (1%) or a count (3)")
        return Alert(text, metric, op, number, "%" if unit == "%" else "count")
    if metric in ("cold", "instances"):
        if unit:
            raise BadInput(f"invalid --alert {text!r}: {metric} is a count (e.g. {metric}>3)")
        return Alert(text, metric, op, number, "count")
    if metric == "rate":
        per = {"": 1.0, "/s": 1.0, "/m": 1 / 60.0, "/min": 1 / 60.0}.get(unit.lower())
        if per is None:
            raise BadInput(f"invalid --alert {text!r}: a rate takes /s or /m (e.g. rate<4.9/s)")
        return Alert(text, metric, op, number * per, "/s")
    raise BadInput(f"invalid --alert {text!r}: unknown metric {metric!r}; {_HELP}")


def parse_alerts(texts: tuple[str, ...] | list[str]) -> list[Alert]:
    return [parse_alert(t) for t in texts]


def evaluate(alerts: list[Alert], reports: list[dict]) -> list[dict]:
    """Every alert checked against every endpoint's report."""
    return [alert.check(report) for report in reports for alert in alerts]


def describe(check: dict) -> str:
    """One line for people: ``api: p95 = 312ms (alert p95>300ms)``."""
    value = check["value"]
    if value is None:
        shown = "not measured"
    elif check["unit"] == "ms":
        shown = format_ms(value)
    elif check["unit"] == "%":
        shown = f"{value:.3g}%"
    elif check["unit"] == "/s":
        shown = f"{value:.2f}/s"
    else:
        shown = f"{value:g}"
    return f"{check['endpoint']}: {check['metric']} = {shown} (alert {check['expression']})"


def webhook_shown(url: str) -> str:
    """The webhook as messages show it: redacted, and its path cut short, because chat
    webhooks carry their secret in the path (``https://hooks.slack.com/services/T/B/SECRET``)."""
    shown = redact_url(url)
    scheme_end = shown.find("://")
    slash = shown.find("/", scheme_end + 3 if scheme_end >= 0 else 0)
    if slash >= 0 and shown[slash:] not in ("", "/"):
        return shown[:slash] + "/…"
    return shown


def post_webhook(url: str, fired: list[dict], reports: list[dict],
                 timeout: float = WEBHOOK_TIMEOUT) -> Optional[str]:
    """POST the fired alerts as JSON; returns an error message instead of raising.

    ``timeout`` bounds the whole call (a server trickling its answer cannot hold the run
    longer). Credentials in ``url``'s userinfo are sent as Basic auth. A ``text`` field is
    included so chat webhooks (Slack, Mattermost) show a readable line.
    """
    body = {
        "source": "kagg monitor",
        "fired_at": utc_now(),
        "text": "kagg monitor alert: " + "; ".join(describe(c) for c in fired),
        "alerts": fired,
        "endpoints": {r["target"]: {k: r[k] for k in ("url", "requests", "latency_ms", "errors",
                                                      "availability_pct", "achieved_rate")}
                      for r in reports},
    }
    target, auth = split_userinfo(url)
    headers = {"Content-Type": "application/json", "User-Agent": "kagg-monitor", **auth}
    problem = asyncio.run(_post(target, json.dumps(body).encode(), headers, timeout))
    return None if problem is None else f"webhook {webhook_shown(url)} {problem}"


async def _post(url: str, data: bytes, headers: dict, timeout: float) -> Optional[str]:
    import aiohttp

    from kagg.monitor.probe import _deadline, classify, error_label

    status = None
    try:
        async with _deadline(timeout):
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout),
                                             cookie_jar=aiohttp.DummyCookieJar()) as session:
                async with session.post(url, data=data, headers=headers, allow_redirects=False) as resp:
                    status = resp.status
                    async for _ in resp.content.iter_any():  # read to the end, keep nothing
                        pass
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
        kind = classify(exc, status is not None)
        if kind == "timeout":
            return f"failed: no full answer within {timeout:g} s"
        return f"failed: {error_label(kind)}"
    if not 200 <= status < 300:
        return f"answered {status}"
    return None
