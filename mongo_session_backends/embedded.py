"""Run the embedded SecantusDB server in a subprocess.

Used by the demo, the benchmark and the test suite when no MongoDB URI is
given, and by ``python -m mongo_session_backends.embedded``, which serves
one in the foreground for trying an app out. SecantusDB is an optional extra (``pip install
'mongo-session-backends[embedded]'``); it is never needed at run time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType

from .exceptions import ConfigurationError, ServerUnavailable

__all__ = ["EmbeddedServer", "free_port", "main"]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """On Linux, have the kernel stop the server if its parent dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedServer:
    """A SecantusDB server in a child process, on a loopback port.

    :param port: the port. Default: a free one.
    :param data_dir: the storage directory. Default: a temporary directory,
        removed by :meth:`stop`.
    :param host: the address to listen on. Default ``127.0.0.1``.
    :param start_timeout: seconds to wait for the server to answer. Default 30.
    """

    def __init__(
        self,
        port: int | None = None,
        data_dir: str | None = None,
        host: str = "127.0.0.1",
        start_timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="mongo-sessions-")
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        #: The server's own output (warnings and errors), a temporary file removed by :meth:`stop`.
        self.log_path: str | None = None

    @property
    def uri(self) -> str:
        """The server's ``mongodb://`` URI."""
        return f"mongodb://{self.host}:{self.port}/"

    def start(self) -> EmbeddedServer:
        """Start the server and wait until it accepts connections."""
        if importlib.util.find_spec("secantus") is None:
            raise ConfigurationError(
                "the embedded server needs SecantusDB: "
                "pip install 'mongo-session-backends[embedded]'"
            )
        command = [
            sys.executable, "-m", "secantus",
            "--host", self.host, "--port", str(self.port),
            "--storage-path", self.data_dir, "--log-level", "WARNING",
        ]  # fmt: skip
        with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), 0.5):
            raise ConfigurationError(f"something already listens on {self.host}:{self.port}")
        if self.log_path is not None:  # a restart after kill(): a fresh log
            with contextlib.suppress(OSError):
                os.remove(self.log_path)
        fd, self.log_path = tempfile.mkstemp(prefix="mongo-sessions-server-", suffix=".log")
        with os.fdopen(fd, "wb") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerUnavailable(
                    f"the embedded server exited with {self.process.returncode}: "
                    f"{self.last_output() or 'no output'}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ServerUnavailable("the embedded server did not start in time")

    def last_output(self, lines: int = 5) -> str:
        """The last ``lines`` lines the server wrote, for a message."""
        if self.log_path is None:
            return ""
        with contextlib.suppress(OSError), open(self.log_path, "rb") as log:
            tail = log.read().decode("utf-8", "replace").strip().splitlines()[-lines:]
            return " | ".join(tail)
        return ""

    def kill(self) -> None:
        """Kill the server with SIGKILL, keeping its data (for fault tests)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Stop the server and remove a temporary data directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            # Wake the server's accept loop, which a closed socket alone does not.
            with contextlib.suppress(OSError):
                socket.create_connection((self.host, self.port), timeout=0.5).close()
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.log_path is not None:
            with contextlib.suppress(OSError):
                os.remove(self.log_path)
            self.log_path = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m mongo_session_backends.embedded``: serve a test server until stopped.

    For trying an app out on a machine without MongoDB. Ctrl-C or SIGTERM
    stops it; a temporary data directory is removed then.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m mongo_session_backends.embedded",
        description="Run the embedded MongoDB-compatible test server (SecantusDB) in the "
        "foreground, for trying an app out; not for production.",
    )
    parser.add_argument("--port", type=int, default=27017, help="the port (default 27017)")
    parser.add_argument("--host", default="127.0.0.1", help="the address (default 127.0.0.1)")
    parser.add_argument(
        "--data-dir", help="keep the data in this directory (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, not {args.port}")
    server = EmbeddedServer(port=args.port, data_dir=args.data_dir, host=args.host)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.start()
        print(f"serving {server.uri} (data in {server.data_dir}); Ctrl-C stops it", flush=True)
        while server.process is not None and server.process.poll() is None:
            time.sleep(0.5)
        print(f"the server exited: {server.last_output() or 'no output'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except (ConfigurationError, ServerUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        server.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
