"""What every stand-in server in tests/ shares: a threaded HTTP server on 127.0.0.1 whose
requests, of every method, go to one ``serve(handler)`` callable."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that does not print a traceback for a client that hung up before
    its answer (a test of kagg's timeouts): that is not the server's error."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """``serve`` gets each request's handler; ``url`` is the base URL once made. Stand-ins
    subclass it and pass their own request method."""

    def __init__(self, serve: Callable[[BaseHTTPRequestHandler], None]):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def _any(self) -> None:
                serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self):
        """Start serving; returns the server, so ``Server().start()`` reads as one step."""
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
