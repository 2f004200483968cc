"""Firmware builds through PlatformIO, offline.

PlatformIO runs with its core directory inside the project
(`firmware/.pio/core`), which this module creates from committed files: the
project-local platform (`firmware/platform`, linked by platformio.ini) and a
`tool-scons` package folder (`firmware/tools/tool-scons`) that runs the
SCons installed from PyPI.  With both in place PlatformIO has nothing to
download, so builds work on a fresh machine with an empty ~/.platformio.

Each (board, runtime, variant) gets its own build directory. SCons keeps
the board support, protocol and runtime objects there between trials and
recompiles only the model's translation units. The `empty` variant builds
the same firmware with the empty model once, for the model's memory share.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BuildError, ConfigError
from harness.hil.boards import REPO_DIR, BoardProfile
from harness.hil.memory import MemoryOverflow, MemoryUsage, measure_memory, parse_overflows
from harness.hil.replay import replay_build, write_stamp

logger = logging.getLogger(__name__)

FIRMWARE_DIR = REPO_DIR / "firmware"
CORE_DIR = FIRMWARE_DIR / ".pio" / "core"
BUILD_ROOT = FIRMWARE_DIR / ".pio" / "build"
EMPTY_MODEL_DIR = FIRMWARE_DIR / "models" / "empty"
TOOL_SCONS_DIR = FIRMWARE_DIR / "tools" / "tool-scons"
RUNTIMES = ("generated", "tflm")
BUILD_TIMEOUT_S = 600

_COMPILED_RE = re.compile(r"^Compiling (\S+)$", re.MULTILINE)


@dataclass
class BuildResult:
    """One firmware build.

    `elf_path` and `map_path` are None when the image does not fit; then
    `overflows` names each region and by how many bytes it overflowed.
    `compiled` lists the object files rebuilt (source: PlatformIO's
    "Compiling" lines, or the replayed commands), `seconds` the wall time
    of the build, and `method` how it ran: "platformio" (`pio run`) or
    "replay" (the model's commands recorded by the last `pio run`, see
    `harness.hil.replay`).
    """

    board: str
    runtime: str
    model_dir: Path
    build_dir: Path
    seconds: float
    compiled: list[str]
    elf_path: Path | None = None
    map_path: Path | None = None
    memory: MemoryUsage | None = None
    overflows: list[MemoryOverflow] = field(default_factory=list)
    log: str = ""
    method: str = "platformio"

    @property
    def fits(self) -> bool:
        return not self.overflows


def _failure_summary(log: str) -> str:
    """Return the error lines of a build log, then its last 30 lines (warnings can hide the errors)."""
    lines = log.splitlines()
    errors = [line for line in lines if "error:" in line.lower()][:10]
    tail = "\n".join(lines[-30:])
    return ("\n".join(errors) + "\n...\n" + tail) if errors else tail


def _overflow_result(result: BuildResult, profile: BoardProfile, model_dir: Path) -> BuildResult:
    result.overflows = parse_overflows(result.log)
    logger.info(
        "board %s: model %s does not fit: %s", profile.name, model_dir,
        ", ".join(f"{o.region} by {o.overflow_bytes} B" for o in result.overflows),
    )
    return result


def ensure_platformio_core() -> Path:
    """Create the offline PlatformIO core directory; return its path.

    Copies the committed `tool-scons` stand-in into `packages/` with the
    `.piopm` record PlatformIO uses to recognize an installed package
    (owner platformio, version 4.41101.0, what PlatformIO 6.2.0 requires).
    """
    package_dir = CORE_DIR / "packages" / "tool-scons"
    marker = package_dir / ".piopm"
    for source in TOOL_SCONS_DIR.iterdir():
        target = package_dir / source.name
        if not target.is_file() or target.read_bytes() != source.read_bytes():
            package_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    version = json.loads((TOOL_SCONS_DIR / "package.json").read_text())["version"]
    record = {
        "type": "tool",
        "name": "tool-scons",
        "version": version,
        "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None, "uri": None},
    }
    if not marker.is_file() or json.loads(marker.read_text()) != record:
        marker.write_text(json.dumps(record))
    return CORE_DIR


def check_runtime(runtime: str, model_dir: Path) -> None:
    """Raise ConfigError when `runtime` cannot build `model_dir` here, saying how to fix it."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime {runtime!r} is unknown; use one of {', '.join(RUNTIMES)}")
    if not (model_dir / "model.h").is_file():
        raise ConfigError(f"{model_dir} has no model.h; pass an export directory written by `harness export`")
    if runtime == "generated":
        if not any(model_dir.glob("*.c")):
            raise ConfigError(f"{model_dir} has no generated C sources (*.c) for the generated runtime")
        return
    tflm_root = os.environ.get("TFLM_ROOT", "")
    # A plain tflite-micro checkout has tensorflow/lite/micro too, but not
    # the third-party headers that create_tflm_tree.py copies in.
    required = [Path("tensorflow", "lite", "micro"), Path("third_party", "flatbuffers", "include")]
    if not tflm_root or not all((Path(tflm_root) / path).is_dir() for path in required):
        raise ConfigError(
            "the tflm runtime needs TensorFlow Lite Micro sources: in a checkout of "
            "github.com/tensorflow/tflite-micro run `python3 tensorflow/lite/micro/tools/project_generation/"
            "create_tflm_tree.py OUT_DIR` and set TFLM_ROOT=OUT_DIR (the directory holding "
            f"tensorflow/lite/micro and third_party/flatbuffers/include); TFLM_ROOT is {tflm_root!r}. "
            "docs/firmware.md says how to do it offline. "
            "The generated runtime (--runtime generated) needs nothing."
        )
    if not (model_dir / "model_data.cc").is_file():
        raise ConfigError(f"{model_dir} has no model_data.cc (the model as a C array) for the tflm runtime")
    meta_path = model_dir / "export.json"
    if not meta_path.is_file() or not json.loads(meta_path.read_text()).get("tflm_arena_bytes"):
        raise ConfigError(
            f"{meta_path} gives no tflm_arena_bytes, which sizes the TFLM arena (the export's arena probe; "
            "`harness export --no-arena-probe` skips it): export again without that option"
        )
    if not Path("/usr/lib/arm-none-eabi/include/c++").is_dir():
        raise ConfigError(
            "the tflm runtime is C++ and needs the ARM C++ library: apt-get install libstdc++-arm-none-eabi-newlib"
        )


