"""SCons build script of the project-local `harness-cortexm` platform.

PlatformIO runs this for every environment in `firmware/platformio.ini`.  It
compiles bare-metal C with the system `arm-none-eabi-*` tools (Debian's
gcc-arm-none-eabi), so nothing is downloaded.  The board profile
`boards/<env>.toml` is the single source of the core, FPU, board-support
family, memory regions and stack size: this script writes the linker
script's MEMORY block from it.

The model comes from outside the project, through environment variables set
by `harness.hil.build`:

- `HARNESS_MODEL_DIR`: export directory with `model.h` and the generated C
  (`*.c`) or, for TFLite Micro, `model_data.cc`.
- `HARNESS_RUNTIME`: `generated` (default) or `tflm`.
- `TFLM_ROOT`: TFLite Micro source tree, only for the `tflm` runtime.

Only the model's sources and the small runtime glue are compiled into
`$BUILD_DIR/model` and `$BUILD_DIR/runtime`.  Everything else lives in
`$BUILD_DIR/src` and SCons reuses it between models, so a new trial
recompiles the model's translation units and the glue, then relinks.
With `tflm`, runtime/tflm/tflm_sources.py adds the TFLite Micro library
and splits the glue so that only the model's two units recompile.
"""

import os
import sys
import tomllib

from SCons.Script import Default, DefaultEnvironment

env = DefaultEnvironment()

PROJECT_DIR = env.subst("$PROJECT_DIR")
REPO_DIR = os.path.dirname(PROJECT_DIR)
PIOENV = env.subst("$PIOENV")

profile_path = os.path.join(REPO_DIR, "boards", PIOENV + ".toml")
if not os.path.isfile(profile_path):
    sys.stderr.write(
        "Error: board profile %s not found; every PlatformIO environment needs "
        "boards/<env>.toml\n" % profile_path
    )
    env.Exit(1)
with open(profile_path, "rb") as profile_file:
    profile = tomllib.load(profile_file)

runtime = os.environ.get("HARNESS_RUNTIME", "generated")
model_dir = os.environ.get("HARNESS_MODEL_DIR") or os.path.join(
    PROJECT_DIR, "models", "empty"
)
# Emulated boards get semihosting exit and the SysTick instruction counter
# instead of DWT CYCCNT, which QEMU does not model.
emulated = profile.get("emulator", {}).get("kind", "none") != "none"

core = profile["core"]
fpu = profile.get("fpu", "none")
family = profile["family"]

cpu_flags = ["-mcpu=%s" % core, "-mthumb"]
if fpu != "none":
    cpu_flags += ["-mfpu=%s" % fpu, "-mfloat-abi=hard"]
else:
    cpu_flags += ["-mfloat-abi=soft"]

env.Replace(
    AR="arm-none-eabi-gcc-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-gcc-ranlib",
    SIZETOOL="arm-none-eabi-size",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
)

env.Append(
    ASFLAGS=cpu_flags,
    CCFLAGS=cpu_flags
    + [
        "-O2",
        "-g",
        "-ffunction-sections",
        "-fdata-sections",
        "-fno-common",
        "-Wall",
        "-Wextra",
    ],
    CFLAGS=["-std=c11"],
    CXXFLAGS=["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"],
    CPPDEFINES=[
        ("BOARD_NAME", '\\"%s\\"' % profile["name"]),
        ("BOARD_CLOCK_HZ", "%dUL" % profile["clock_hz"]),
        ("BOARD_FAMILY_" + family.upper(), 1),
        ("HARNESS_EMULATED", 1 if emulated else 0),
    ],
    CPPPATH=[os.path.join(PROJECT_DIR, "include")],
    LINKFLAGS=cpu_flags
    + [
        "-nostartfiles",
        "--specs=nano.specs",
        "-Wl,--gc-sections",
        "-Wl,-Map,${BUILD_DIR}/firmware.map",
        "-Wl,--print-memory-usage",
        "-T",
        "${BUILD_DIR}/memory.ld",
        "-T",
        os.path.join(PROJECT_DIR, "ld", "sections.ld"),
    ],
    LIBS=["c_nano", "gcc", "nosys"],
)


def _write_linker_memory(build_dir):
    """Write `memory.ld`: MEMORY regions and sizes from the board profile.

    The file is rewritten only when its text changes, so SCons does not
    relink for nothing.
    """
    lines = ["/* Generated from %s by the harness-cortexm platform. */" % profile_path]
    lines.append("MEMORY")
    lines.append("{")
    for region in profile["memory"]:
        attributes = "rx" if region["kind"] == "flash" else "rwx"
        lines.append(
            "  %s (%s) : ORIGIN = 0x%08X, LENGTH = %d"
            % (region["name"], attributes, region["origin"], region["length"])
        )
    lines.append("}")
    flash = [r["name"] for r in profile["memory"] if r["kind"] == "flash"][0]
    ram = [r["name"] for r in profile["memory"] if r["kind"] == "ram"][0]
    lines.append('REGION_ALIAS("REGION_FLASH", %s);' % flash)
    lines.append('REGION_ALIAS("REGION_RAM", %s);' % ram)
    lines.append("__stack_size = %d;" % profile["stack_bytes"])
    lines.append("__heap_size = %d;" % profile.get("heap_bytes", 0))
    text = "\n".join(lines) + "\n"

    os.makedirs(build_dir, exist_ok=True)
    path = os.path.join(build_dir, "memory.ld")
    if not os.path.isfile(path) or open(path).read() != text:
        with open(path, "w") as out:
            out.write(text)
    return path


memory_ld = _write_linker_memory(env.subst("$BUILD_DIR"))


