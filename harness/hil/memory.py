"""Flash and RAM of a firmware image, per linker memory region.

Sources: the linker map gives the memory regions ("Memory Configuration")
and each output section's address, size and load address.  The ELF section
headers tell which sections occupy space (SHF_ALLOC), and which have
contents in the image (PROGBITS) or only reserve RAM (NOBITS: .bss, .heap,
.stack).
The totals are cross-checked against `arm-none-eabi-size` (Berkeley format:
flash = text + data, RAM = data + bss).

A linker "region overflowed" error is parsed into `MemoryOverflow` records,
so a model that does not fit is a measured, infeasible result.
"""

from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BuildError

SHT_PROGBITS = 1
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2

_OVERFLOW_RE = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")
_REGION_RE = re.compile(r"^(\S+)\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)(?:\s+(\S+))?\s*$")
_SECTION_RE = re.compile(r"^(\.\S+)?\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)(?:\s+load address 0x([0-9a-fA-F]+))?\s*$")


@dataclass(frozen=True)
class MemoryOverflow:
    """A linker region overflow: the build does not fit, by `overflow_bytes`."""

    region: str
    overflow_bytes: int


@dataclass(frozen=True)
class ElfSection:
    """One section header of the ELF (addresses and sizes in bytes)."""

    name: str
    type: int
    flags: int
    address: int
    size: int

    @property
    def allocated(self) -> bool:
        return bool(self.flags & SHF_ALLOC) and self.size > 0

    @property
    def has_contents(self) -> bool:
        return self.type != SHT_NOBITS


@dataclass(frozen=True)
class MapSection:
    """An output section from the linker map: VMA, size and load address (LMA)."""

    name: str
    address: int
    size: int
    load_address: int


@dataclass(frozen=True)
class RegionUsage:
    """Bytes used in one memory region, and the sections that use them."""

    name: str
    kind: str
    origin: int
    length: int
    used_bytes: int
    sections: tuple[str, ...]


@dataclass(frozen=True)
class MemoryUsage:
    """Flash and RAM of one firmware image.

    `flash_bytes` = .isr_vector + .text + .rodata + .ARM.exidx + the .data
    load image; `ram_bytes` = .data + .bss + .heap + .stack.  Source: linker
    map and ELF section headers, equal to arm-none-eabi-size text + data and
    data + bss.
    """

    flash_bytes: int
    ram_bytes: int
    regions: tuple[RegionUsage, ...]
    size_text: int
    size_data: int
    size_bss: int
    source: str = "linker-map+elf"

    def as_dict(self) -> dict:
        return {
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "source": self.source,
            "regions": {
                region.name: {
                    "kind": region.kind,
                    "used_bytes": region.used_bytes,
                    "length": region.length,
                    "sections": list(region.sections),
                }
                for region in self.regions
            },
        }


def parse_overflows(linker_output: str) -> list[MemoryOverflow]:
    """Return every "region `X' overflowed by N bytes" in the linker output."""
    found: dict[str, int] = {}
    for match in _OVERFLOW_RE.finditer(linker_output):
        found[match.group(1)] = max(found.get(match.group(1), 0), int(match.group(2)))
    return [MemoryOverflow(region, size) for region, size in found.items()]


