"""Host side of the firmware's serial protocol.

Frame layout (little-endian; the device side is firmware/include/protocol.h
and both must change together)::

    offset  size  field
    0       2     magic 0xA5 0x5A
    2       2     payload length N (at most MAX_PAYLOAD)
    4       1     command (a reply sets bit 7)
    5       1     sequence number, echoed by the device
    6       N     payload
    6+N     4     CRC-32 (zlib.crc32) of bytes 2 .. 5+N

`DeviceClient` sends one request at a time and waits for the frame with the
same sequence number.  It skips garbage and frames with a bad CRC, and
resynchronizes on the next magic.  It ignores replies with a stale sequence
number and retries on timeout or CRC error with a fresh sequence number.
A boot announcement in the middle of a request raises
`DeviceRestartedError`, because the device has then lost its loaded input.
"""

from __future__ import annotations

import enum
import logging
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import serial

from harness.errors import DeviceError, DeviceTimeoutError

MAGIC = b"\xa5\x5a"
HEADER_BYTES = 6
CRC_BYTES = 4
MAX_PAYLOAD = 1024
PROTOCOL_VERSION = 1
REPLY_FLAG = 0x80
LOAD_CHUNK_BYTES = MAX_PAYLOAD - 4
RECEIVED_TAIL_BYTES = 256
MAX_RANK = 6  # RUNTIME_MAX_RANK in firmware/include/runtime.h


class Command(enum.IntEnum):
    IDENTIFY = 0x01
    LOAD_INPUT = 0x02
    RUN = 0x03
    MEMORY = 0x04
    CALIBRATE = 0x05
    RESET = 0x06
    EXIT = 0x07
    INPUT_FILE = 0x08  # emulated builds: open a host file of inputs (semihosting)
    LOAD_INPUT_FILE = 0x09  # emulated builds: load one input from that file
    BOOT = 0x7E
    ERROR = 0x7F


class ErrorCode(enum.IntEnum):
    CRC = 1
    LENGTH = 2
    UNKNOWN_COMMAND = 3
    BAD_PAYLOAD = 4
    INPUT_INCOMPLETE = 5
    INVOKE_FAILED = 6
    UNSUPPORTED = 7
    TIMEOUT = 8


# Device errors that mean the request was damaged in transit: resend it.
TRANSPORT_ERRORS = (ErrorCode.CRC, ErrorCode.LENGTH, ErrorCode.TIMEOUT)


class CyclesSource(enum.IntEnum):
    """Kind of the device's cycle counter, sent in the identify reply."""

    SYSTICK_ICOUNT = 0
    DWT_CYCCNT = 1


class DeviceRestartedError(DeviceError):
    """The device sent a boot announcement while a request was in flight."""


class DeviceReportedError(DeviceError):
    """Error frame the device sent in reply to a request."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Frame:
    command: int
    sequence: int
    payload: bytes


@dataclass(frozen=True)
class Identity:
    """The identify reply: what firmware and model the device runs."""

    protocol_version: int
    cycles_source: CyclesSource
    max_payload: int
    input_bytes: int
    output_bytes: int
    arena_bytes: int
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    clock_hz: int
    input_shape: tuple[int, ...]  # NHWC; empty when the firmware was built without export.json
    output_shape: tuple[int, ...]
    board: str
    runtime: str
    firmware_version: str
    model_hash: str


@dataclass(frozen=True)
class DeviceMemory:
    """The memory reply: arena and stack use measured on the device, in bytes."""

    arena_bytes: int
    arena_used_bytes: int
    stack_bytes: int
    stack_high_water_bytes: int


@dataclass(frozen=True)
class RunResult:
    """One inference: int8 output (shape: output elements) and counter ticks."""

    output: np.ndarray
    cycles: int
    status: int


def encode_frame(command: int, sequence: int, payload: bytes = b"") -> bytes:
    """Build one frame (layout in the module docstring)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is over the maximum of {MAX_PAYLOAD}")
    body = struct.pack("<HBB", len(payload), command, sequence & 0xFF) + payload
    return MAGIC + body + struct.pack("<I", zlib.crc32(body))


