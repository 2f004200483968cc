"""Rebuild only the model part of a firmware without starting PlatformIO.

A new trial changes the model's translation units and nothing else, yet
`pio run` costs about a second before it compiles anything (loading
PlatformIO, the project configuration and SCons, then scanning every
node).  After each link, the platform builder writes `relink-recipe.json`
into the build directory: the compiler command of every object under
`model/` and `runtime/` and the link command, exactly as SCons expanded
them.  `replay_build` runs those commands again for another export
directory, in the same working directory and through `/bin/sh -c` as
SCons's POSIX spawn does, so the image is the one PlatformIO would link.

The replayed objects and image go to `fast/` inside the build directory,
never over SCons's own files. SCons decides what to rebuild from its
database of source signatures, not from the objects' contents. A replaced
object would therefore look current to SCons after the model changed back.

A recipe is used only while it still describes the build. The harness
stamps it after every successful `pio run` with the firmware fingerprint
(sources, builder, board profile) and the TFLite Micro tree. `replay_build`
returns None, meaning "run PlatformIO", when the stamp does not match, the
model's tensor shapes differ (they are compiled into `model_shape.h`), or
the new export has a different set of source files.

Objects whose command and dependencies are unchanged since the last replay
of the same firmware are kept, so the runtime kernels compile once per
study.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

RECIPE_NAME = "relink-recipe.json"
STAMP_NAME = "relink-stamp.json"
FAST_DIR_NAME = "fast"
MODEL_PLACEHOLDER = "<model>"
COMPILE_TIMEOUT_S = 300


@dataclass
class ReplayOutcome:
    """Result of `replay_build`: the image paths, the objects compiled and the tools' output."""

    elf_path: Path
    map_path: Path
    compiled: list[str]
    log: str
    linked: bool


def write_stamp(env_build_dir: Path, fingerprint: str, tflm_root: str) -> None:
    """Record that the recipe in `env_build_dir` matches the firmware with `fingerprint`."""
    if (env_build_dir / RECIPE_NAME).is_file():
        (env_build_dir / STAMP_NAME).write_text(json.dumps({"fingerprint": fingerprint, "tflm_root": tflm_root}))


def _shell_word(token: str) -> str:
    # What SCons does to a non-literal argument before `sh -c`: quote it
    # when it contains blanks, pass it through otherwise.
    return f'"{token}"' if (" " in token or "\t" in token) else token


def _swap_model_dir(token: str, old: str, new: str) -> str:
    for prefix in ("", "-I"):
        if token == prefix + old:
            return prefix + new
        if token.startswith(prefix + old + os.sep):
            return prefix + new + token[len(prefix + old):]
    return token


def _output_of(argv: list[str]) -> str:
    return argv[argv.index("-o") + 1]