def _platformio_env(build_dir: Path, model_dir: Path, runtime: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PLATFORMIO_CORE_DIR=str(ensure_platformio_core()),
        PLATFORMIO_BUILD_DIR=str(build_dir),
        PLATFORMIO_SETTING_ENABLE_TELEMETRY="no",
        PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL="3650",
        PLATFORMIO_SETTING_CHECK_PRUNE_SYSTEM_THRESHOLD="0",
        PLATFORMIO_NO_ANSI="true",
        HARNESS_MODEL_DIR=str(model_dir),
        HARNESS_RUNTIME=runtime,
    )
    return env


def upload_firmware(profile: BoardProfile, model_dir: Path, runtime: str = "generated") -> None:
    """Flash the last build of `model_dir` onto a real board with the profile's tool.

    Runs `pio run -t upload` on the same build directory, so nothing is
    rebuilt.  Raises ConfigError when the tool is not installed and
    BuildError when flashing fails.
    """
    if profile.emulated:
        raise ConfigError(f"board {profile.name} is emulated; it needs no upload")
    tool = profile.upload_method
    if shutil.which(tool) is None:
        install = "apt-get install openocd" if tool == "openocd" else "pip install pyocd"
        raise ConfigError(
            f"board {profile.name} uploads with {tool}, which is not on PATH; run `{install}`, "
            "or flash the ELF yourself and pass --no-upload"
        )
    model_dir = Path(model_dir).resolve()
    build_dir = build_dir_for(profile, runtime, "model")
    command = [
        sys.executable, "-m", "platformio", "run", "--project-dir", str(FIRMWARE_DIR),
        "-e", profile.pio_env, "-t", "upload",
    ]
    logger.info("board %s: flashing %s with %s", profile.name, model_dir.name, tool)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        completed = subprocess.run(
            command, env=_platformio_env(build_dir, model_dir, runtime), capture_output=True, text=True,
            timeout=BUILD_TIMEOUT_S, cwd=FIRMWARE_DIR,
        )
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-20:])
        raise BuildError(f"upload to {profile.name} with {tool} failed:\n{tail}")


def build_dir_for(profile: BoardProfile, runtime: str, variant: str) -> Path:
    """PlatformIO build_dir of one (runtime, variant); the board's env is a subfolder."""
    return BUILD_ROOT / f"{runtime}-{variant}"


