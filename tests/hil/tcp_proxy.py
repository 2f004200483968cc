"""A TCP proxy on 127.0.0.1 that damages the serial stream on request.

It sits between the DeviceClient and QEMU's UART server, so protocol faults
(corrupted bytes, injected stale frames, garbage, fragmented frames) reach
the real firmware and the real client.
"""

from __future__ import annotations

import select
import socket
import threading
import time


class FaultProxy:
    """Forward 127.0.0.1:`port` to `target_port`; faults apply once each."""

    def __init__(self, target_port: int) -> None:
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.url = f"socket://127.0.0.1:{self.port}"
        self.target_port = target_port
        self.lock = threading.Lock()
        # Fault switches, each used once.  flip_next_*: invert the byte that
        # many bytes into the stream after the switch is set (the device
        # sends byte by byte, so one frame spans many TCP segments).
        self.flip_next_to_device: int | None = None
        self.flip_next_to_host: int | None = None
        self.inject_to_host: bytes = b""
        self.inject_to_device: bytes = b""
        self.fragment_to_host = False  # send device data one byte per segment
        self.bytes_to_host = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        client, _ = self.listener.accept()
        device = _connect_with_retry(self.target_port)
        for sock in (client, device):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([client, device], [], [], 0.05)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is client:
                        device.sendall(self._to_device(data))
                    else:
                        self._send_to_host(client, self._to_host(data))
        finally:
            client.close()
            device.close()

    def _to_device(self, data: bytes) -> bytes:
        with self.lock:
            data, self.flip_next_to_device = _flip_countdown(data, self.flip_next_to_device)
            prefix, self.inject_to_device = self.inject_to_device, b""
        return prefix + data

    def _to_host(self, data: bytes) -> bytes:
        with self.lock:
            data, self.flip_next_to_host = _flip_countdown(data, self.flip_next_to_host)
            prefix, self.inject_to_host = self.inject_to_host, b""
        return prefix + data

    def _send_to_host(self, client: socket.socket, data: bytes) -> None:
        self.bytes_to_host += len(data)
        if not self.fragment_to_host:
            client.sendall(data)
            return
        for index in range(len(data)):
            client.sendall(data[index : index + 1])

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(timeout=2)


def _connect_with_retry(port: int, timeout_s: float = 10.0) -> socket.socket:
    # QEMU opens its UART server a moment after the process starts.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port))
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _flip_countdown(data: bytes, countdown: int | None) -> tuple[bytes, int | None]:
    """Invert byte `countdown` of the stream if it falls in `data`; return the new countdown."""
    if countdown is None:
        return data, None
    if countdown >= len(data):
        return data, countdown - len(data)
    damaged = bytearray(data)
    damaged[countdown] ^= 0xFF
    return bytes(damaged), None
