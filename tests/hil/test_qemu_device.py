"""The firmware and the protocol client against a real QEMU board.

Faults come from a TCP proxy on 127.0.0.1 between the client and QEMU
(tcp_proxy.FaultProxy), so the real firmware receives the damaged frames.
"""

import logging
import os
import struct
import time

import numpy as np
import pytest

from handmade_model import INPUT_SHAPE
from harness.errors import DeviceError
from harness.hil.emulators import QemuBoard
from harness.hil.protocol import Command, CyclesSource, DeviceClient, DeviceReportedError, ErrorCode, encode_frame
from harness.hil.transport import open_url
from tcp_proxy import FaultProxy


@pytest.fixture
def proxied(an386_build):
    """QEMU an386 with the handmade model, reached through a FaultProxy."""
    profile, build = an386_build
    with QemuBoard(profile, build.elf_path, timeout_s=60) as emulator:
        proxy = FaultProxy(emulator.port)
        try:
            with open_url(proxy.url) as port:
                client = DeviceClient(port, profile.name, timeout_s=2.0)
                client.wait_for_boot()
                yield proxy, client
        finally:
            proxy.close()


@pytest.fixture(scope="module")
def samples(handmade_dir):
    inputs = np.load(handmade_dir / "test_inputs.npy").reshape(-1, int(np.prod(INPUT_SHAPE)))
    reference = np.load(handmade_dir / "reference_outputs.npy")
    return inputs, reference


def test_identify_reports_model(device, handmade_dir):
    _, client = device
    identity = client.identify()
    header = (handmade_dir / "model.h").read_text()
    assert identity.board == "qemu-mps2-an386"
    assert identity.runtime == "generated"
    assert f'"{identity.model_hash}"' in header
    assert identity.input_bytes == int(np.prod(INPUT_SHAPE))
    assert identity.input_shape == INPUT_SHAPE
    assert identity.output_shape == (1, 4)
    assert identity.output_bytes == 4
    assert identity.input_zero_point == -3
    assert identity.cycles_source == CyclesSource.SYSTICK_ICOUNT


def test_wrong_model_hash_rejected(device):
    _, client = device
    with pytest.raises(DeviceError, match="not the one just built"):
        client.check_model("ffffffffffffffff")


def test_systick_counts_instructions(device, an386_build):
    profile, _ = an386_build
    _, client = device
    iterations = 500_000
    ticks = client.calibrate(iterations)
    instructions_per_tick = 1e9 / profile.emulator.systick_hz
    # The loop is two instructions per iteration; the timing code adds a few.
    assert abs(ticks * instructions_per_tick - 2 * iterations) <= 2 * instructions_per_tick + 64


def test_outputs_equal_reference(device, samples):
    _, client = device
    inputs, reference = samples
    client.identify()
    for index in range(4):
        result = client.infer(inputs[index].tobytes())
        assert np.array_equal(result.output, reference[index])
        assert result.cycles > 0


def test_input_file_outputs_equal_reference(device, samples, tmp_path):
    _, client = device
    inputs, reference = samples
    path = tmp_path / "inputs.bin"
    inputs[:5].tofile(path)
    client.identify()
    assert client.open_input_file(path) == inputs[:5].size
    for index in (0, 3, 4):
        result = client.infer_from_file(index * inputs.shape[1], inputs.shape[1])
        assert np.array_equal(result.output, reference[index])
    # The UART path and the file path time the same inference (a SysTick
    # wrap inside one of them would add its handler's few instructions).
    by_uart = client.infer(inputs[3].tobytes()).cycles
    by_file = client.infer_from_file(3 * inputs.shape[1], inputs.shape[1]).cycles
    assert abs(by_uart - by_file) <= 100


def test_input_file_errors(device, samples, tmp_path):
    _, client = device
    inputs, _ = samples
    client.identify()
    with pytest.raises(DeviceError, match="call open_input_file first"):
        client.infer_from_file(0, inputs.shape[1])
    with pytest.raises(DeviceReportedError, match="no input file is open") as info:
        client.request(Command.LOAD_INPUT_FILE, struct.pack("<I", 0))
    assert info.value.code == ErrorCode.BAD_PAYLOAD
    with pytest.raises(DeviceReportedError, match="cannot open the input file"):
        client.open_input_file(tmp_path / "missing.bin")
    short = tmp_path / "short.bin"
    inputs[:2].tofile(short)
    client.open_input_file(short)
    with pytest.raises(DeviceReportedError, match="ends before the input tensor"):
        client.infer_from_file(inputs.shape[1] + 10, inputs.shape[1])
    # A failed load leaves no input to run.
    with pytest.raises(DeviceReportedError) as info:
        client.run()
    assert info.value.code == ErrorCode.INPUT_INCOMPLETE


def test_input_file_reopened_after_restart(device, samples, tmp_path):
    _, client = device
    inputs, reference = samples
    path = tmp_path / "inputs.bin"
    inputs[:8].tofile(path)
    client.check_model(client.identify().model_hash)
    client.open_input_file(path)
    client.request(Command.RESET)  # the restart closes the device's handle
    result = client.infer_from_file(7 * inputs.shape[1], inputs.shape[1])
    assert np.array_equal(result.output, reference[7])
    assert client.boots_seen == 2


