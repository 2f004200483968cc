"""Board profiles: what a board is (core, clock, memory, serial, emulator).

A profile is `boards/<name>.toml`.  It is validated when loaded, and every
error names the file, the field and what was expected.  The same file is
read by the firmware's PlatformIO builder, which writes the linker script's
MEMORY block from `[[memory]]`, so the regions the harness checks are the
regions the linker fills.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

REPO_DIR = Path(__file__).resolve().parents[2]
BOARDS_DIR = REPO_DIR / "boards"

EMULATOR_KINDS = ("qemu", "renode", "none")
UPLOAD_METHODS = ("emulator", "openocd", "pyocd")
MEMORY_KINDS = ("flash", "ram")
FPUS = ("none", "fpv4-sp-d16", "fpv5-sp-d16", "fpv5-d16")
FAMILIES = ("mps2", "stm32f4", "stm32f7", "stm32l4", "nrf52")


@dataclass(frozen=True)
class MemoryRegion:
    """One linker memory region: `origin` and `length` in bytes."""

    name: str
    kind: str
    origin: int
    length: int


@dataclass(frozen=True)
class SerialSettings:
    """How to reach a real board's UART: a port or a USB serial number."""

    port: str
    usb_serial_number: str
    baud: int


@dataclass(frozen=True)
class EmulatorSettings:
    """Emulator of a board; `kind` is "none" for real boards.

    `systick_hz` is the clock the emulator drives SysTick with, so that
    under QEMU `-icount shift=0` one tick is 1e9 / systick_hz instructions.
    For Renode, `machine` is a platform description (.repl) and `uart` the
    peripheral the firmware's UART is, e.g. "sysbus.usart1".
    """

    kind: str
    machine: str
    timeout_s: float
    systick_hz: int
    uart: str = ""


@dataclass(frozen=True)
class BoardProfile:
    """A validated `boards/<name>.toml`."""

    name: str
    description: str
    mcu: str
    core: str
    fpu: str
    clock_hz: int
    family: str
    pio_env: str
    stack_bytes: int
    heap_bytes: int
    memory: tuple[MemoryRegion, ...]
    upload_method: str
    upload_target: str
    serial: SerialSettings
    emulator: EmulatorSettings
    constraints: dict[str, float] = field(default_factory=dict)
    path: Path = BOARDS_DIR

    @property
    def emulated(self) -> bool:
        return self.emulator.kind != "none"

    def region(self, kind: str) -> MemoryRegion:
        """Return the first region of `kind` ("flash" or "ram"): the one the linker uses."""
        return next(region for region in self.memory if region.kind == kind)


class _Fields:
    """Typed access to one TOML table, with errors naming file and field."""

    def __init__(self, path: Path, table: dict[str, Any], prefix: str = "") -> None:
        self.path = path
        self.table = table
        self.prefix = prefix

    def _fail(self, name: str, expected: str, value: Any = None, missing: bool = False) -> ConfigError:
        where = f"{self.path}: field '{self.prefix}{name}'"
        if missing:
            return ConfigError(f"{where} is missing; expected {expected}")
        return ConfigError(f"{where} is invalid: expected {expected}, got {value!r}")

    def get(self, name: str, kind: type, expected: str, default: Any = ...) -> Any:
        if name not in self.table:
            if default is ...:
                raise self._fail(name, expected, missing=True)
            return default
        value = self.table[name]
        # bool is a subclass of int; a TOML `true` is never a valid number here.
        if isinstance(value, bool) and kind is not bool:
            raise self._fail(name, expected, value)
        if kind is float and isinstance(value, int):
            value = float(value)
        if not isinstance(value, kind):
            raise self._fail(name, expected, value)
        return value

    def positive_int(self, name: str, default: Any = ...) -> int:
        value = self.get(name, int, "a positive integer", default)
        if value <= 0:
            raise self._fail(name, "a positive integer", value)
        return value

    def choice(self, name: str, choices: tuple[str, ...], default: Any = ...) -> str:
        expected = "one of " + ", ".join(repr(c) for c in choices)
        value = self.get(name, str, expected, default)
        if value not in choices:
            raise self._fail(name, expected, value)
        return value

    def table_of(self, name: str, required: bool = True) -> "_Fields":
        if name not in self.table:
            if required:
                raise self._fail(name, f"a [{name}] table", missing=True)
            return _Fields(self.path, {}, f"{self.prefix}{name}.")
        value = self.table[name]
        if not isinstance(value, dict):
            raise self._fail(name, f"a [{name}] table", value)
        return _Fields(self.path, value, f"{self.prefix}{name}.")


