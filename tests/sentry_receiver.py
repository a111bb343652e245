"""A tiny Sentry ingestion endpoint (what sentry.io does on receipt, minus the rest): it keeps the raw bytes of
every envelope the SDK POSTs to /api/<project>/envelope/ (gzip, deflate or brotli undone) and the events in
them, parsed."""

import gzip
import json
import threading
import zlib
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _decoded(body: bytes, encoding: str) -> bytes:
    encoding = (encoding or "").strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # the SDK sends br only when the brotli module is installed: then it is here too

        return brotli.decompress(body)
    assert encoding in ("", "identity"), f"unknown Content-Encoding {encoding!r}"
    return body


def envelope_items(raw: bytes) -> list[tuple[dict, bytes]]:
    """(item header, payload) pairs of an envelope: a header line, then per item a header line and a payload
    of the given length (or up to the next newline)."""
    _, _, rest = raw.partition(b"\n")
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return items


@contextmanager
def sentry_receiver():
    received: list[dict] = []  # {"path", "raw", "events"}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            raw = _decoded(body, self.headers.get("Content-Encoding", ""))
            events = [json.loads(payload) for header, payload in envelope_items(raw) if header.get("type") == "event"]
            with lock:
                received.append({"path": self.path, "raw": raw, "events": events})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.dsn = f"http://public@127.0.0.1:{server.server_address[1]}/1"
    try:
        yield server
    finally:
        server.shutdown()
