"""Frame encoding and decoding, and client timeouts, without a device."""

import socket
import struct
import threading
import zlib

import pytest

from harness.errors import DeviceTimeoutError
from harness.hil.protocol import MAX_PAYLOAD, DeviceClient, FrameDecoder, encode_frame
from harness.hil.transport import open_url


def test_frame_layout_matches_firmware():
    frame = encode_frame(0x03, 7, b"\x01\x02")
    assert frame[:2] == b"\xa5\x5a"
    assert struct.unpack_from("<HBB", frame, 2) == (2, 0x03, 7)
    assert frame[6:8] == b"\x01\x02"
    assert struct.unpack_from("<I", frame, 8)[0] == zlib.crc32(frame[2:8])


def test_oversized_payload_rejected():
    with pytest.raises(ValueError, match="maximum"):
        encode_frame(0x02, 1, bytes(MAX_PAYLOAD + 1))


def test_decoder_frames_across_chunk_boundaries():
    frames = [encode_frame(0x81, i, bytes(range(i * 10 % 256))[: i * 10]) for i in range(1, 6)]
    stream = b"".join(frames)
    decoder = FrameDecoder()
    decoded = []
    for index in range(len(stream)):
        decoded += decoder.feed(stream[index : index + 1])
    assert [frame.sequence for frame in decoded] == [1, 2, 3, 4, 5]
    assert decoded[2].payload == bytes(range(30))


def test_decoder_resyncs_after_garbage():
    decoder = FrameDecoder()
    garbage = b"\x00\xa5\xa5\x5a\xff\xff\x13" + b"\xa5"
    frames = decoder.feed(garbage + encode_frame(0x84, 9, b"ok"))
    assert len(frames) == 1
    assert frames[0].payload == b"ok"
    assert decoder.dropped_bytes > 0


def test_decoder_drops_corrupted_frame():
    good = encode_frame(0x81, 1, b"abcdef")
    damaged = bytearray(good)
    damaged[8] ^= 0x01
    decoder = FrameDecoder()
    frames = decoder.feed(bytes(damaged) + encode_frame(0x81, 2, b"next"))
    assert [frame.sequence for frame in frames] == [2]
    assert decoder.crc_errors == 1


def _garbage_server() -> tuple[socket.socket, threading.Thread]:
    """Start a 127.0.0.1 server that replies to every request with bytes that form no frame."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        connection, _ = server.accept()
        with connection:
            while connection.recv(4096):
                connection.sendall(b"\x01\x02garbage")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def test_timeout_error_names_board_command_buffer():
    server, thread = _garbage_server()
    port_number = server.getsockname()[1]
    with open_url(f"socket://127.0.0.1:{port_number}") as port:
        client = DeviceClient(port, "bench-board", timeout_s=0.3, retries=1)
        with pytest.raises(DeviceTimeoutError) as info:
            client.identify()
    server.close()
    message = str(info.value)
    assert "bench-board" in message
    assert "IDENTIFY" in message
    assert "garbage" in message  # the bytes received, though no frame
    assert client.retries_done == 1