def test_small_chunks_and_fragmented_replies(proxied, samples):
    proxy, client = proxied
    inputs, reference = samples
    proxy.fragment_to_host = True
    client.identify()
    client.load_input(inputs[1].tobytes(), chunk_bytes=7)
    assert np.array_equal(client.run().output, reference[1])


def test_run_before_full_input_is_error(device, samples):
    _, client = device
    inputs, _ = samples
    client.load_input(inputs[0][:100].tobytes())
    with pytest.raises(DeviceReportedError) as info:
        client.run()
    assert info.value.code == ErrorCode.INPUT_INCOMPLETE


def test_corrupted_request_retried(proxied, samples):
    proxy, client = proxied
    inputs, reference = samples
    client.identify()
    proxy.flip_next_to_device = 10  # inside the payload of the next request
    result = client.infer(inputs[2].tobytes())
    assert np.array_equal(result.output, reference[2])
    assert client.retries_done == 1


def test_corrupted_sequence_byte_retried_fast(proxied, samples):
    proxy, client = proxied
    inputs, reference = samples
    client.identify()
    client.load_input(inputs[7].tobytes())
    proxy.flip_next_to_device = 5  # the sequence byte of the RUN request
    started = time.monotonic()
    result = client.run()
    assert np.array_equal(result.output, reference[7])
    assert client.retries_done == 1
    assert time.monotonic() - started < client.timeout_s  # retried on the error frame, not on timeout


def test_corrupted_length_retried(proxied):
    proxy, client = proxied
    client.identify()
    # IDENTIFY has an empty payload; the damaged length announces 255 bytes
    # that never come, so the device drops the frame on its receive timeout.
    proxy.flip_next_to_device = 2
    started = time.monotonic()
    identity = client.identify()
    assert identity.board == "qemu-mps2-an386"
    assert client.retries_done == 1
    assert time.monotonic() - started < client.timeout_s


def test_corrupted_reply_retried(proxied, samples):
    proxy, client = proxied
    inputs, reference = samples
    client.identify()
    client.load_input(inputs[3].tobytes())
    proxy.flip_next_to_host = 8
    result = client.run()
    assert np.array_equal(result.output, reference[3])
    assert client.retries_done == 1


def test_stale_sequence_ignored(proxied, samples, caplog):
    proxy, client = proxied
    inputs, reference = samples
    client.identify()
    client.load_input(inputs[4].tobytes())
    # A well-formed reply to an old request arrives before the real reply.
    stale_sequence = (client.sequence - 5) & 0xFF
    payload = struct.pack("<iQ", 0, 1) + b"\x7f\x7f\x7f\x7f"
    proxy.inject_to_host = encode_frame(Command.RUN | 0x80, stale_sequence, payload)
    with caplog.at_level(logging.WARNING, logger="harness.hil.device.qemu-mps2-an386"):
        result = client.run()
    assert np.array_equal(result.output, reference[4])
    assert "stale sequence" in caplog.text


def test_garbage_before_request_and_reply(proxied, samples):
    proxy, client = proxied
    inputs, reference = samples
    proxy.inject_to_device = b"\xa5\x5a\x07\x00\x01" + bytes(range(40))
    proxy.inject_to_host = b"\xa5\x00\xa5\x5a\xff\xffjunk"
    client.identify()
    result = client.infer(inputs[5].tobytes())
    assert np.array_equal(result.output, reference[5])


def test_restart_mid_session_recovers(device, samples):
    _, client = device
    inputs, reference = samples
    expected = client.identify().model_hash
    client.check_model(expected)
    client.load_input(inputs[6].tobytes())
    # The device resets (SYSRESETREQ) after this reply and loses its input;
    # the client learns of it from the boot frame during the next request.
    client.request(Command.RESET)
    result = client.infer(inputs[6].tobytes())
    assert np.array_equal(result.output, reference[6])
    assert client.boots_seen == 2
    assert client.identity.model_hash == expected  # identified again after the restart


def test_memory_report_has_stack_high_water(device):
    _, client = device
    client.identify()
    memory = client.memory()
    assert memory.arena_bytes == 16
    assert memory.stack_bytes == 16384
    assert 0 < memory.stack_high_water_bytes < memory.stack_bytes


def test_semihosting_exit_ends_qemu(device):
    emulator, client = device
    client.exit(7)
    assert emulator.wait(10) == 7


def test_hard_timeout_kills_qemu(an386_build):
    profile, build = an386_build
    with QemuBoard(profile, build.elf_path, timeout_s=1.0) as emulator:
        # No client connects, so QEMU waits on its UART server until the timer kills it.
        assert emulator.wait(10) != 0
        assert emulator.timed_out


def test_interrupt_reaps_qemu(an386_build):
    profile, build = an386_build
    with pytest.raises(KeyboardInterrupt):
        with QemuBoard(profile, build.elf_path, timeout_s=60) as emulator:
            raise KeyboardInterrupt
    assert emulator.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(emulator.process.pid, 0)  # reaped: the pid no longer exists


def test_identify_across_reset(device, handmade_dir):
    _, client = device
    expected = client.identify().model_hash
    client.request(Command.RESET)  # the boot frame arrives during the next request
    identity = client.check_model(expected)
    assert identity.model_hash == expected
    assert client.boots_seen == 2
