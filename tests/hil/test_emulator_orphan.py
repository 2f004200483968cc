"""An emulator must not outlive a harness process killed with SIGKILL."""

import os
import signal
import subprocess
import sys
import time

CHILD = """
import sys, time
from pathlib import Path
from harness.hil.boards import load_board
from harness.hil.emulators import make_emulator
emulator = make_emulator(load_board("qemu-mps2-an386"), Path(sys.argv[1])).start()
print(emulator.process.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split()[2] != "Z"


def test_emulator_dies_with_killed_parent(an386_build):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(an386_build[1].elf_path)], stdout=subprocess.PIPE, text=True
    )
    qemu_pid = int(child.stdout.readline())
    assert _alive(qemu_pid)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(qemu_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(qemu_pid), f"qemu {qemu_pid} outlived its killed parent"