def read_elf_sections(elf_path: Path) -> list[ElfSection]:
    """Read the section headers of a 32-bit little-endian ELF file."""
    data = Path(elf_path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise BuildError(f"{elf_path} is not a 32-bit little-endian ELF file; rebuild the firmware")
    section_offset = struct.unpack_from("<I", data, 0x20)[0]
    entry_size, count, names_index = struct.unpack_from("<HHH", data, 0x2E)

    headers = []
    for index in range(count):
        fields = struct.unpack_from("<10I", data, section_offset + index * entry_size)
        headers.append(fields)
    names_offset = headers[names_index][4]

    sections = []
    for name_offset, kind, flags, address, _offset, size, *_rest in headers:
        start = names_offset + name_offset
        name = data[start : data.index(b"\0", start)].decode("ascii")
        sections.append(ElfSection(name, kind, flags, address, size))
    return sections


def parse_map(map_path: Path) -> tuple[list[tuple[str, int, int]], dict[str, MapSection]]:
    """Parse a GNU ld map file.

    Returns the regions as (name, origin, length) from "Memory
    Configuration" and the top-level output sections by name.
    """
    lines = Path(map_path).read_text(errors="replace").splitlines()
    regions: list[tuple[str, int, int]] = []
    sections: dict[str, MapSection] = {}

    try:
        start = lines.index("Memory Configuration")
        end = lines.index("Linker script and memory map")
    except ValueError as err:
        raise BuildError(f"{map_path} has no memory configuration; is it a GNU ld map file?") from err

    for line in lines[start + 1 : end]:
        match = _REGION_RE.match(line)
        if match and match.group(1) not in ("Name", "*default*"):
            regions.append((match.group(1), int(match.group(2), 16), int(match.group(3), 16)))

    pending_name = None
    for line in lines[end + 1 :]:
        # Output sections start in column 0; a long name sits alone on its line
        # and its address and size follow on the next one.
        if line.startswith(".") and " " not in line.strip():
            pending_name = line.strip()
            continue
        match = _SECTION_RE.match(line)
        name = None
        if match and match.group(1):
            name = match.group(1)
        elif match and pending_name and line.startswith(" "):
            name = pending_name
        pending_name = None
        if name is None or name in sections:
            continue
        address = int(match.group(2), 16)
        load_address = int(match.group(4), 16) if match.group(4) else address
        sections[name] = MapSection(name, address, int(match.group(3), 16), load_address)
    return regions, sections


def run_size(elf_path: Path) -> tuple[int, int, int]:
    """Return (text, data, bss) from `arm-none-eabi-size` (Berkeley format)."""
    try:
        result = subprocess.run(
            ["arm-none-eabi-size", "-B", str(elf_path)], capture_output=True, text=True, check=True
        )
    except FileNotFoundError as err:
        raise BuildError("arm-none-eabi-size not found; install Debian's gcc-arm-none-eabi") from err
    except subprocess.CalledProcessError as err:
        raise BuildError(f"arm-none-eabi-size failed on {elf_path}: {err.stderr.strip()}") from err
    text, data, bss = result.stdout.splitlines()[1].split()[:3]
    return int(text), int(data), int(bss)


def measure_memory(elf_path: Path, map_path: Path, region_kinds: dict[str, str]) -> MemoryUsage:
    """Measure flash and RAM per region of a linked image.

    `region_kinds` maps region names to "flash" or "ram" (from the board
    profile).  Raises BuildError when the map and ELF disagree with
    arm-none-eabi-size, because then one of them was misread.
    """
    regions, map_sections = parse_map(map_path)
    elf_sections = [s for s in read_elf_sections(elf_path) if s.allocated]

    used = {name: 0 for name, _origin, _length in regions}
    members: dict[str, list[str]] = {name: [] for name, _origin, _length in regions}

    def region_of(address: int) -> str | None:
        for name, origin, length in regions:
            if origin <= address < origin + length:
                return name
        return None

    for section in elf_sections:
        placed = map_sections.get(section.name)
        if placed is None or placed.size != section.size or placed.address != section.address:
            raise BuildError(
                f"section {section.name} of {elf_path} (address 0x{section.address:08x}, "
                f"{section.size} bytes) does not match the map {map_path}; rebuild both together"
            )
        runtime_region = region_of(placed.address)
        if runtime_region is not None:
            used[runtime_region] += section.size
            members[runtime_region].append(section.name)
        # A section with contents whose load address lies elsewhere (.data) also
        # occupies its load region: the copy that startup code moves to RAM.
        if section.has_contents and placed.load_address != placed.address:
            load_region = region_of(placed.load_address)
            if load_region is not None:
                used[load_region] += section.size
                members[load_region].append(f"{section.name} (load image)")

    usage = tuple(
        RegionUsage(name, region_kinds.get(name, "unknown"), origin, length, used[name], tuple(members[name]))
        for name, origin, length in regions
    )
    flash_bytes = sum(r.used_bytes for r in usage if r.kind == "flash")
    ram_bytes = sum(r.used_bytes for r in usage if r.kind == "ram")

    text, data, bss = run_size(elf_path)
    if flash_bytes != text + data or ram_bytes != data + bss:
        raise BuildError(
            f"memory from {map_path} (flash {flash_bytes} B, RAM {ram_bytes} B) disagrees with "
            f"arm-none-eabi-size (text {text} + data {data} = {text + data} B, data + bss = "
            f"{data + bss} B); a section lies outside the profile's regions"
        )
    return MemoryUsage(flash_bytes, ram_bytes, usage, text, data, bss)
