"""A company's egress proxy, for the environment doctor's tests (tests/test_doctor_corporate.py).

A real TCP server on 127.0.0.1 that speaks HTTP proxy: tunnels (CONNECT) for HTTPS, absolute-URI
requests for plain HTTP. Whatever host is asked for, the upstream is the one given (the devstack), so the
registry's public name (registry.hokus.ai) resolves nowhere but here. Modes:

- "tunnel": a plain tunnel (a proxy that lets the registry through);
- "auth": 407 Proxy Authentication Required unless the request carries `credentials` (Basic), then `then`;
- "block": 403 and a block page; "bad_gateway": 502; "close": closes the connection without answering;
- "inspect": TLS inspection: answers the tunnel with 200, then presents a certificate for the asked host
  signed by `ca` (a trustme CA made at test time), reads the request in the clear and relays it upstream;
- "transparent": inspection without a proxy setting: TLS on the first byte, a certificate for localhost
  signed by `ca` (the developer connects to https://localhost:<port> as if it were the registry).
"""

import base64
import socket
import socketserver
import ssl
import threading

import trustme

BLOCK_PAGE = (
    b"<html><head><title>Blocked</title></head><body><h1>Access denied</h1>"
    b"<p>This site is blocked by your company's web policy.</p></body></html>"
)
STATUS_LINES = {
    "auth": b"HTTP/1.1 407 Proxy Authentication Required",
    "block": b"HTTP/1.1 403 Forbidden",
    "bad_gateway": b"HTTP/1.1 502 Bad Gateway",
}


def _read_head(stream) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = stream.recv(1)
        if not chunk:
            break
        head += chunk
        if len(head) > 65536:
            break
    return head


def _relay_one_request(client, upstream_address) -> None:
    """Read one request from `client`, send it upstream (closing), send the whole answer back."""
    head = _read_head(client)
    if not head:
        return
    lines = head.split(b"\r\n")
    method, target, version = lines[0].split(b" ", 2)
    if target.startswith(b"http://"):  # absolute URI (plain HTTP through a proxy): the path only upstream
        target = b"/" + target.split(b"/", 3)[3] if target.count(b"/") >= 3 else b"/"
    dropped = (b"connection:", b"proxy-authorization:", b"proxy-connection:", b"host:")
    headers = [line for line in lines[1:] if line and not line.lower().startswith(dropped)]
    headers.append(b"Host: %s:%d" % (upstream_address[0].encode(), upstream_address[1]))  # the stand-in's name
    length = next((int(line.split(b":", 1)[1]) for line in headers if line.lower().startswith(b"content-length:")), 0)
    body = head.split(b"\r\n\r\n", 1)[1]
    while len(body) < length:
        chunk = client.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    with socket.create_connection(upstream_address, timeout=30) as upstream:
        upstream.sendall(b" ".join([method, target, version]) + b"\r\n")
        upstream.sendall(b"\r\n".join(headers + [b"Connection: close"]) + b"\r\n\r\n" + body)
        while True:
            chunk = upstream.recv(65536)
            if not chunk:
                break
            client.sendall(chunk)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        proxy: CorporateProxy = self.server.proxy
        client = self.request
        client.settimeout(30)
        if proxy.mode == "transparent":  # no CONNECT: the network intercepts the connection itself
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            proxy.ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
            try:
                with context.wrap_socket(client, server_side=True) as tls:
                    _relay_one_request(tls, proxy.upstream)
            except (ssl.SSLError, OSError):
                pass
            return
        head = _read_head(client)
        if not head:
            return
        first = head.split(b"\r\n", 1)[0]
        proxy.requests.append(first.decode("latin-1"))
        authorization = next(
            (
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")[1:]
                if line.lower().startswith(b"proxy-authorization:")
            ),
            None,
        )
        proxy.authorizations.append(authorization)
        mode = proxy.mode
        if mode == "auth" and proxy.credentials:
            expected = b"Basic " + base64.b64encode(proxy.credentials.encode())
            mode = proxy.then if authorization == expected else "auth"
        if mode == "close":
            return
        if mode in STATUS_LINES:
            extra = b'Proxy-Authenticate: Basic realm="corp"\r\n' if mode == "auth" else b""
            client.sendall(
                STATUS_LINES[mode] + b"\r\n" + extra + b"Content-Type: text/html\r\n"
                b"Content-Length: " + str(len(BLOCK_PAGE)).encode() + b"\r\nConnection: close\r\n\r\n" + BLOCK_PAGE
            )
            return
        if not first.startswith(b"CONNECT "):  # plain HTTP through the proxy
            _relay_one_request(client, proxy.upstream)
            return
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        host = first.split(b" ")[1].rsplit(b":", 1)[0].decode()
        if mode == "inspect":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            proxy.ca.issue_cert(host).configure_cert(context)
            try:
                with context.wrap_socket(client, server_side=True) as tls:
                    _relay_one_request(tls, proxy.upstream)
            except (ssl.SSLError, OSError):
                pass  # the client refused our certificate: that is the point
            return
        _relay_one_request(client, proxy.upstream)  # a tunnel to a plain-HTTP upstream is only used inspected


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class CorporateProxy:
    """Start with `with CorporateProxy(mode, upstream=(host, port)) as proxy:`; `proxy.url(user, password)`."""

    def __init__(
        self, mode: str, *, upstream: tuple[str, int] = ("127.0.0.1", 9), credentials: str = "", then: str = "tunnel"
    ):
        """`credentials` ("user:password") let a request through an "auth" proxy, which then acts as `then`."""
        self.mode, self.upstream, self.credentials, self.then = mode, upstream, credentials, then
        self.ca = trustme.CA(organization_name="Example Corp", organization_unit_name="Inspecting Proxy CA")
        self.requests: list[str] = []
        self.authorizations: list[bytes | None] = []
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.proxy = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, user: str = "", password: str = "") -> str:
        credentials = f"{user}:{password}@" if user else ""
        return f"http://{credentials}127.0.0.1:{self.port}"

    def write_ca(self, path) -> str:
        """The company CA as a PEM file (what IT hands out, or what sits in the system's store)."""
        self.ca.cert_pem.write_to_path(str(path))
        return str(path)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
