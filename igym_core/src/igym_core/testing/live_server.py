"""A real ``igym run`` server in a child process, for end-to-end tests of igym and its plugins.

::

    from igym_core.testing import LiveServer

    def test_my_scene_in_a_real_server(tmp_path):
        study = "my_plugin.studies:experiment"
        with LiveServer(study, tmp_path / "data", plugins=["my_plugin.plugin"]) as server:
            page.goto(f"{server.url}/?PROLIFIC_PID=abc")
            ...
        assert "Traceback" not in server.log()

The server listens on a free loopback port, logs JSON lines to :attr:`LiveServer.log_path`, and
runs with an operator token of its own (:attr:`LiveServer.operator_token`, which :meth:`stats`
sends). The constructor returns once ``/health`` answers, or raises with the server's log.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["LiveServer", "free_port"]

#: How many ports :class:`LiveServer` tries when the one it picked is taken before the server binds it.
_BIND_ATTEMPTS = 3


class _PortTaken(Exception):
    """The server exited because its port was taken (after :func:`free_port` found it free)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """``igym run TARGET`` in a child process on a free loopback port; stop it with :meth:`stop`
    (or use it as a context manager)."""

    def __init__(
        self,
        target: str,
        data_dir: Path,
        *,
        plugins: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        args: Sequence[str] = (),
        command: Sequence[str] | None = None,
        log_path: Path | None = None,
        ready_timeout_s: float = 60.0,
    ) -> None:
        """
        ``target``: what ``igym run`` serves (``module:attribute``, ``path.py:attribute``, a TOML or
        JSON file). ``data_dir``: its ``--data-dir``.
        ``plugins``: load only these plugins (``--plugin`` each, entry points off); ``None`` loads
        every installed plugin, as ``igym run`` does.
        ``env``: added to this process's environment (``IGYM_*`` settings; ``IGYM_OPERATOR_TOKEN``
        replaces the random token). ``cwd``: the child's working directory (default: this one's).
        ``args``: more ``igym run`` arguments. ``command``: how to start igym (default: this
        interpreter's ``-m igym_core.cli``). ``log_path``: the server's output (default:
        ``server-<port>.log`` beside ``data_dir``).
        """
        self.target = target
        self.data_dir = Path(data_dir)
        self._given_log_path = Path(log_path) if log_path else None
        #: The operator token the server runs with (``/stats`` needs it; see :meth:`stats`).
        self.operator_token = (env or {}).get("IGYM_OPERATOR_TOKEN", secrets.token_urlsafe(24))
        full_env = {
            **os.environ,
            "IGYM_LOG_FORMAT": "json",
            **(env or {}),
            "IGYM_OPERATOR_TOKEN": self.operator_token,
        }
        plugin_args: list[str] = []
        if plugins is not None:
            full_env["IGYM_DISABLE_PLUGIN_AUTOLOAD"] = "1"
            plugin_args = [arg for plugin in plugins for arg in ("--plugin", plugin)]
        # The free port can be taken between the probe and the server's bind (tests run in parallel:
        # another test's server, or a client's ephemeral port): a server that could not bind is
        # started again on another port, a few times.
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            self._start(
                [*(command or [sys.executable, "-m", "igym_core.cli"]), "run", target],
                [*plugin_args, *args],
                cwd,
                full_env,
            )
            try:
                self._wait_ready(ready_timeout_s)
                return
            except _PortTaken:
                self.stop()
                if attempt == _BIND_ATTEMPTS:
                    raise RuntimeError(
                        f"igym run could not bind a free port in {_BIND_ATTEMPTS} attempts:\n{self.log()}"
                    ) from None
            except BaseException:
                self.stop()
                raise

    def _start(self, run: list[str], extra: list[str], cwd: Path | None, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self._given_log_path or self.data_dir.parent / f"server-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[str] = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*run, "--port", str(self.port), "--data-dir", str(self.data_dir), *extra],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "address already in use" in self.log().lower():
                    raise _PortTaken
                raise RuntimeError(f"igym run exited with {self.process.returncode}:\n{self.log()}")
            # Ready when /health answers and the server is this one: it knows this operator token
            # (another test's server on the port would refuse it). With an empty token the server
            # makes its own, so /health has to do.
            if self._answers("/health") == 200 and (
                not self.operator_token or self._answers("/stats", token=True) == 200
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"igym run did not become healthy in {timeout_s:g} s:\n{self.log()}")

    def _answers(self, path: str, *, token: bool = False) -> int | None:
        """The HTTP status of ``GET path`` (None when nothing answers)."""
        headers = {"Authorization": f"Bearer {self.operator_token}"} if token else {}
        try:
            with urllib.request.urlopen(
                urllib.request.Request(self.url + path, headers=headers), timeout=1
            ) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            exc.close()  # its response, which would otherwise be left open (a ResourceWarning)
            return int(exc.code)
        except OSError:
            return None

    def stats(self) -> dict[str, Any]:
        """``GET /stats`` with the operator token."""
        request = urllib.request.Request(
            f"{self.url}/stats", headers={"Authorization": f"Bearer {self.operator_token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def log(self) -> str:
        """What the server has written to its log so far."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        """SIGTERM (the server's graceful shutdown), SIGKILL after 10 s; safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
