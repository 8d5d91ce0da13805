"""Every monitor run, one row per endpoint, in SQLite beside the registry.

SQLite because several runs (a cron job, a user at a terminal) may write at once and a
query by endpoint and time must stay fast as rows accumulate. Each row keeps the deployed
artifact's sha256, so ``kagg monitor history`` can show where a redeploy changed latency.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Optional

from kagg.errors import OperationFailed
from kagg.urls import redact_url

FILENAME = "monitor.sqlite3"
SCHEMA_VERSION = 1
COLUMNS = ("target", "url", "started_at", "duration_s", "requests", "requested_rate", "achieved_rate",
           "p50", "p90", "p95", "p99", "p999", "max", "service_p50", "service_p99", "handler_p50",
           "errors", "error_pct", "availability_pct", "cold", "cold_p50", "instances",
           "artifact_sha256", "deployed_at", "alerts_fired", "report")
_CREATE = f"""
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL, url TEXT, started_at REAL NOT NULL, duration_s REAL,
    requests INTEGER, requested_rate REAL, achieved_rate REAL,
    p50 REAL, p90 REAL, p95 REAL, p99 REAL, p999 REAL, max REAL,
    service_p50 REAL, service_p99 REAL, handler_p50 REAL,
    errors INTEGER, error_pct REAL, availability_pct REAL,
    cold INTEGER, cold_p50 REAL, instances INTEGER,
    artifact_sha256 TEXT, deployed_at TEXT, alerts_fired INTEGER, report TEXT);
CREATE INDEX IF NOT EXISTS runs_target_time ON runs (target, started_at);
PRAGMA user_version = {SCHEMA_VERSION};
"""


class History:
    """The run history file of one registry (``<state_dir>/monitor.sqlite3``)."""

    def __init__(self, state_dir: Path | str):
        self.path = Path(state_dir) / FILENAME

    def _connect(self) -> sqlite3.Connection:
        try:
            from kagg.registry import make_private_dir

            make_private_dir(self.path.parent)
            if not self.path.exists():  # private from its first byte: it holds URLs and payload sizes
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = sqlite3.connect(self.path, timeout=30)
            conn.row_factory = sqlite3.Row
            conn.executescript(_CREATE)
            return conn
        except sqlite3.DatabaseError as exc:
            raise OperationFailed(f"monitor history {self.path} cannot be used: {exc}")
        except OSError as exc:
            raise OperationFailed(f"cannot create {self.path.parent}: {exc.strerror}")

    def record(self, report: dict, started_at: float, alerts_fired: int = 0,
               artifact_sha256: Optional[str] = None, deployed_at: Optional[str] = None) -> int:
        """Store one endpoint's report; returns the row id. URLs are stored redacted."""
        lat, svc, hnd = report["latency_ms"], report["service_ms"], report["handler_ms"]
        slim = {k: v for k, v in report.items() if k != "series"}
        slim["target"], slim["url"] = redact_url(report["target"]), redact_url(report["url"])
        row = (slim["target"], slim["url"], started_at, report["duration_s"], report["requests"],
               report["requested_rate"], report["achieved_rate"], lat["p50"], lat["p90"], lat["p95"],
               lat["p99"], lat["p99.9"], lat["max"], svc["p50"], svc["p99"], hnd["p50"],
               report["errors"]["total"], report["errors"]["pct"], report["availability_pct"],
               report["cold"]["count"], report["cold"]["service_ms"]["p50"], report["instances"],
               artifact_sha256, deployed_at, alerts_fired, json.dumps(slim))
        with closing(self._connect()) as conn, conn:
            cur = conn.execute(f"INSERT INTO runs ({', '.join(COLUMNS)}) "
                               f"VALUES ({', '.join('?' * len(COLUMNS))})", row)
            return int(cur.lastrowid)

    def runs(self, target: str, since: Optional[float] = None) -> list[dict]:
        """Runs of ``target`` started in the last ``since`` seconds (all if None), oldest first."""
        if not self.path.exists():
            return []
        floor = time.time() - since if since else 0.0
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT * FROM runs WHERE target = ? AND started_at >= ? "
                                "ORDER BY started_at, id", (target, floor)).fetchall()
        out = []
        for row in rows:
            item = {k: row[k] for k in row.keys() if k != "report"}
            item["report"] = json.loads(row["report"]) if row["report"] else None
            out.append(item)
        return out

    def has_runs(self, target: str) -> bool:
        """Whether ``target`` has any run at all, however old."""
        if not self.path.exists():
            return False
        with closing(self._connect()) as conn:
            return conn.execute("SELECT 1 FROM runs WHERE target = ? LIMIT 1", (target,)).fetchone() is not None

    def targets(self) -> list[str]:
        """Every endpoint name or URL with at least one run (to suggest one on a miss)."""
        if not self.path.exists():
            return []
        with closing(self._connect()) as conn:
            return [r[0] for r in conn.execute("SELECT DISTINCT target FROM runs ORDER BY target")]