def _load_recipe(env_build_dir: Path, fingerprint: str, tflm_root: str) -> dict | None:
    recipe_path = env_build_dir / RECIPE_NAME
    stamp_path = env_build_dir / STAMP_NAME
    if not recipe_path.is_file() or not stamp_path.is_file():
        return None
    try:
        stamp = json.loads(stamp_path.read_text())
        recipe = json.loads(recipe_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        logger.warning("ignoring unreadable build recipe in %s: %s", env_build_dir, err)
        return None
    if stamp != {"fingerprint": fingerprint, "tflm_root": tflm_root}:
        return None
    return recipe


def _model_shapes(model_dir: Path) -> dict:
    meta_path = model_dir / "export.json"
    if not meta_path.is_file():
        return {"INPUT": None, "OUTPUT": None}
    meta = json.loads(meta_path.read_text())
    return {"INPUT": meta.get("input_shape"), "OUTPUT": meta.get("output_shape")}


def _source_names(model_dir: Path, globs: list[str]) -> set[str]:
    return {path.name for pattern in globs for path in model_dir.glob(pattern)}


def _dependency_digest(paths: list[str], model_dir: Path, cwd: Path) -> str | None:
    """Hash the files an object was compiled from; None when one of them is missing.

    Relative names are relative to the compiler's working directory, the
    recipe's `cwd`, not to this process's.
    """
    digest = hashlib.sha256()
    for name in paths:
        path = cwd / Path(name.replace(MODEL_PLACEHOLDER, str(model_dir)))
        if not path.is_file():
            return None
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _read_dependencies(dep_file: Path, model_dir: Path) -> list[str]:
    """Files named in a `gcc -MMD` dependency file, the export directory as a placeholder."""
    text = dep_file.read_text().replace("\\\n", " ")
    _target, _colon, prerequisites = text.partition(": ")
    # gcc writes a blank inside a file name as a backslash and the blank.
    words = prerequisites.replace("\\ ", "\0").split()
    names = [word.replace("\0", " ") for word in words]
    return [name.replace(str(model_dir), MODEL_PLACEHOLDER) for name in names]


def replay_build(env_build_dir: Path, model_dir: Path, fingerprint: str, tflm_root: str) -> ReplayOutcome | None:
    """Compile `model_dir` and relink from the recipe; None when PlatformIO must build instead.

    The caller holds the build directory's lock. A failed compile also
    returns None, so PlatformIO rebuilds and reports the error itself. A
    failed link returns the outcome with `linked` False and the linker's
    output in `log`, because a region overflow is a result, not an error.
    """
    recipe = _load_recipe(env_build_dir, fingerprint, tflm_root)
    if recipe is None:
        return None
    old_dir = recipe["model_dir"]
    new_dir = str(model_dir)
    if _model_shapes(model_dir) != recipe["model_shapes"]:
        logger.info("tensor shapes of %s differ from the recorded build; running PlatformIO", model_dir)
        return None
    recorded = {Path(entry["source"]).name for entry in recipe["compile"] if entry["source"].startswith(old_dir + os.sep)}
    if _source_names(model_dir, recipe["model_source_globs"]) != recorded:
        logger.info("%s has other model sources than the recorded build; running PlatformIO", model_dir)
        return None

    cwd = Path(recipe["cwd"])
    fast_dir = env_build_dir / FAST_DIR_NAME
    objects_path = fast_dir / "objects.json"
    try:
        saved = json.loads(objects_path.read_text())
    except (OSError, json.JSONDecodeError):
        saved = {}
    # Objects replayed for an earlier firmware are never reused, even when
    # their dependency hashes match.
    objects = saved.get("objects", {}) if saved.get("fingerprint") == fingerprint else {}

    renamed: dict[str, str] = {}  # object token in the recipe -> replayed object path
    jobs = []
    for entry in recipe["compile"]:
        token = _output_of(entry["argv"])
        relative = Path(entry["object"]).relative_to(env_build_dir)
        target = fast_dir / relative
        renamed[token] = str(target)
        argv = [_swap_model_dir(arg, old_dir, new_dir) for arg in entry["argv"]]
        argv[argv.index("-o") + 1] = str(target)
        command = " ".join(_shell_word(arg) for arg in argv)
        # An object is current when its command (with the export directory
        # as a placeholder) and every file its last compile read (gcc -MMD)
        # are unchanged. So the runtime kernels, the same file in every
        # export, compile once per study. Their object keeps the first
        # export's path in its debug information, which changes no byte of
        # the image.
        generic = command.replace(new_dir, MODEL_PLACEHOLDER)
        known = objects.get(str(relative))
        if (
            isinstance(known, dict)
            and known.get("command") == generic
            and target.is_file()
            and known.get("inputs") is not None
            and known.get("inputs") == _dependency_digest(known.get("dependencies", []), model_dir, cwd)
        ):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        objects.pop(str(relative), None)
        dep_file = target.with_suffix(".d")
        jobs.append((str(relative), generic, dep_file, f"{command} -MMD -MF {_shell_word(str(dep_file))}"))

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["/bin/sh", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S
        )

    log_parts = []
    with ThreadPoolExecutor(max_workers=max(1, min(len(jobs), os.cpu_count() or 1))) as pool:
        results = list(pool.map(lambda job: run(job[3]), jobs))
    fast_dir.mkdir(parents=True, exist_ok=True)
    for (relative, generic, dep_file, _command), completed in zip(jobs, results):
        log_parts.append(f"Compiling {relative}\n{completed.stdout}{completed.stderr}")
        if completed.returncode != 0:
            logger.info("replayed compile of %s failed; running PlatformIO for its diagnostics", relative)
            objects_path.write_text(json.dumps({"fingerprint": fingerprint, "objects": objects}))
            return None
        dependencies = _read_dependencies(dep_file, model_dir)
        objects[relative] = {
            "command": generic,
            "dependencies": dependencies,
            "inputs": _dependency_digest(dependencies, model_dir, cwd),
        }
    objects_path.write_text(json.dumps({"fingerprint": fingerprint, "objects": objects}, indent=1))

    elf_path = fast_dir / "firmware.elf"
    map_path = fast_dir / "firmware.map"
    link = []
    for arg in recipe["link"]["argv"]:
        if arg in renamed:
            arg = renamed[arg]
        elif arg.startswith("-Wl,-Map,"):
            arg = f"-Wl,-Map,{map_path}"
        link.append(arg)
    link[link.index("-o") + 1] = str(elf_path)
    elf_path.unlink(missing_ok=True)
    completed = run(" ".join(_shell_word(arg) for arg in link))
    log_parts.append(f"Linking {elf_path}\n{completed.stdout}{completed.stderr}")
    return ReplayOutcome(
        elf_path=elf_path,
        map_path=map_path,
        compiled=[job[0] for job in jobs],
        log="".join(log_parts),
        linked=completed.returncode == 0 and elf_path.is_file(),
    )
