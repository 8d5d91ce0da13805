"""The local provider: the artifact served by functions-framework on 127.0.0.1.

The server runs as a detached background process (its own session) so it
outlives the CLI; its pid, port and log file are kept in the registry entry.
Process handling lives in :mod:`kagg.providers.local.process`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Iterator, Optional

from kagg.errors import BadInput, OperationFailed
from kagg.model import Artifact, DeployOptions, Endpoint, Plan, PlanStep, utc_now
from kagg.providers.base import Provider
from kagg.providers.local.process import (HOST, health, last_error_line, pick_free_port, port_is_free,
                                          process_alive, server_command, stop_process)

DEFAULT_STARTUP_TIMEOUT = 120.0


class LocalProvider(Provider):
    """Serve endpoints from this machine; needs no cloud account."""

    name = "local"
    shims = ("gcf",)

    def validate_options(self, options: DeployOptions) -> None:
        if options.port is not None and not (1 <= options.port <= 65535):
            raise BadInput(f"--port {options.port} is not a port number (1-65535)")
        for key in options.env:
            if not key or "=" in key:
                raise BadInput(f"invalid environment variable name {key!r}")

    def _endpoint_dir(self, name: str) -> Path:
        return self.state_dir / "local" / name

    def validate_target(self, name: str, current: Optional[Endpoint], options: DeployOptions) -> None:
        data = current.provider_data if current else {}
        self._check_port(data.get("port") if process_alive(data.get("pid")) else None, options)

    @staticmethod
    def _check_port(own_port: Optional[int], options: DeployOptions) -> None:
        """A --port taken by anything but this endpoint's own running server is bad input."""
        if options.port is not None and options.port != own_port and not port_is_free(options.port):
            raise BadInput(f"port {options.port} is already in use; choose another with --port or leave it out")

    def plan(self, artifact: Artifact, current: Optional[Endpoint], options: DeployOptions) -> Plan:
        data = dict(current.provider_data) if current else {}
        current_pid = data.get("pid")
        running = process_alive(current_pid)
        current_port = data.get("port") if running else None
        port = options.port or data.get("port")
        self._check_port(current_port, options)  # again: the port may have been taken since
        if port is None or (port != current_port and not port_is_free(port)):
            port = pick_free_port()
        name = artifact.function.name
        url = f"http://{HOST}:{port}/"
        unchanged = bool(current and running and current.artifact_sha256 == artifact.sha256
                         and port == current_port and options.env == data.get("env", {})
                         and health(current.url) is not None)
        app_dir = self._endpoint_dir(name) / artifact.sha256[:16]
        steps = [PlanStep("unpack", f"unpack {artifact.path.name} into {app_dir}")]
        if running:
            steps.append(PlanStep("stop", f"stop the running server (pid {current_pid}, port {current_port})"))
        steps.append(PlanStep("start", f"start functions-framework serving {name} on {url}"))
        steps.append(PlanStep("wait", f"wait until {url}health answers", mutating=False))
        return Plan(self.name, name, artifact, current, options, steps, unchanged,
                    {"port": port, "url": url, "app_dir": str(app_dir), "running_pid": current_pid if running else None})

    def apply(self, plan: Plan) -> Endpoint:
        artifact, options = plan.artifact, plan.options
        app_dir = Path(plan.data["app_dir"])
        if not (app_dir / "kagg.json").exists():
            tmp = app_dir.with_name(app_dir.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            with zipfile.ZipFile(artifact.path) as zf:
                zf.extractall(tmp)
            shutil.rmtree(app_dir, ignore_errors=True)  # a half-unpacked earlier attempt
            os.replace(tmp, app_dir)
        old_pid = plan.data.get("running_pid")
        stop_process(old_pid)
        port, url = plan.data["port"], plan.data["url"]
        log_path = self._endpoint_dir(plan.name) / "server.log"
        startup_timeout = float(options.extra.get("startup_timeout", DEFAULT_STARTUP_TIMEOUT))
        try:
            pid = self._start(app_dir, port, log_path, options.env, artifact, startup_timeout)
        except OperationFailed:
            if old_pid and plan.current:  # bring the previous version back
                old_dir = plan.current.provider_data.get("app_dir")
                if old_dir and Path(old_dir).exists():
                    try:
                        self._start(Path(old_dir), plan.current.provider_data["port"], log_path,
                                    plan.current.provider_data.get("env", {}), None, startup_timeout)
                    except OperationFailed:
                        pass
            raise
        self._prune(plan.name, keep=app_dir.name)
        return Endpoint(
            name=plan.name, provider=self.name, url=url, auth="none", region=None,
            source={"path": artifact.function.source.path, "sha256": artifact.function.source.sha256},
            artifact_sha256=artifact.sha256,
            provider_data={"pid": pid, "port": port, "app_dir": str(app_dir), "log": str(log_path),
                           "python": sys.executable, "env": dict(options.env), "started_at": utc_now()},
        )

    def _start(self, app_dir: Path, port: int, log_path: Path, env_extra: dict, artifact: Optional[Artifact],
               startup_timeout: float) -> int:
        """Start a detached server and wait for its /health; on failure raise with the log's error."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(env_extra)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("PYTHONSTARTUP", None)
        cmd = server_command(app_dir, port)
        with open(log_path, "ab") as log:
            log.write(f"--- {utc_now()} starting {app_dir.name} on port {port}\n".encode())
            log.flush()
            start_offset = log.tell()
            proc = subprocess.Popen(cmd, cwd=app_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        url = f"http://{HOST}:{port}/"
        expected = artifact.function.source.sha256 if artifact else None
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                text = log_path.read_bytes()[start_offset:].decode("utf-8", "replace")
                raise OperationFailed(f"the notebook failed to start: {last_error_line(text)} "
                                      f"(full log: {log_path})")
            doc = health(url, timeout=1.0)
            if doc is not None and (expected is None or doc.get("source_sha256") == expected):
                proc.returncode = 0  # detached on purpose: don't warn that it is still running
                return proc.pid
            time.sleep(0.05)
        stop_process(proc.pid)
        raise OperationFailed(f"the endpoint did not answer /health within {startup_timeout:g} s "
                              f"(log: {log_path}); a long cold start? set extra startup_timeout")

    def _prune(self, name: str, keep: str) -> None:
        """Remove unpacked artifacts of earlier deploys once the new one serves."""
        folder = self._endpoint_dir(name)
        for child in folder.iterdir() if folder.exists() else ():
            if child.is_dir() and child.name != keep:
                shutil.rmtree(child, ignore_errors=True)

    def delete(self, endpoint: Endpoint, options: Optional[DeployOptions] = None) -> list[str]:
        warnings = []
        if not stop_process(endpoint.provider_data.get("pid")):
            warnings.append(f"{endpoint.name} was not running (pid {endpoint.provider_data.get('pid')})")
        shutil.rmtree(self._endpoint_dir(endpoint.name), ignore_errors=True)
        return warnings

    def is_running(self, endpoint: Endpoint) -> bool:
        return process_alive(endpoint.provider_data.get("pid"))

    def logs(self, endpoint: Endpoint, follow: bool = False) -> Iterator[str]:
        path = Path(endpoint.provider_data.get("log") or self._endpoint_dir(endpoint.name) / "server.log")
        if not path.exists():
            raise BadInput(f"no log for {endpoint.name} at {path}")
        with open(path, encoding="utf-8", errors="replace") as fh:
            yield from fh
            while follow:
                line = fh.readline()
                if line:
                    yield line
                elif not process_alive(endpoint.provider_data.get("pid")):
                    return
                else:
                    time.sleep(0.2)
