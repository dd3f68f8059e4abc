"""tests/support/tcpproxy.py's DelayProxy against tiny local TCP servers (echo and sink)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.tcpproxy import DelayProxy

GUARD = 30.0  # seconds a wait may take before the test fails as hung (not a timing assertion)


class Server:
    """A listening socket on 127.0.0.1 whose connections each run `handler` in a thread."""

    def __init__(self, handler: Callable[[socket.socket], None], rcvbuf: int = 0) -> None:
        self.handler = handler
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.errors: list[BaseException] = []
        self.conns: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError as e:
            self.errors.append(e)
        finally:
            conn.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._accepter.join(GUARD)
        for c in self.conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(GUARD)


def echo(conn: socket.socket) -> None:
    while data := conn.recv(65536):
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)


@pytest.fixture
def echo_server() -> Iterator[Server]:
    srv = Server(echo)
    yield srv
    srv.close()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        assert chunk, f"EOF after {len(buf)} of {n} bytes"
        buf += chunk
    return bytes(buf)


def recv_all(sock: socket.socket) -> bytes:
    buf = bytearray()
    while chunk := sock.recv(65536):
        buf += chunk
    return bytes(buf)


def wait_for(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD
    while not cond():
        assert time.monotonic() < deadline, f"hung waiting for {what}"
        time.sleep(0.005)


def connect(proxy: DelayProxy) -> socket.socket:
    s = socket.create_connection(proxy.address, timeout=GUARD)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def test_bytes_arrive_intact_both_ways(echo_server: Server) -> None:
    payload = os.urandom(1_000_000)
    with DelayProxy("127.0.0.1", echo_server.port, 0.002, 0.002) as proxy, connect(proxy) as s:
        sender = threading.Thread(target=lambda: (s.sendall(payload), s.shutdown(socket.SHUT_WR)))
        sender.start()
        got = recv_all(s)  # ends at the FIN the echo server sends after ours came through
        sender.join(GUARD)
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(payload).hexdigest()
        assert len(got) == len(payload)
        assert proxy.bytes_up == proxy.bytes_down == len(payload)
        assert proxy.connections_accepted == 1
        wait_for(lambda: proxy.active_connections == 0, "the proxy to close a connection ended both ways")
    assert not echo_server.errors


def test_delay_applies_each_way(echo_server: Server) -> None:
    delay = 0.05
    with DelayProxy("127.0.0.1", echo_server.port, delay_up=delay, delay_down=delay) as proxy, \
            connect(proxy) as s:
        for i in range(5):
            t0 = time.monotonic()
            s.sendall(bytes([i]) * 100)
            assert recv_exactly(s, 100) == bytes([i]) * 100
            rtt = time.monotonic() - t0
            assert rtt >= 2 * delay, f"round trip {rtt:.4f} s is shorter than both delays ({2 * delay} s)"
        # One direction only: the delay is per direction, not shared.
        proxy.delay_up, proxy.delay_down = 0.08, 0.0
        t0 = time.monotonic()
        s.sendall(b"x")
        assert recv_exactly(s, 1) == b"x"
        assert time.monotonic() - t0 >= 0.08


def test_backpressure_bounds_the_buffer() -> None:
    release = threading.Event()
    received: list[bytes] = []

    def sink(conn: socket.socket) -> None:
        release.wait(GUARD)
        received.append(recv_all(conn))

    srv = Server(sink, rcvbuf=64 * 1024)
    limit = 256 * 1024
    payload = os.urandom(48 * 1024 * 1024)
    try:
        with DelayProxy("127.0.0.1", srv.port, 0.001, 0.001, buffer_limit=limit) as proxy, connect(proxy) as s:
            s.setblocking(False)
            view = memoryview(payload)
            sent = 0
            deadline = time.monotonic() + GUARD
            # Push until the proxy's buffer is full (the sink reads nothing yet).
            while proxy.buffered_up < limit:
                assert time.monotonic() < deadline, f"buffer never filled: {proxy.buffered_up} of {limit}"
                try:
                    sent += s.send(view[sent:sent + 65536])
                except BlockingIOError:
                    time.sleep(0.005)
                assert sent < len(payload), "the whole payload went in: nothing pushed back"
            # It stays full and bounded while the sender keeps trying.
            for _ in range(50):
                with contextlib.suppress(BlockingIOError):
                    sent += s.send(view[sent:sent + 65536])
                time.sleep(0.002)
            assert proxy.buffered_up == limit
            assert proxy.peak_buffered_up <= limit
            assert sent < len(payload)
            # The sink reads: everything arrives intact, and the bound held all along.
            release.set()
            s.setblocking(True)
            s.sendall(view[sent:])
            s.shutdown(socket.SHUT_WR)
            wait_for(lambda: bool(received), "the sink to read to EOF")
            assert proxy.peak_buffered_up == limit
            assert proxy.bytes_up == len(payload)
    finally:
        release.set()
        srv.close()
    assert hashlib.sha256(received[0]).digest() == hashlib.sha256(payload).digest()


def test_reset_all_resets_the_client(echo_server: Server) -> None:
    with DelayProxy("127.0.0.1", echo_server.port, 0.001, 0.001) as proxy, connect(proxy) as s:
        s.sendall(b"hello")
        assert recv_exactly(s, 5) == b"hello"
        assert proxy.reset_all() == 1
        with pytest.raises(ConnectionResetError):
            s.sendall(b"more")
            s.recv(10)
        assert proxy.active_connections == 0
        # The target side was reset too, and the proxy still takes new connections.
        wait_for(lambda: bool(echo_server.errors), "the echo server to see the reset")
        assert isinstance(echo_server.errors[0], ConnectionResetError)
        with connect(proxy) as s2:
            s2.sendall(b"again")
            assert recv_exactly(s2, 5) == b"again"


def test_pause_holds_bytes_and_resume_lets_them_through(echo_server: Server) -> None:
    delay = 0.01
    with DelayProxy("127.0.0.1", echo_server.port, delay, delay) as proxy, connect(proxy) as s:
        s.sendall(b"ping")
        assert recv_exactly(s, 4) == b"ping"
        proxy.pause()
        s.sendall(b"held")
        wait_for(lambda: proxy.buffered_up == 4, "the proxy to read the held bytes")
        time.sleep(20 * delay)  # long past their due time: unpaused they would have gone
        assert proxy.bytes_up == 4
        assert proxy.buffered_up == 4
        s.setblocking(False)
        with pytest.raises(BlockingIOError):
            s.recv(10)
        s.setblocking(True)
        assert proxy.active_connections == 1
        proxy.resume()
        assert recv_exactly(s, 4) == b"held"
        wait_for(lambda: proxy.bytes_down == 8, "the proxy to count what it sent")
        assert proxy.bytes_up == 8


def test_refuse_resets_new_connections(echo_server: Server) -> None:
    with DelayProxy("127.0.0.1", echo_server.port, 0.001, 0.001) as proxy:
        with connect(proxy) as live:
            live.sendall(b"a")
            assert recv_exactly(live, 1) == b"a"
            proxy.refuse = True
            with pytest.raises(ConnectionResetError), connect(proxy) as s:  # at connect() or first read
                s.recv(10)
            live.sendall(b"b")  # a connection made before is not touched
            assert recv_exactly(live, 1) == b"b"
        proxy.refuse = False
        with connect(proxy) as s:
            s.sendall(b"c")
            assert recv_exactly(s, 1) == b"c"


def test_target_down_resets_the_client() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    with DelayProxy("127.0.0.1", port) as proxy, pytest.raises(ConnectionResetError), connect(proxy) as s:
        s.recv(10)


def test_many_connections_at_once(echo_server: Server) -> None:
    n = 100
    payloads = [os.urandom(64 * 1024) for _ in range(n)]
    results: list[bytes | None] = [None] * n

    with DelayProxy("127.0.0.1", echo_server.port, 0.005, 0.005) as proxy:
        def client(i: int) -> None:
            with connect(proxy) as s:
                t = threading.Thread(target=lambda: (s.sendall(payloads[i]), s.shutdown(socket.SHUT_WR)))
                t.start()
                results[i] = recv_all(s)
                t.join(GUARD)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(GUARD)
        assert results == payloads
        assert proxy.connections_accepted == n
        assert proxy.bytes_up == proxy.bytes_down == n * 64 * 1024
        wait_for(lambda: proxy.active_connections == 0, "every connection to close")
        port = proxy.port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=GUARD)
