"""A small HTTP server on 127.0.0.1 for download tests: serves byte strings by path, and can be told
to fail a path a number of times first or to cut a transfer short."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Routes:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, int] = {}  # path → how many requests answer 500 first
        self.truncate: set[str] = set()  # paths whose body is cut in half
        self.requests: list[str] = []


def make_handler(routes: Routes):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            routes.requests.append(self.path)
            if routes.failures.get(self.path, 0) > 0:
                routes.failures[self.path] -= 1
                self.send_error(500, "injected failure")
                return
            body = routes.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if self.path in routes.truncate else body)

        def log_message(self, *args):
            pass

    return Handler


@contextmanager
def serve(routes: Routes):
    """Yield the base URL of a server for `routes`, on a free port of 127.0.0.1."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(routes))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