def _write_model_shape(build_dir):
    """Write `model_shape.h`: tensor shapes from the export's export.json.

    model.h gives only byte counts, so the runtime glue takes the shapes for
    the identify reply from here.  Without export.json (the empty model) the
    rank is 0, meaning unknown.  The file is rewritten only when its text
    changes, and only the glue includes it, so a new shape recompiles
    nothing else.
    """
    import json

    meta_path = os.path.join(model_dir, "export.json")
    shapes = {"INPUT": None, "OUTPUT": None}
    if os.path.isfile(meta_path):
        with open(meta_path) as meta_file:
            meta = json.load(meta_file)
        shapes = {"INPUT": meta.get("input_shape"), "OUTPUT": meta.get("output_shape")}
    lines = ["/* Generated by the harness-cortexm platform from %s. */" % meta_path]
    for name, shape in shapes.items():
        shape = list(shape or [])[:6]
        lines.append("#define MODEL_%s_RANK %d" % (name, len(shape)))
        lines.append("#define MODEL_%s_SHAPE {%s}" % (name, ", ".join(str(int(d)) for d in shape) or "0"))
    text = "\n".join(lines) + "\n"
    path = os.path.join(build_dir, "include", "model_shape.h")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.isfile(path) or open(path).read() != text:
        with open(path, "w") as out:
            out.write(text)
    return shapes


model_shapes = _write_model_shape(env.subst("$BUILD_DIR"))
env.Append(CPPPATH=[os.path.join("$BUILD_DIR", "include")])

# Board support: the common sources plus exactly one family file.
env.Replace(SRC_FILTER=["+<*.c>", "+<board/%s.c>" % family])

# The model and its runtime glue: the only sources that change between trials.
env.Append(CPPPATH=[model_dir])
if runtime == "generated":
    model_source_globs = ["*.c"]
    env.BuildSources(
        os.path.join("$BUILD_DIR", "model"), model_dir, ["+<*.c>"]
    )
    env.BuildSources(
        os.path.join("$BUILD_DIR", "runtime"),
        os.path.join(PROJECT_DIR, "runtime", "generated"),
    )
elif runtime == "tflm":
    tflm_root = os.environ.get("TFLM_ROOT", "")
    if not tflm_root or not os.path.isdir(os.path.join(tflm_root, "tensorflow", "lite", "micro")):
        sys.stderr.write(
            "Error: the tflm runtime needs TensorFlow Lite Micro sources; set "
            "TFLM_ROOT to a tflite-micro checkout (found %r)\n" % tflm_root
        )
        env.Exit(1)
    sys.path.insert(0, os.path.join(PROJECT_DIR, "runtime", "tflm"))
    import tflm_sources  # noqa: E402  (lives beside the runtime glue)

    tflm_sources.configure(env, tflm_root, model_dir)
    model_source_globs = ["model_data.cc"]
else:
    sys.stderr.write(
        "Error: HARNESS_RUNTIME=%r is not a runtime; use generated or tflm\n" % runtime
    )
    env.Exit(1)

target_elf = env.BuildProgram()
env.Depends(target_elf, [memory_ld, os.path.join(PROJECT_DIR, "ld", "sections.ld")])


def _write_relink_recipe(target, source, env):
    """Record the exact commands that rebuild the model part of this firmware.

    Runs after every link.  `relink-recipe.json` lists, for each object
    under `$BUILD_DIR/model` and `$BUILD_DIR/runtime`, the compiler command
    SCons ran, and the link command.  `harness.hil.build` replays them for
    the next model of the same board and runtime instead of starting
    PlatformIO, whose start-up alone takes about a second.
    """
    import json

    build_dir = env.subst("$BUILD_DIR")
    model_prefixes = tuple(os.path.join(build_dir, name) + os.sep for name in ("model", "runtime"))

    def argv_of(command, targets, sources):
        # SCons frees each node's executor once it is built, so the
        # commands are expanded again from the construction variables.
        lists = env.subst_list(command, target=targets, source=sources)
        if len(lists) != 1:
            raise RuntimeError("expected one command for %s, got %d" % (targets[0], len(lists)))
        return [str(arg) for arg in lists[0]]

    compiles = []
    for obj in source:
        path = obj.get_abspath()
        if path.startswith(model_prefixes):
            src = obj.sources[0]
            command = "$CXXCOM" if str(src).endswith((".cc", ".cpp")) else "$CCCOM"
            compiles.append({
                "source": src.srcnode().get_abspath(),
                "object": path,
                "argv": argv_of(command, [obj], [src]),
            })
    recipe = {
        "model_dir": os.path.abspath(model_dir),
        "model_source_globs": model_source_globs,
        "model_shapes": model_shapes,
        "runtime": runtime,
        "cwd": os.getcwd(),
        "compile": compiles,
        "link": {"argv": argv_of("$LINKCOM", target, source), "elf": target[0].get_abspath()},
    }
    with open(os.path.join(build_dir, "relink-recipe.json"), "w") as out:
        json.dump(recipe, out, indent=1)


env.AddPostAction(target_elf, _write_relink_recipe)

# `pio run -t upload` flashes a real board with the profile's tool; the
# serial port is not involved (the ELF goes over the debug probe).
upload = profile.get("upload", {})
if upload.get("method") == "openocd":
    env.Replace(
        UPLOADCMD='openocd -f %s -c "program {$SOURCE} verify reset exit"' % upload.get("target", "")
    )
elif upload.get("method") == "pyocd":
    env.Replace(UPLOADCMD="pyocd flash --target %s $SOURCE" % upload.get("target", ""))
else:
    env.Replace(
        UPLOADCMD='echo "board %s is emulated: run it with harness deploy" && exit 1' % profile["name"]
    )
env.AddPlatformTarget(
    "upload", target_elf, env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE"), "Upload"
)

Default([target_elf])