def _parse_memory(fields: _Fields) -> tuple[MemoryRegion, ...]:
    raw = fields.get("memory", list, "an array of [[memory]] tables")
    regions = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigError(f"{fields.path}: field 'memory[{index}]' is invalid: expected a table, got {entry!r}")
        region = _Fields(fields.path, entry, f"memory[{index}].")
        origin = region.get("origin", int, "an address (integer, e.g. 0x08000000)")
        if origin < 0 or origin >= 1 << 32:
            raise region._fail("origin", "an address in [0, 2**32)", origin)
        regions.append(
            MemoryRegion(
                name=region.get("name", str, "a linker region name such as \"FLASH\""),
                kind=region.choice("kind", MEMORY_KINDS),
                origin=origin,
                length=region.positive_int("length"),
            )
        )
    for kind in MEMORY_KINDS:
        if not any(r.kind == kind for r in regions):
            raise ConfigError(f"{fields.path}: field 'memory' is invalid: expected at least one region of kind {kind!r}")
    names = [r.name for r in regions]
    if len(set(names)) != len(names):
        raise ConfigError(f"{fields.path}: field 'memory' is invalid: region names repeat: {names}")
    return tuple(regions)


def parse_profile(path: Path) -> BoardProfile:
    """Load and validate one profile file; raise ConfigError naming file and field."""
    try:
        with open(path, "rb") as profile_file:
            raw = tomllib.load(profile_file)
    except FileNotFoundError as err:
        raise ConfigError(f"board profile {path} not found") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from err

    top = _Fields(path, raw)
    name = top.get("name", str, "the profile name, equal to the file name")
    if name != path.stem:
        raise top._fail("name", f"{path.stem!r} (the file name without .toml)", name)

    upload = top.table_of("upload")
    upload_method = upload.choice("method", UPLOAD_METHODS)
    serial = top.table_of("serial")
    emulator = top.table_of("emulator")
    emulator_kind = emulator.choice("kind", EMULATOR_KINDS)
    if emulator_kind == "none" and upload_method == "emulator":
        raise upload._fail("method", "'openocd' or 'pyocd' for a board without emulator", upload_method)
    if emulator_kind != "none" and upload_method != "emulator":
        raise upload._fail("method", "'emulator' for an emulated board", upload_method)

    constraints = top.table_of("constraints", required=False)
    constraint_values = {}
    for key in constraints.table:
        constraint_values[key] = constraints.get(key, float, "a number")

    return BoardProfile(
        name=name,
        description=top.get("description", str, "a one-line description"),
        mcu=top.get("mcu", str, "the microcontroller part number"),
        core=top.choice("core", ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")),
        fpu=top.choice("fpu", FPUS, "none"),
        clock_hz=top.positive_int("clock_hz"),
        family=top.choice("family", FAMILIES),
        pio_env=top.get("pio_env", str, "a PlatformIO environment of firmware/platformio.ini"),
        stack_bytes=top.positive_int("stack_bytes"),
        heap_bytes=top.get("heap_bytes", int, "a byte count >= 0", 0),
        memory=_parse_memory(top),
        upload_method=upload_method,
        upload_target=upload.get("target", str, "an openocd config or pyocd target", ""),
        serial=SerialSettings(
            port=serial.get("port", str, "a serial port or URL", ""),
            usb_serial_number=serial.get("usb_serial_number", str, "a USB serial number", ""),
            baud=serial.positive_int("baud"),
        ),
        emulator=EmulatorSettings(
            kind=emulator_kind,
            machine=emulator.get("machine", str, "an emulator machine name", "" if emulator_kind == "none" else ...),
            timeout_s=emulator.get("timeout_s", float, "seconds", 120.0),
            systick_hz=(
                emulator.positive_int("systick_hz") if emulator_kind == "qemu" else top.positive_int("clock_hz")
            ),
            uart=emulator.get(
                "uart", str, "the Renode UART peripheral, e.g. \"sysbus.usart1\"",
                ... if emulator_kind == "renode" else "",
            ),
        ),
        constraints=constraint_values,
        path=path,
    )


def load_board(name: str, boards_dir: Path = BOARDS_DIR) -> BoardProfile:
    """Load the profile called `name` (or a path to a .toml file)."""
    candidate = Path(name)
    if candidate.suffix == ".toml":
        return parse_profile(candidate)
    path = boards_dir / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in boards_dir.glob("*.toml")))
        raise ConfigError(f"board profile {name!r} not found in {boards_dir}; known profiles: {known}")
    return parse_profile(path)


def list_boards(boards_dir: Path = BOARDS_DIR) -> list[BoardProfile]:
    """Load every profile in `boards_dir`, sorted by name."""
    return [parse_profile(path) for path in sorted(boards_dir.glob("*.toml"))]
