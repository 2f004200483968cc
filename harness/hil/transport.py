"""Opening the serial link to a device with pyserial.

`serial.serial_for_url` makes one code path for a real port
("/dev/ttyACM0"), QEMU's TCP serial ("socket://127.0.0.1:PORT") and a
remote port ("rfc2217://host:port").
"""

from __future__ import annotations

import functools
import logging
import socket
import time

import serial
import serial.tools.list_ports

from harness.errors import ConfigError, DeviceError
from harness.hil.boards import BoardProfile

logger = logging.getLogger(__name__)


def device_logger(name: str) -> logging.Logger:
    """Return the logger of one device: `harness.hil.device.<name>`."""
    return logging.getLogger(f"harness.hil.device.{name}")


def open_url(url: str, baud: int = 115200, *, connect_timeout_s: float = 10.0) -> serial.SerialBase:
    """Open `url` with pyserial, retrying while a TCP server is still starting."""
    deadline = time.monotonic() + connect_timeout_s
    while True:
        try:
            port = serial.serial_for_url(url, baudrate=baud, timeout=0.5)
        except serial.SerialException as err:
            if time.monotonic() >= deadline:
                raise DeviceError(f"cannot open serial URL {url} within {connect_timeout_s:.0f} s: {err}") from err
            time.sleep(0.05)
            continue
        # pyserial's socket:// leaves Nagle's algorithm on, so a small request
        # written right after another waits for the peer's delayed ACK (about
        # 40 ms on Linux); QEMU's side already sets nodelay=on.
        raw_socket = getattr(port, "_socket", None)
        if raw_socket is not None:
            raw_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # pyserial's socket close sleeps 0.3 s afterwards, for servers
            # that need time before a reconnect. Every emulator here is used
            # by one connection, so the pause only lengthens each device run.
            port.close = functools.partial(_close_socket_port, port)
        return port


def _close_socket_port(port: serial.SerialBase) -> None:
    """Close a socket:// port as pyserial does, without its 0.3 s pause."""
    if not port.is_open:
        return
    raw_socket = port._socket
    if raw_socket is not None:
        try:
            raw_socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the emulator already closed its end
        raw_socket.close()
        port._socket = None
    port.is_open = False


def resolve_board_url(profile: BoardProfile, port: str | None = None) -> str:
    """Return the serial port of a real board.

    Order: the explicit `port`, the profile's `serial.port`, then the port
    whose USB serial number equals the profile's `serial.usb_serial_number`.
    """
    if port:
        return port
    if profile.serial.port:
        return profile.serial.port
    wanted = profile.serial.usb_serial_number
    if wanted:
        for info in serial.tools.list_ports.comports():
            if info.serial_number == wanted:
                logger.info("board %s: USB serial number %s is %s", profile.name, wanted, info.device)
                return info.device
        raise DeviceError(
            f"board {profile.name}: no serial port with USB serial number {wanted}; is the board attached?"
        )
    raise ConfigError(
        f"{profile.path}: field 'serial.port' or 'serial.usb_serial_number' must be set to reach "
        f"the real board {profile.name}, or pass --port"
    )
