"""The relay under load: both sides sending megabytes at once must neither deadlock nor lose a byte
(a server streaming a large FETCH while the tool uploads a large APPEND)."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading

from mailpin.net.channel import Channel, Deadline
from mailpin.net.tunnel import relay

SIZE = 6_000_000  # well beyond every socket and TLS buffer on the way


def test_both_directions_at_once_arrive_whole(pki) -> None:
    cert = pki.cert("good")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert.chain_pem, cert.key_pem)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    to_tool, to_server = bytes(range(256)) * (SIZE // 256), bytes(reversed(range(256))) * (SIZE // 256)
    got: dict[str, bytes] = {}

    def server() -> None:
        raw, _ = listener.accept()
        with server_ctx.wrap_socket(raw, server_side=True) as tls:
            tls.sendall(to_tool)  # writes everything before reading a byte, as a busy server may
            data = bytearray()
            while len(data) < len(to_server) and (chunk := tls.recv(65536)):
                data += chunk
            got["server"] = bytes(data)

    serving = threading.Thread(target=server, daemon=True)
    serving.start()
    client_ctx = ssl.create_default_context(cafile=str(pki.ca_pem))
    tls = client_ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    tool_in, relay_in = socket.socketpair()
    relay_out, tool_out = socket.socketpair()

    def tool() -> None:
        writer = threading.Thread(target=tool_in.sendall, args=(to_server,), daemon=True)
        writer.start()
        data = bytearray()
        while len(data) < len(to_tool) and (chunk := tool_out.recv(65536)):
            data += chunk
        got["tool"] = bytes(data)
        writer.join(30)
        tool_in.shutdown(socket.SHUT_WR)

    using = threading.Thread(target=tool, daemon=True)
    using.start()
    relaying = threading.Thread(
        target=relay, args=(Channel(tls, Deadline(30)), b"", relay_in.fileno(), relay_out.fileno())
    )
    relaying.start()
    relaying.join(60)
    assert not relaying.is_alive(), "the relay is stuck"
    using.join(10)
    serving.join(10)
    assert hashlib.sha256(got.get("tool", b"")).digest() == hashlib.sha256(to_tool).digest()
    assert hashlib.sha256(got.get("server", b"")).digest() == hashlib.sha256(to_server).digest()
    for sock in (tls, tool_in, relay_in, relay_out, tool_out, listener):
        sock.close()