class FrameDecoder:
    """Incremental frame parser over a byte stream with resynchronization.

    `feed()` takes any slice of the stream (a frame may span several reads)
    and returns the complete frames found.  Garbage before a magic is
    dropped.  A frame with a bad CRC or an oversized length is dropped too,
    and the search restarts one byte after its magic.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.dropped_bytes = 0
        self.crc_errors = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames = []
        while True:
            start = self.buffer.find(MAGIC)
            if start < 0:
                # Keep a trailing first magic byte: its partner may come next.
                keep = 1 if self.buffer.endswith(MAGIC[:1]) else 0
                self.dropped_bytes += len(self.buffer) - keep
                del self.buffer[: len(self.buffer) - keep]
                return frames
            if start:
                self.dropped_bytes += start
                del self.buffer[:start]
            if len(self.buffer) < HEADER_BYTES:
                return frames
            length, command, sequence = struct.unpack_from("<HBB", self.buffer, 2)
            if length > MAX_PAYLOAD:
                self.crc_errors += 1
                del self.buffer[:1]
                continue
            total = HEADER_BYTES + length + CRC_BYTES
            if len(self.buffer) < total:
                return frames
            body = bytes(self.buffer[2 : HEADER_BYTES + length])
            (crc,) = struct.unpack_from("<I", self.buffer, HEADER_BYTES + length)
            if crc != zlib.crc32(body):
                self.crc_errors += 1
                del self.buffer[:1]
                continue
            frames.append(Frame(command, sequence, bytes(self.buffer[HEADER_BYTES : HEADER_BYTES + length])))
            del self.buffer[:total]


def _split_strings(data: bytes, count: int) -> list[str]:
    parts = data.split(b"\0")
    if len(parts) < count:
        raise DeviceError(f"identify reply has {len(parts)} strings, expected {count}: {data!r}")
    return [part.decode("ascii", errors="replace") for part in parts[:count]]


class DeviceClient:
    """Request/reply client for one device over a pyserial port.

    `port` is anything with pyserial's `read`, `write`, `in_waiting` and
    `timeout` (a real port, `socket://` to QEMU, `rfc2217://`).  Every log
    line goes to the logger `harness.hil.device.<name>`.
    """

    def __init__(
        self,
        port,
        name: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.port = port
        self.name = name
        self.timeout_s = timeout_s
        self.retries = retries
        self.log = logging.getLogger(f"harness.hil.device.{name}")
        self.decoder = FrameDecoder()
        self.sequence = 0
        self.boots_seen = 0
        self.retries_done = 0
        self.identity: Identity | None = None
        # Set by check_model(); checked again after every device restart.
        self.expected_model_hash: str | None = None
        self.input_file: Path | None = None  # opened by open_input_file
        # Raw bytes received during the current request (at most the last
        # RECEIVED_TAIL_BYTES), for error messages; garbage is kept here even
        # though the decoder drops it.
        self.received = bytearray()

    # -- frame level -------------------------------------------------------

    def _next_sequence(self) -> int:
        self.sequence = (self.sequence + 1) & 0xFF
        return self.sequence

    def wait_for_boot(self, timeout_s: float | None = None) -> None:
        """Wait for the boot announcement a freshly started device sends."""
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        while time.monotonic() < deadline:
            for frame in self._read_frames(deadline):
                if frame.command == Command.BOOT:
                    self.boots_seen += 1
                    self.log.info("device booted: %r", frame.payload[1:].split(b"\0")[0].decode(errors="replace"))
                    return
        raise DeviceTimeoutError(
            f"{self.name}: no boot announcement within {timeout_s or self.timeout_s:.1f} s; "
            f"receive buffer: {bytes(self.received)!r}"
        )

    def _read_frames(self, deadline: float) -> list[Frame]:
        remaining = max(0.0, deadline - time.monotonic())
        self.port.timeout = min(remaining, 0.5)
        try:
            data = self.port.read(max(1, self.port.in_waiting))
        except serial.SerialException as err:
            # An emulator that exits or a board unplugged mid-session.
            raise DeviceError(
                f"{self.name}: serial link failed: {err}; receive buffer: {bytes(self.received)!r}"
            ) from err
        if not data:
            return []
        self.received += data
        del self.received[:-RECEIVED_TAIL_BYTES]
        return self.decoder.feed(data)

    def _exchange_once(self, command: Command, payload: bytes) -> Frame:
        sequence = self._next_sequence()
        self.received.clear()
        try:
            self.port.write(encode_frame(command, sequence, payload))
        except serial.SerialException as err:
            raise DeviceError(f"{self.name}: serial link failed while sending {command.name}: {err}") from err
        deadline = time.monotonic() + self.timeout_s
        crc_errors_before = self.decoder.crc_errors
        while time.monotonic() < deadline:
            for frame in self._read_frames(deadline):
                if frame.command == Command.BOOT:
                    self.boots_seen += 1
                    self.identity = None
                    raise DeviceRestartedError(
                        f"{self.name}: device restarted during {command.name} (sequence {sequence})"
                    )
                if frame.command == Command.ERROR and frame.payload and frame.payload[0] in TRANSPORT_ERRORS:
                    # Only this request is in flight, so a transport error is
                    # about it even when the damage hit the sequence byte.
                    reason = ErrorCode(frame.payload[0]).name
                    raise _Retry(f"device reported a {reason} error on {command.name}")
                if frame.sequence != sequence:
                    self.log.warning(
                        "dropped frame with stale sequence %d (command 0x%02x) while waiting for %d",
                        frame.sequence, frame.command, sequence,
                    )
                    continue
                if frame.command == Command.ERROR:
                    code = frame.payload[0] if frame.payload else 0
                    message = frame.payload[2:].decode("ascii", errors="replace")
                    raise DeviceReportedError(
                        f"{self.name}: {command.name} failed on the device: {message} (code {code})", code
                    )
                if frame.command != command | REPLY_FLAG:
                    raise DeviceError(
                        f"{self.name}: reply to {command.name} has command 0x{frame.command:02x}, "
                        f"expected 0x{command | REPLY_FLAG:02x}"
                    )
                return frame
            if self.decoder.crc_errors > crc_errors_before:
                # The reply arrived damaged; do not wait for the full timeout.
                raise _Retry(f"reply to {command.name} failed its CRC check")
        raise DeviceTimeoutError(
            f"{self.name}: no reply to {command.name} (sequence {sequence}) within {self.timeout_s:.1f} s; "
            f"receive buffer: {bytes(self.received)!r}"
        )

    def request(self, command: Command, payload: bytes = b"") -> Frame:
        """Send a request and return its reply, retrying on timeout or CRC error."""
        for attempt in range(self.retries + 1):
            try:
                return self._exchange_once(command, payload)
            except (_Retry, DeviceTimeoutError) as err:
                if attempt == self.retries:
                    if isinstance(err, DeviceTimeoutError):
                        raise
                    raise DeviceError(
                        f"{self.name}: {command.name} failed after {self.retries + 1} attempts: {err}; "
                        f"receive buffer: {bytes(self.received)!r}"
                    ) from err
                self.retries_done += 1
                self.log.warning("retrying %s (attempt %d of %d): %s", command.name, attempt + 2, self.retries + 1, err)
        raise AssertionError("unreachable")

    # -- commands ----------------------------------------------------------

    def identify(self) -> Identity:
        payload = self.request(Command.IDENTIFY).payload
        numbers = struct.unpack_from("<BBHIIIfifiI", payload, 0)
        input_rank, output_rank = payload[36], payload[37]
        dims = struct.unpack_from(f"<{2 * MAX_RANK}H", payload, 38)
        board, runtime, version, model_hash = _split_strings(payload[38 + 4 * MAX_RANK :], 4)
        identity = Identity(
            protocol_version=numbers[0],
            cycles_source=CyclesSource(numbers[1]),
            max_payload=numbers[2],
            input_bytes=numbers[3],
            output_bytes=numbers[4],
            arena_bytes=numbers[5],
            input_scale=numbers[6],
            input_zero_point=numbers[7],
            output_scale=numbers[8],
            output_zero_point=numbers[9],
            clock_hz=numbers[10],
            input_shape=tuple(dims[:input_rank]),
            output_shape=tuple(dims[MAX_RANK : MAX_RANK + output_rank]),
            board=board,
            runtime=runtime,
            firmware_version=version,
            model_hash=model_hash,
        )
        if identity.protocol_version != PROTOCOL_VERSION:
            raise DeviceError(
                f"{self.name}: firmware speaks protocol version {identity.protocol_version}, "
                f"this harness speaks {PROTOCOL_VERSION}; rebuild the firmware"
            )
        self.identity = identity
        self.log.info(
            "identified board %s, runtime %s, firmware %s, model %s", board, runtime, version, model_hash
        )
        return identity

    def check_model(self, expected_hash: str, expected_board: str | None = None) -> Identity:
        """Identify and raise DeviceError unless the device runs `expected_hash`.

        A boot announcement during the identify (a board that was just
        flashed and reset) is expected, so the identify is repeated once.
        """
        self.expected_model_hash = expected_hash
        try:
            identity = self.identify()
        except DeviceRestartedError:
            self.log.info("device booted while being identified; identifying again")
            identity = self.identify()
        if identity.model_hash != expected_hash:
            raise DeviceError(
                f"{self.name}: device runs model {identity.model_hash}, expected {expected_hash}; "
                "the flashed firmware is not the one just built"
            )
        if expected_board is not None and identity.board != expected_board:
            raise DeviceError(f"{self.name}: device is board {identity.board}, expected {expected_board}")
        return identity

    def load_input(self, data: bytes, chunk_bytes: int = LOAD_CHUNK_BYTES) -> None:
        """Send the input tensor in chunks of at most `chunk_bytes`."""
        if not 0 < chunk_bytes <= LOAD_CHUNK_BYTES:
            raise ValueError(f"chunk_bytes must be in [1, {LOAD_CHUNK_BYTES}], got {chunk_bytes}")
        for offset in range(0, len(data), chunk_bytes):
            chunk = data[offset : offset + chunk_bytes]
            reply = self.request(Command.LOAD_INPUT, struct.pack("<I", offset) + chunk)
            (loaded,) = struct.unpack("<I", reply.payload[:4])
            if loaded != offset + len(chunk):
                raise DeviceError(
                    f"{self.name}: device reports {loaded} input bytes loaded after the chunk at {offset}, "
                    f"expected {offset + len(chunk)}"
                )

    def run(self) -> RunResult:
        payload = self.request(Command.RUN).payload
        status, cycles = struct.unpack_from("<iQ", payload, 0)
        output = np.frombuffer(payload[12:], dtype=np.int8).copy()
        if status != 0:
            raise DeviceError(f"{self.name}: model_invoke returned status {status}")
        return RunResult(output, cycles, status)

    def _retry_after_restart(
        self, attempt: Callable[[], RunResult], redo: str, restore: Callable[[], object] | None = None
    ) -> RunResult:
        """Run `attempt`; after a device restart identify the device again, call `restore` and run it once more.

        The identify checks the model hash given to check_model, if any.
        """
        try:
            return attempt()
        except DeviceRestartedError:
            self.log.warning("device restarted mid-inference; identifying again and %s", redo)
        if self.expected_model_hash is not None:
            self.check_model(self.expected_model_hash)
        else:
            self.identify()
        if restore is not None:
            restore()
        return attempt()

    def infer(self, data: bytes) -> RunResult:
        """Load one input over the serial link and run it; after a restart, reload it once."""

        def attempt() -> RunResult:
            self.load_input(data)
            return self.run()

        return self._retry_after_restart(attempt, "reloading the input")

    def open_input_file(self, path: Path) -> int:
        """Make an emulated device open the host file `path` for inputs; return its length in bytes.

        The device reads it through semihosting, so `path` must be absolute
        and readable by the emulator process.
        """
        encoded = str(path).encode()
        if len(encoded) > MAX_PAYLOAD:
            raise ValueError(f"input file path is {len(encoded)} bytes, over the {MAX_PAYLOAD}-byte payload limit")
        payload = self.request(Command.INPUT_FILE, encoded).payload
        (length,) = struct.unpack_from("<I", payload, 0)
        self.input_file = Path(path)
        return length

    def infer_from_file(self, offset: int, input_bytes: int) -> RunResult:
        """Load the input at byte `offset` of the open input file, then run it.

        A device restart closes the file, so after one the client reopens
        it before the second attempt.
        """
        input_file = self.input_file
        if input_file is None:
            raise DeviceError(f"{self.name}: no input file is open; call open_input_file first")

        def attempt() -> RunResult:
            payload = self.request(Command.LOAD_INPUT_FILE, struct.pack("<I", offset)).payload
            (loaded,) = struct.unpack_from("<I", payload, 0)
            if loaded != input_bytes:
                raise DeviceError(f"{self.name}: device loaded {loaded} input bytes, expected {input_bytes}")
            return self.run()

        return self._retry_after_restart(
            attempt, "reopening the input file", restore=lambda: self.open_input_file(input_file)
        )

    def memory(self) -> DeviceMemory:
        payload = self.request(Command.MEMORY).payload
        return DeviceMemory(*struct.unpack_from("<IIII", payload, 0))

    def calibrate(self, iterations: int) -> int:
        """Time a loop of `iterations` x 2 instructions; return counter ticks."""
        payload = self.request(Command.CALIBRATE, struct.pack("<I", iterations)).payload
        return struct.unpack_from("<Q", payload, 0)[0]

    def reset(self) -> None:
        """Ask the device to reset itself and wait for its boot announcement."""
        self.request(Command.RESET)
        self.identity = None
        self.wait_for_boot()

    def exit(self, code: int = 0) -> None:
        """End an emulated device with a semihosting exit."""
        self.request(Command.EXIT, struct.pack("<I", code))


class _Retry(Exception):
    """A request attempt failed in a way a retry can fix."""
