"""The local provider: the artifact served by functions-framework on 127.0.0.1.

The server runs as a detached background process (its own session) so it
outlives the CLI; its pid, port and log file are kept in the registry entry.
Process handling lives in :mod:`kagg.providers.local.process`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Iterator, Optional

from kagg.errors import BadInput, DeployFailed, OperationFailed
from kagg.atomic import write_bytes_atomic
from kagg.model import Artifact, ConvertedFunction, DeployOptions, Endpoint, Plan, PlanStep, utc_now
from kagg.notebook.datafiles import add_missing_file_hint
from kagg.notebook.linemap import LineMap
from kagg.providers.base import Provider
from kagg.providers.local.environment import ensure_venv, install_hint, missing_requirements
from kagg.registry import make_private_dir
from kagg.providers.local.process import (HOST, Server, health, is_running, last_error_line, pick_free_port,
                                          port_is_free, server_command, servers_under, stop_server, identify)

DEFAULT_STARTUP_TIMEOUT = 120.0


class LocalProvider(Provider):
    """Serve endpoints from this machine; needs no cloud account."""

    name = "local"
    shims = ("gcf",)
    options_used = frozenset({"port", "env", "startup_timeout", "venv"})

    def validate_options(self, options: DeployOptions) -> None:
        if options.port is not None and not (1 <= options.port <= 65535):
            raise BadInput(f"--port {options.port} is not a port number (1-65535)")
        for key in options.env:
            if not key or "=" in key:
                raise BadInput(f"invalid environment variable name {key!r}")

    def check_function(self, function: ConvertedFunction, options: DeployOptions) -> None:
        """A requirement kagg's environment lacks would fail at start: say so now, and how to fix it."""
        if options.venv:
            return
        missing = missing_requirements(function.requirements)
        if missing:
            listed = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise BadInput(f"{function.name} needs {listed}, which the environment kagg runs in does not have; "
                           f"install it ({install_hint(missing)}) or deploy with --venv to serve it from "
                           "a virtual environment of its own")

    def _endpoint_dir(self, name: str) -> Path:
        return self.state_dir / "local" / name

    def _env_file(self, name: str) -> Path:
        """The endpoint's ``--env`` values: a private file of the state folder, never the registry."""
        return self._endpoint_dir(name) / "env.json"

    def validate_target(self, name: str, current: Optional[Endpoint], options: DeployOptions) -> None:
        data = current.provider_data if current else {}
        self._check_port(data.get("port") if is_running(Server.from_data(data)) else None, options)

    @staticmethod
    def _check_port(own_port: Optional[int], options: DeployOptions) -> None:
        """A --port taken by anything but this endpoint's own running server is bad input."""
        if options.port is not None and options.port != own_port and not port_is_free(options.port):
            raise BadInput(f"port {options.port} is already in use; choose another with --port or leave it out")

    def plan(self, artifact: Artifact, current: Optional[Endpoint], options: DeployOptions) -> Plan:
        data = dict(current.provider_data) if current else {}
        server = Server.from_data(data)
        running = is_running(server)
        current_port = data.get("port") if running else None
        port = options.port or data.get("port")
        self._check_port(current_port, options)  # again: the port may have been taken since
        if port is None or (port != current_port and not port_is_free(port)):
            port = pick_free_port()
        name = artifact.function.name
        url = f"http://{HOST}:{port}/"
        unchanged = bool(current and running and current.artifact_sha256 == artifact.sha256
                         and port == current_port and env_digest(options.env) == data.get("env_sha256")
                         and bool(data.get("venv")) == options.venv
                         and health(current.url) is not None)
        app_dir = self._endpoint_dir(name) / artifact.sha256[:16]
        steps = [PlanStep("unpack", f"unpack {artifact.path.name} into {app_dir}")]
        if running:
            assert server is not None
            steps.append(PlanStep("stop", f"stop the running server (pid {server.pid}, port {current_port})"))
        steps.append(PlanStep("start", f"start functions-framework serving {name} on {url}"))
        steps.append(PlanStep("wait", f"wait until {url}health answers", mutating=False))
        return Plan(self.name, name, artifact, current, options, steps, unchanged,
                    {"port": port, "url": url, "app_dir": str(app_dir)})

    def apply(self, plan: Plan) -> Endpoint:
        artifact, options = plan.artifact, plan.options
        app_dir = Path(plan.data["app_dir"])
        self._unpack(artifact, app_dir)
        # the venv first: it may take minutes, or fail, while the old version still serves
        python = str(ensure_venv(artifact.function.requirements, self.progress)) if options.venv else sys.executable
        old = plan.current.provider_data if plan.current else {}
        old_server = Server.from_data(old)
        was_running = stop_server(old_server)
        for stray in servers_under(self._endpoint_dir(plan.name)):  # started by an interrupted deploy
            stop_server(stray)
        port, url = plan.data["port"], plan.data["url"]
        log_path = self._endpoint_dir(plan.name) / "server.log"
        old_env = self._read_env(plan.name)
        self._write_env(plan.name, options.env)
        startup_timeout = float(options.startup_timeout or DEFAULT_STARTUP_TIMEOUT)
        try:
            server = self._start(app_dir, port, log_path, options.env, artifact.function.source.sha256,
                                 startup_timeout, python)
        except OperationFailed as exc:
            exc.message = add_missing_file_hint(exc.message, artifact.function.source.path)
            self._write_env(plan.name, old_env)
            raise self._restore(plan, exc, was_running, old_env, log_path, startup_timeout) from None
        self._prune(plan.name, keep=app_dir.name)
        return self._endpoint(plan.name, url, artifact.function.source.path, artifact.function.source.sha256,
                              artifact.sha256, server, port, log_path, options.env, python)

    def _restore(self, plan: Plan, exc: OperationFailed, was_running: bool, old_env: dict, log_path: Path,
                 startup_timeout: float) -> DeployFailed:
        """After a new version failed to start: bring the previous one back and say what to record."""
        current = plan.current
        old = current.provider_data if current else {}
        old_dir = old.get("app_dir")
        if current is None or not was_running or not old_dir or not Path(old_dir).exists():
            if current is None:
                shutil.rmtree(self._endpoint_dir(plan.name), ignore_errors=True)
            return DeployFailed(exc.message, nothing_left=True)
        python = old.get("python") if isinstance(old.get("python"), str) else sys.executable
        try:
            server = self._start(Path(old_dir), old["port"], log_path, old_env, current.source.get("sha256"),
                                 startup_timeout, python)
        except OperationFailed:
            return DeployFailed(exc.message + "; the previous version could not be restarted either")
        restored = self._endpoint(plan.name, current.url, current.source.get("path", ""),
                                  current.source.get("sha256", ""), current.artifact_sha256 or "", server,
                                  old["port"], log_path, old_env, python)
        restored.created_at = current.created_at
        return DeployFailed(exc.message + "; the previous version is still serving", endpoint=restored)

    def _endpoint(self, name: str, url: str, source_path: str, source_sha: str, artifact_sha: str, server: Server,
                  port: int, log_path: Path, env: dict, python: str) -> Endpoint:
        return Endpoint(
            name=name, provider=self.name, url=url, auth="none", region=None,
            source={"path": source_path, "sha256": source_sha}, artifact_sha256=artifact_sha,
            provider_data={**server.to_data(), "port": port, "log": str(log_path), "python": python,
                           "venv": python != sys.executable, "env_names": sorted(env),
                           "env_sha256": env_digest(env), "started_at": utc_now()},
        )

    @staticmethod
    def _unpack(artifact: Artifact, app_dir: Path) -> None:
        if (app_dir / "kagg.json").exists():
            return
        tmp = app_dir.with_name(app_dir.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        with zipfile.ZipFile(artifact.path) as zf:
            zf.extractall(tmp)
        for folder, dirs, files in os.walk(tmp):  # the code may be what the user keeps private
            os.chmod(folder, 0o700)
            for file in files:
                os.chmod(os.path.join(folder, file), 0o600)
        shutil.rmtree(app_dir, ignore_errors=True)  # a half-unpacked earlier attempt
        os.replace(tmp, app_dir)

    def _read_env(self, name: str) -> dict[str, str]:
        try:
            data = json.loads(self._env_file(name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _write_env(self, name: str, env: dict[str, str]) -> None:
        path = self._env_file(name)
        if not env:
            path.unlink(missing_ok=True)
            return
        write_bytes_atomic(path, json.dumps(env, sort_keys=True).encode("utf-8"), mode=0o600)

    def _start(self, app_dir: Path, port: int, log_path: Path, env_extra: dict, expected_sha: Optional[str],
               startup_timeout: float, python: str) -> Server:
        """Start a detached server and wait for its /health; on failure raise with the log's error."""
        make_private_dir(log_path.parent)
        env = dict(os.environ)
        env.update(env_extra)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("PYTHONSTARTUP", None)
        cmd = server_command(app_dir, port, python)
        with open(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
            log.write(f"--- {utc_now()} starting {app_dir.name} on port {port}\n".encode())
            log.flush()
            start_offset = log.tell()
            proc = subprocess.Popen(cmd, cwd=app_dir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        server = identify_started(proc.pid, app_dir)
        url = f"http://{HOST}:{port}/"
        started = time.monotonic()
        deadline = started + startup_timeout
        next_note = started + 10.0
        self.progress(f"waiting for the notebook's cold start to answer {url}health "
                      f"(up to {startup_timeout:g} s; --startup-timeout changes it)")
        while time.monotonic() < deadline:
            if time.monotonic() >= next_note:
                waited = time.monotonic() - started
                self.progress(f"still starting: {waited:.0f} s of {startup_timeout:g} s "
                              f"(`kagg logs` shows its output; log: {log_path})")
                next_note += 10.0
            code = proc.poll()
            if code is not None:
                text = log_path.read_bytes()[start_offset:].decode("utf-8", "replace")
                reason = LineMap(app_dir).summary(text.splitlines()) or last_error_line(text)
                raise OperationFailed(f"the notebook failed to start: {reason} (full log: {log_path})")
            doc = health(url, timeout=1.0)
            if doc is not None and (expected_sha is None or doc.get("source_sha256") == expected_sha):
                proc.returncode = 0  # detached on purpose: don't warn that it is still running
                return identify(proc.pid) or server
            time.sleep(0.05)
        stop_server(server)
        raise OperationFailed(f"the endpoint did not answer /health within {startup_timeout:g} s "
                              f"(log: {log_path}); if the notebook trains or loads for longer at start, "
                              f"deploy again with a longer --startup-timeout (e.g. --startup-timeout "
                              f"{max(300, int(startup_timeout * 3))})")

    def _prune(self, name: str, keep: str) -> None:
        """Remove unpacked artifacts of earlier deploys once the new one serves."""
        folder = self._endpoint_dir(name)
        for child in folder.iterdir() if folder.exists() else ():
            if child.is_dir() and child.name != keep:
                shutil.rmtree(child, ignore_errors=True)

    def delete(self, endpoint: Endpoint, options: Optional[DeployOptions] = None) -> list[str]:
        """Stop the recorded server (only if it still is that server) and any server an interrupted
        deploy left serving from this endpoint's folder, then remove the folder."""
        warnings = []
        stopped = stop_server(Server.from_data(endpoint.provider_data))
        for stray in servers_under(self._endpoint_dir(endpoint.name)):
            stopped = stop_server(stray) or stopped
        if not stopped and not endpoint.pending:
            warnings.append(f"{endpoint.name} was not running (pid {endpoint.provider_data.get('pid')})")
        shutil.rmtree(self._endpoint_dir(endpoint.name), ignore_errors=True)
        return warnings

    def is_running(self, endpoint: Endpoint) -> bool:
        return is_running(Server.from_data(endpoint.provider_data))

    def health(self, endpoint: Endpoint) -> Optional[str]:
        """``up`` / ``down``, with the restarts the supervisor made since this version started."""
        server = Server.from_data(endpoint.provider_data)
        if not is_running(server):
            return "down"
        assert server is not None
        from kagg.providers.local.server import read_status  # not at import: it runs as __main__ too

        status = read_status(Path(server.app_dir))
        restarts = status.get("restarts") or 0
        if restarts:
            return f"up, restarted {restarts}x (last exit code {status.get('last_exit_code')})"
        return "up"

    def logs(self, endpoint: Endpoint, follow: bool = False) -> Iterator[str]:
        path = Path(endpoint.provider_data.get("log") or self._endpoint_dir(endpoint.name) / "server.log")
        if not path.exists():
            raise BadInput(f"no log for {endpoint.name} at {path}")
        lines = LineMap(Path(endpoint.provider_data.get("app_dir") or "."))  # tracebacks name cells
        with open(path, encoding="utf-8", errors="replace") as fh:
            yield from map(lines.annotate, fh)
            while follow:
                line = fh.readline()
                if line:
                    yield lines.annotate(line)
                elif not self.is_running(endpoint):
                    return
                else:
                    time.sleep(0.2)


def env_digest(env: dict[str, str]) -> Optional[str]:
    """What the registry keeps of ``--env``: enough to see a change, never a value (None: no env)."""
    if not env:
        return None
    return hashlib.sha256(b"kagg-env-v1\0" + json.dumps(env, sort_keys=True).encode("utf-8")).hexdigest()


def identify_started(pid: int, app_dir: Path) -> Server:
    """The identity of a server just started (read again once it answers: /proc may still show
    the parent's command line for an instant after the fork)."""
    server = identify(pid)
    return server if server is not None else Server(pid, None, str(app_dir.resolve()))
