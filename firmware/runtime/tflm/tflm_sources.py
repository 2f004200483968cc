"""Adds TensorFlow Lite Micro to a firmware build (imported by the platform builder).

TFLM_ROOT must be a self-contained TFLite Micro tree as written by
`python3 tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py
OUT_DIR` in a tflite-micro checkout: `tensorflow/` plus the headers it needs
under `third_party/` (flatbuffers, gemmlowp, ruy).  docs/firmware.md says
how to make one offline.

The interpreter and the reference kernels of the ops that runtime.cc
registers are compiled once into the static library `$BUILD_DIR/libtflm.a`,
whose compile flags do not depend on the model, so SCons reuses it for every
model of the same board.  The linker takes from it only the objects the
glue needs.  The glue is split so that its C++ half (runtime.cc, the
interpreter) does not depend on the model either: a new model recompiles
`model/model_data.o` (the flatbuffer as a C array) and
`model_info/model_info.o` (identify record, arena, buffers), then relinks.
"""

import json
import os
import sys

# Kernel sources of each op that runtime.cc's add_ops registers. Keep the
# two lists in step, because a missing file shows only at link time, as an
# undefined Register_* symbol.
KERNEL_SOURCES = {
    "CONV_2D": ["conv.cc", "conv_common.cc"],
    "DEPTHWISE_CONV_2D": ["depthwise_conv.cc", "depthwise_conv_common.cc"],
    "FULLY_CONNECTED": ["fully_connected.cc", "fully_connected_common.cc"],
    "ADD": ["add.cc", "add_common.cc"],
    "MUL": ["mul.cc", "mul_common.cc"],
    "MEAN": ["reduce.cc", "reduce_common.cc"],
    "AVERAGE_POOL_2D/MAX_POOL_2D": ["pooling.cc", "pooling_common.cc"],
    "PAD": ["pad.cc", "pad_common.cc"],
    "RESHAPE": ["reshape.cc", "reshape_common.cc"],
    "TRANSPOSE": ["transpose.cc", "transpose_common.cc"],
    "HARD_SWISH": ["hard_swish.cc", "hard_swish_common.cc"],
    "LOGISTIC": ["logistic.cc", "logistic_common.cc"],
    "SOFTMAX": ["softmax.cc", "softmax_common.cc"],
    "QUANTIZE": ["quantize.cc", "quantize_common.cc"],
}
# Helpers every kernel calls.
SHARED_KERNEL_SOURCES = ["kernel_util.cc", "micro_tensor_utils.cc"]

# Framework files only the TFLM unit tests use.
TEST_ONLY_SOURCES = [
    "test_helpers.cc",
    "test_helper_custom_ops.cc",
    "mock_micro_graph.cc",
    "fake_micro_context.cc",
    "recording_micro_allocator.cc",
]

# TFLM's release build (NDEBUG, no error strings) with the abort of its
# embedded targets (TF_LITE_MCU_DEBUG_LOG: a halt loop instead of libc's
# abort(), which would pull in signal handling and malloc).
TFLM_DEFINES = [
    "TF_LITE_STATIC_MEMORY",
    "TF_LITE_STRIP_ERROR_STRINGS",
    "TF_LITE_MCU_DEBUG_LOG",
    "NDEBUG",
]


def configure(env, tflm_root, model_dir):
    """Add the TFLM library, the glue and the model's C array to the build of `env`."""
    third_party = os.path.join(tflm_root, "third_party")
    tflm_env = env.Clone()
    tflm_env.Append(
        CPPPATH=[
            tflm_root,
            os.path.join(third_party, "flatbuffers", "include"),
            os.path.join(third_party, "gemmlowp"),
            os.path.join(third_party, "ruy"),
        ],
        CPPDEFINES=TFLM_DEFINES,
        # TFLM headers trip -Wextra in every unit; their warnings are not ours.
        CCFLAGS=["-Wno-unused-parameter", "-Wno-missing-field-initializers"],
    )

    micro = "tensorflow/lite/micro"
    source_filter = ["+<tensorflow/**/*.cc>", "-<%s/kernels/>" % micro]
    source_filter += ["-<%s/%s>" % (micro, name) for name in TEST_ONLY_SOURCES]
    kernels = [name for names in KERNEL_SOURCES.values() for name in names] + SHARED_KERNEL_SOURCES
    source_filter += ["+<%s/kernels/%s>" % (micro, name) for name in kernels]
    library = tflm_env.BuildLibrary(os.path.join("$BUILD_DIR", "tflm"), tflm_root, source_filter)

    arena_bytes = _arena_bytes(model_dir)
    if arena_bytes is None:
        sys.stderr.write(
            "Error: %s/export.json has no tflm_arena_bytes (exported with --no-arena-probe?); "
            "export again without that option to build the tflm runtime\n" % model_dir
        )
        env.Exit(1)
    glue_dir = os.path.join(env.subst("$PROJECT_DIR"), "runtime", "tflm")
    tflm_env.Append(CPPPATH=[glue_dir])
    tflm_env.BuildSources(os.path.join("$BUILD_DIR", "runtime"), glue_dir, ["+<runtime.cc>"])
    # The model's half of the glue is plain C and the only unit that uses
    # the arena size, so a new model leaves runtime.o and the library alone.
    model_env = env.Clone()
    model_env.Append(CPPPATH=[glue_dir], CPPDEFINES=[("TFLM_ARENA_BYTES", arena_bytes)])
    model_env.BuildSources(os.path.join("$BUILD_DIR", "model_info"), glue_dir, ["+<model_info.c>"])
    env.BuildSources(os.path.join("$BUILD_DIR", "model"), model_dir, ["+<model_data.cc>"])
    # Before libc: the library's undefined symbols resolve in the later ones.
    env.Prepend(LIBS=[library, "stdc++_nano", "m"])


def _arena_bytes(model_dir):
    """Arena for the interpreter: export.json tflm_arena_bytes plus 10 % and 1 KiB headroom.

    tflm_arena_bytes is the smallest arena the host TFLM accepted (the
    export's arena probe); the device build aligns and sizes some buffers
    differently, hence the headroom.  None without a probe (export
    --no-arena-probe): a guessed arena would make an allocation failure
    look like a device fault.
    """
    with open(os.path.join(model_dir, "export.json")) as meta_file:
        probed = json.load(meta_file).get("tflm_arena_bytes")
    return int(probed * 1.1) + 1024 if probed else None