def build_firmware(
    profile: BoardProfile,
    model_dir: Path,
    runtime: str = "generated",
    *,
    variant: str = "model",
    out_dir: Path | None = None,
) -> BuildResult:
    """Build the firmware for `profile` with the model in `model_dir`.

    Returns a BuildResult; a memory-region overflow is returned in
    `overflows`, not raised.  Other build failures raise BuildError with the
    end of the build log.  With `out_dir`, the ELF and map are copied there.
    Without it, `elf_path` and `map_path` point into the build directory, so
    the next build of the same board and runtime overwrites them.
    """
    model_dir = Path(model_dir).resolve()
    check_runtime(runtime, model_dir)
    build_dir = build_dir_for(profile, runtime, variant)
    build_dir.mkdir(parents=True, exist_ok=True)
    env = _platformio_env(build_dir, model_dir, runtime)
    command = [sys.executable, "-m", "platformio", "run", "--project-dir", str(FIRMWARE_DIR), "-e", profile.pio_env]

    env_build_dir = build_dir / profile.pio_env
    fingerprint = firmware_fingerprint(profile)
    tflm_root = os.environ.get("TFLM_ROOT", "") if runtime == "tflm" else ""

    # One build at a time per build directory: SCons state is not shared-safe.
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.perf_counter()
        # Emulated boards only: a real board is flashed by `pio run -t
        # upload`, which would rebuild the model through SCons anyway. And
        # the generated runtime only: the tflm glue is compiled with the
        # model's arena size as a define, which a replay would not update.
        replayed = (
            replay_build(env_build_dir, model_dir, fingerprint, tflm_root)
            if profile.emulated and runtime == "generated"
            else None
        )
        if replayed is not None and (replayed.linked or parse_overflows(replayed.log)):
            result = BuildResult(
                board=profile.name, runtime=runtime, model_dir=model_dir, build_dir=env_build_dir,
                seconds=time.perf_counter() - started, compiled=replayed.compiled, log=replayed.log,
                method="replay",
            )
            if not replayed.linked:
                return _overflow_result(result, profile, model_dir)
            built_elf, built_map = replayed.elf_path, replayed.map_path
        else:
            if replayed is not None:
                logger.info("replayed link for %s failed without an overflow; running PlatformIO", profile.name)
            try:
                completed = subprocess.run(
                    command, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, cwd=FIRMWARE_DIR
                )
            except subprocess.TimeoutExpired as err:
                raise BuildError(f"pio run for {profile.name} took over {BUILD_TIMEOUT_S} s") from err
            log = completed.stdout + completed.stderr
            result = BuildResult(
                board=profile.name,
                runtime=runtime,
                model_dir=model_dir,
                build_dir=env_build_dir,
                seconds=time.perf_counter() - started,
                compiled=_COMPILED_RE.findall(log),
                log=log,
            )
            if completed.returncode != 0:
                if parse_overflows(log):
                    return _overflow_result(result, profile, model_dir)
                raise BuildError(
                    f"firmware build for {profile.name} ({runtime}, {model_dir}) failed:\n{_failure_summary(log)}"
                )
            write_stamp(env_build_dir, fingerprint, tflm_root)
            built_elf, built_map = env_build_dir / "firmware.elf", env_build_dir / "firmware.map"

        elf_path, map_path = built_elf, built_map
        if out_dir is not None:
            out_dir = Path(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            elf_path = Path(shutil.copy2(elf_path, out_dir / "firmware.elf"))
            map_path = Path(shutil.copy2(map_path, out_dir / "firmware.map"))
        result.elf_path = elf_path
        result.map_path = map_path
        result.memory = measure_memory(elf_path, map_path, {r.name: r.kind for r in profile.memory})

    logger.info(
        "board %s: built %s in %.2f s by %s (%d units compiled), flash %d B, RAM %d B",
        profile.name, model_dir.name, result.seconds, result.method, len(result.compiled),
        result.memory.flash_bytes, result.memory.ram_bytes,
    )
    return result


_EMPTY_CACHE: dict[tuple[str, str], MemoryUsage] = {}


def firmware_fingerprint(profile: BoardProfile) -> str:
    """SHA-256 of every firmware source, the platform builder and the board profile.

    Everything a build depends on except the model and the toolchain.
    """
    digest = hashlib.sha256()
    roots = [FIRMWARE_DIR / name for name in ("src", "include", "ld", "platform", "runtime", "models")]
    files = sorted(
        path for root in roots for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    )
    for path in files + [FIRMWARE_DIR / "platformio.ini", profile.path]:
        digest.update(str(path.relative_to(REPO_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def empty_model_memory(profile: BoardProfile, runtime: str = "generated") -> MemoryUsage:
    """Memory of the firmware with the empty model, built once per board and firmware version.

    The result is cached in memory and in `empty-memory.json` beside the
    build, keyed by `firmware_fingerprint`, so later trials and processes
    skip the build.
    """
    key = (profile.name, runtime)
    if key in _EMPTY_CACHE:
        return _EMPTY_CACHE[key]

    # The empty model has no model_data.cc, so the tflm baseline uses the
    # generated glue too; its share then includes the interpreter.
    baseline_runtime = "generated"
    cache_path = build_dir_for(profile, baseline_runtime, "empty") / profile.pio_env / "empty-memory.json"
    fingerprint = firmware_fingerprint(profile)
    if cache_path.is_file():
        cached = json.loads(cache_path.read_text())
        if cached.get("fingerprint") == fingerprint:
            _EMPTY_CACHE[key] = MemoryUsage(
                flash_bytes=cached["flash_bytes"], ram_bytes=cached["ram_bytes"], regions=(),
                size_text=cached["size_text"], size_data=cached["size_data"], size_bss=cached["size_bss"],
            )
            return _EMPTY_CACHE[key]

    result = build_firmware(profile, EMPTY_MODEL_DIR, baseline_runtime, variant="empty")
    assert result.memory is not None, "the empty model always fits"
    memory = result.memory
    cache_path.write_text(json.dumps({
        "fingerprint": fingerprint, "flash_bytes": memory.flash_bytes, "ram_bytes": memory.ram_bytes,
        "size_text": memory.size_text, "size_data": memory.size_data, "size_bss": memory.size_bss,
    }))
    _EMPTY_CACHE[key] = memory
    return memory
