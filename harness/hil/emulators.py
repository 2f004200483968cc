"""Emulated boards: QEMU, and Renode where a profile selects it.

`QemuBoard` starts `qemu-system-arm` with `-icount shift=0` (one instruction
advances virtual time by 1 ns, so SysTick counts instructions), the UART on
a TCP server at 127.0.0.1 on a free port with `nodelay=on` (without it every
reply stalls about 40 ms), semihosting for the exit, and a hard timeout
after which the process is killed.  The process is always reaped on
`close()`, which the context manager calls on any error or Ctrl-C.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness.errors import ConfigError, DeviceError, DeviceTimeoutError
from harness.hil.boards import BoardProfile

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PORT_LOCK = Path("/tmp/harness-locks/emulator-ports.lock")
LISTEN_TIMEOUT_S = 30.0

logger = logging.getLogger(__name__)


# Resolved once in the harness process: the child between fork and exec may
# run only minimal code, and loading a library there (ctypes.CDLL calls
# dlopen) can deadlock on a lock that another thread held at the fork.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL the emulator when the harness process dies.

    `try`/`finally` reaps the emulator on errors and Ctrl-C, but a harness
    killed with SIGKILL runs no cleanup; PR_SET_PDEATHSIG covers that case.
    Elsewhere than Linux this does nothing.
    """
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)


def _listening(port: int) -> bool:
    """Return True if some socket listens on 127.0.0.1:`port` (read from /proc/net/tcp)."""
    wanted = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as table:
            next(table)
            return any(
                fields[1] == wanted and fields[3] == "0A"
                for fields in (line.split() for line in table)
            )
    except OSError:
        # Without /proc, fall back to a short fixed wait for the emulator to bind.
        time.sleep(0.5)
        return True


def free_tcp_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EmulatedBoard:
    """One emulator process running a firmware ELF; `url` is its UART.

    Subclasses give the command line.  The process is killed after
    `timeout_s` seconds, and `close()` always reaps it.
    """

    kind = ""

    def __init__(self, profile: BoardProfile, elf_path: Path, *, timeout_s: float | None = None) -> None:
        if profile.emulator.kind != self.kind:
            raise ConfigError(
                f"board {profile.name} is not a {self.kind} profile (emulator.kind = {profile.emulator.kind!r})"
            )
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
        raise NotImplementedError

    def start(self) -> "EmulatedBoard":
        # A port found free can be taken by another process before the
        # emulator binds it. The emulator then exits, and the client reaches
        # another emulator's UART, which sends it nothing. Picking the port and waiting
        # for the emulator to listen on it under one lock shared by every
        # harness process on this host closes that window.
        PORT_LOCK.parent.mkdir(parents=True, exist_ok=True)
        with open(PORT_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.port = free_tcp_port()
            self.url = f"socket://127.0.0.1:{self.port}"
            self.log.info(
                "starting %s %s on port %d: %s", self.kind, self.profile.emulator.machine, self.port, self.elf_path
            )
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            self._wait_until_listening()
        self._timer = threading.Timer(self.timeout_s, self._kill_on_timeout)
        self._timer.daemon = True
        self._timer.start()
        return self

    def _wait_until_listening(self) -> None:
        """Return once the emulator listens on `self.port`; raise if it exits first."""
        assert self.process is not None
        deadline = time.monotonic() + LISTEN_TIMEOUT_S
        while not _listening(self.port):
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""
                raise DeviceError(
                    f"{self.profile.name}: {self.kind} exited with status {self.process.returncode} before "
                    f"listening on port {self.port}: {output.strip()[-500:]}"
                )
            if time.monotonic() > deadline:
                raise DeviceTimeoutError(
                    f"{self.profile.name}: {self.kind} did not listen on port {self.port} within {LISTEN_TIMEOUT_S:.0f} s"
                )
            time.sleep(0.02)

    def _kill_on_timeout(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.timed_out = True
            self.log.error("%s ran past its hard timeout of %.0f s; killing pid %d", self.kind, self.timeout_s, self.process.pid)
            self.process.kill()

    def wait(self, timeout_s: float) -> int:
        """Wait for the emulator to exit (after a semihosting exit); return its status."""
        assert self.process is not None
        return self.process.wait(timeout_s)

    def output(self) -> str:
        """The emulator's own stdout and stderr, once it has exited."""
        if self.process is None or self.process.poll() is None or self.process.stdout is None:
            return ""
        return self.process.stdout.read().decode(errors="replace")

    def close(self) -> None:
        """Stop the emulator if it still runs and reap it; safe to call twice."""
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
        self.log.debug("%s pid %d ended with status %s", self.kind, process.pid, process.returncode)

    def __enter__(self) -> "EmulatedBoard":
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc_info) -> None:
        self.close()


class QemuBoard(EmulatedBoard):
    """QEMU with `-icount shift=0`, semihosting and the UART on a TCP server."""

    kind = "qemu"

    def __init__(self, profile: BoardProfile, elf_path: Path, *, timeout_s: float | None = None) -> None:
        if shutil.which("qemu-system-arm") is None:
            raise ConfigError("qemu-system-arm not found; install Debian's qemu-system-arm")
        super().__init__(profile, elf_path, timeout_s=timeout_s)

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


class RenodeBoard(EmulatedBoard):
    """Renode with the profile's platform description and its UART on a server socket.

    Renode counts no instructions the way QEMU icount does, so deploy labels
    its SysTick latency "renode-systick".

    NOTE: Renode is not installed on the development machine, so this runner
    has never been started; the script follows Renode's documented monitor
    commands (mach create, LoadPlatformDescription, LoadELF,
    CreateServerSocketTerminal, connector Connect).
    """

    kind = "renode"

    def __init__(self, profile: BoardProfile, elf_path: Path, *, timeout_s: float | None = None) -> None:
        if shutil.which("renode") is None:
            raise ConfigError(
                f"board {profile.name} selects Renode (emulator.kind = 'renode') but `renode` is not on "
                "PATH; install Renode from https://renode.io or use a QEMU profile"
            )
        super().__init__(profile, elf_path, timeout_s=timeout_s)

    def command(self) -> list[str]:
        script = self.elf_path.with_suffix(".resc")
        script.write_text(
            "mach create\n"
            f"machine LoadPlatformDescription @{self.profile.emulator.machine}\n"
            f"sysbus LoadELF @{self.elf_path}\n"
            f'emulation CreateServerSocketTerminal {self.port} "harness_uart" false\n'
            f"connector Connect {self.profile.emulator.uart} harness_uart\n"
            "start\n"
        )
        return ["renode", "--disable-xwt", "--console", "--plain", str(script)]


def make_emulator(profile: BoardProfile, elf_path: Path, *, timeout_s: float | None = None) -> EmulatedBoard:
    """Return the emulator the profile selects; raise ConfigError or DeviceError when it cannot run."""
    kind = profile.emulator.kind
    if kind == "qemu":
        return QemuBoard(profile, elf_path, timeout_s=timeout_s)
    if kind == "renode":
        return RenodeBoard(profile, elf_path, timeout_s=timeout_s)
    raise ConfigError(f"board {profile.name} has no emulator (emulator.kind = 'none'); it needs a real board")
