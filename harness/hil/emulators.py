"""Emulated boards: QEMU, and Renode where a profile selects it.

`QemuBoard` starts `qemu-system-arm` with `-icount shift=0` (one instruction
advances virtual time by 1 ns, so SysTick counts instructions), the UART on
a TCP server at 127.0.0.1 on a free port with `nodelay=on` (without it every
reply stalls about 40 ms), semihosting for the exit, and a hard timeout
after which the process is killed.  The process is always reaped on
`close()`, which the context manager calls on any error or Ctrl-C.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
from pathlib import Path

from harness.errors import ConfigError, DeviceError
from harness.hil.boards import BoardProfile

logger = logging.getLogger(__name__)


def free_tcp_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class QemuBoard:
    """One QEMU process running a firmware ELF; `url` is its UART."""

    def __init__(self, profile: BoardProfile, elf_path: Path, *, timeout_s: float | None = None) -> None:
        if profile.emulator.kind != "qemu":
            raise ConfigError(f"board {profile.name} is not a QEMU profile (emulator.kind = {profile.emulator.kind!r})")
        if shutil.which("qemu-system-arm") is None:
            raise ConfigError("qemu-system-arm not found; install Debian's qemu-system-arm")
        self.profile = profile
        self.elf_path = Path(elf_path)
        self.timeout_s = timeout_s if timeout_s is not None else profile.emulator.timeout_s
        self.port = free_tcp_port()
        self.url = f"socket://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.timed_out = False
        self._timer: threading.Timer | None = None
        self.log = logging.getLogger(f"harness.hil.device.{profile.name}")

    def command(self) -> list[str]:
        return [
            "qemu-system-arm",
            "-machine", self.profile.emulator.machine,
            "-nographic",
            "-monitor", "none",
            "-icount", "shift=0",
            "-semihosting-config", "enable=on,target=native",
            "-serial", f"tcp:127.0.0.1:{self.port},server=on,wait=on,nodelay=on",
            "-kernel", str(self.elf_path),
        ]

    def start(self) -> "QemuBoard":
        self.log.info("starting QEMU %s on port %d: %s", self.profile.emulator.machine, self.port, self.elf_path)
        self.process = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._timer = threading.Timer(self.timeout_s, self._kill_on_timeout)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _kill_on_timeout(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.timed_out = True
            self.log.error("QEMU ran past its hard timeout of %.0f s; killing pid %d", self.timeout_s, self.process.pid)
            self.process.kill()

    def wait(self, timeout_s: float) -> int:
        """Wait for QEMU to exit (after a semihosting exit); return its status."""
        assert self.process is not None
        return self.process.wait(timeout_s)

    def output(self) -> str:
        """QEMU's own stdout and stderr, once it has exited."""
        if self.process is None or self.process.poll() is None or self.process.stdout is None:
            return ""
        return self.process.stdout.read().decode(errors="replace")

    def close(self) -> None:
        """Stop QEMU if it still runs and reap it; safe to call twice."""
        if self._timer is not None:
            self._timer.cancel()
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(2.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.log.debug("QEMU pid %d ended with status %s", process.pid, process.returncode)

    def __enter__(self) -> "QemuBoard":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info) -> None:
        self.close()


def make_emulator(profile: BoardProfile, elf_path: Path, *, timeout_s: float | None = None) -> QemuBoard:
    """Return the emulator the profile selects; raise ConfigError or DeviceError when it cannot run."""
    kind = profile.emulator.kind
    if kind == "qemu":
        return QemuBoard(profile, elf_path, timeout_s=timeout_s)
    if kind == "renode":
        if shutil.which("renode") is None:
            raise ConfigError(
                f"board {profile.name} asks for Renode (emulator.kind = 'renode') but `renode` is not on "
                "PATH; install Renode from https://renode.io or use a QEMU profile"
            )
        # TODO: Renode is not installed on the development machine, so the
        # Renode runner (platform script, UART on a socket terminal) is unwritten.
        raise DeviceError(f"board {profile.name}: the Renode runner is not implemented yet; use a QEMU profile")
    raise ConfigError(f"board {profile.name} has no emulator (emulator.kind = 'none'); it needs a real board")
