"""A TCP proxy on loopback: the rehearsal's stand-in for the Site-to-Site VPN.

The AWS side of the rehearsal reaches the on-prem source database only through this
proxy, as the payment API reaches it through the VPN in production. It forwards bytes
unchanged (TLS runs end to end through it), and it can fail the way a network path
fails:

- :meth:`TcpProxy.cut`: every open connection is reset and new ones are reset as soon
  as they are accepted (the tunnel is down); :meth:`TcpProxy.restore` brings it back.
- :meth:`TcpProxy.set_delay`: every chunk forwarded from the server to the client
  waits that long first (a slow path, or a slow database).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from types import TracebackType

#: Bytes read per ``recv``.
CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a peer that drops the connection does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Forward 127.0.0.1:<port> to a target address, with a cut and a delay switch."""

    def __init__(self, target_host: str, target_port: int, name: str = "proxy") -> None:
        """Describe the proxy; nothing listens until :meth:`start`."""
        self.target = (target_host, target_port)
        self.name = name
        self.port = 0
        self.accepted = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = threading.Event()
        self._delay = 0.0
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> TcpProxy:
        """Listen on a free loopback port and accept in a thread; return self."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._thread = threading.Thread(
            target=self._accept, name=f"{self.name}-accept", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and close every connection. Safe to call twice."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self._close_all()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> TcpProxy:
        """Start on entering a ``with`` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on leaving a ``with`` block, whatever happened."""
        self.stop()

    # ------------------------------------------------------------------ faults

    @property
    def is_cut(self) -> bool:
        """Whether the path is down."""
        return self._cut.is_set()

    def cut(self) -> None:
        """Take the path down: reset every open connection and every new one."""
        self._cut.set()
        self._close_all()

    def restore(self) -> None:
        """Bring the path back; new connections are forwarded again."""
        self._cut.clear()

    def set_delay(self, seconds: float) -> None:
        """Delay each chunk from the server by `seconds` (0 turns the delay off)."""
        if seconds < 0:
            raise ValueError(f"delay: must be >= 0, got {seconds}")
        self._delay = seconds

    # ------------------------------------------------------------------ forwarding

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _reset(sock)

    def _accept(self) -> None:
        while self._listener is not None:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            self.accepted += 1
            if self._cut.is_set():
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._open |= {client, server}
            for source, sink, delayed in ((client, server, False), (server, client, True)):
                threading.Thread(
                    target=self._pump, args=(source, sink, delayed), daemon=True,
                    name=f"{self.name}-pump",
                ).start()  # fmt: skip

    def _pump(self, source: socket.socket, sink: socket.socket, delayed: bool) -> None:
        """Copy one direction until either side closes; then close both."""
        try:
            while True:
                data = source.recv(CHUNK)
                if not data or self._cut.is_set():
                    break
                if delayed and self._delay:
                    time.sleep(self._delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open -= {source, sink}
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()
