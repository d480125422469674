"""A local Alpha Vantage: a real HTTP server on 127.0.0.1 whose answers come from a test's fake.

The fake has `answer(query) -> (status, body)`, given the query string as a dict; tests swap
`stub.fake` between tests and keep one server per module.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlsplit


class Answers(Protocol):
    def answer(self, query: dict[str, str]) -> tuple[int, bytes]: ...


def json_answer(payload: object) -> tuple[int, bytes]:
    """A 200 answer with `payload` as its JSON body."""
    return 200, json.dumps(payload).encode()


class _Handler(BaseHTTPRequestHandler):
    server: AlphaVantageStub

    def do_GET(self) -> None:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
        status, body = self.server.fake.answer(query)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up waiting (a timeout test)

    def log_message(self, format: str, *args: object) -> None:
        pass


class AlphaVantageStub(ThreadingHTTPServer):
    """Bound on construction, serving inside `with`; `base_url` is what the client is pointed at."""

    daemon_threads = True

    def __init__(self, fake: Answers) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/query"

    def __enter__(self) -> AlphaVantageStub:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
