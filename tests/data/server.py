"""A static HTTP server on 127.0.0.1 that honours Range requests, run in a thread by the download tests."""

from __future__ import annotations

import http.server
import re
import threading
from pathlib import Path


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    root: Path
    log: list[tuple[str, str | None]]
    cut_after: int | None = None  # send only this many body bytes, then drop the connection

    def do_GET(self) -> None:
        path = self.root / self.path.lstrip("/")
        self.log.append((self.path, self.headers.get("Range")))
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        start = int(match.group(1)) if match else 0
        if start >= len(body) and match:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.end_headers()
            return
        self.send_response(206 if match else 200)
        if match:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:] if self.cut_after is None else body[start:start + self.cut_after]
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


class Mirror:
    """Serves `root`; `url` is its base, `log` the (path, Range header) of each request."""

    def __init__(self, root: Path) -> None:
        handler = type("Handler", (_RangeHandler,), {"root": root, "log": []})
        self.handler = handler
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def log(self) -> list[tuple[str, str | None]]:
        return self.handler.log

    def cut_after(self, size: int | None) -> None:
        self.handler.cut_after = size

    def __enter__(self) -> Mirror:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
