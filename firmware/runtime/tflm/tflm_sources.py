"""Adds TensorFlow Lite Micro to a firmware build (imported by the platform builder).

TFLM_ROOT must be a self-contained TFLite Micro tree as written by
`python3 tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py
OUT_DIR` in a tflite-micro checkout: `tensorflow/` plus the headers it needs
under `third_party/` (flatbuffers, gemmlowp, ruy, kissfft).  The interpreter
and reference kernels are compiled once into `$BUILD_DIR/tflm` and reused
for every model.

NOTE: this path has not been compiled here: the development machine has no
TFLite Micro tree and no libstdc++-arm-none-eabi-newlib.
"""

import json
import os


def configure(env, tflm_root, model_dir):
    """Add include paths, defines, the TFLM library and the model sources to `env`."""
    third_party = os.path.join(tflm_root, "third_party")
    env.Append(
        CPPPATH=[
            tflm_root,
            os.path.join(third_party, "flatbuffers", "include"),
            os.path.join(third_party, "gemmlowp"),
            os.path.join(third_party, "ruy"),
            os.path.join(third_party, "kissfft"),
        ],
        CPPDEFINES=[
            "TF_LITE_STATIC_MEMORY",
            "TF_LITE_STRIP_ERROR_STRINGS",
            ("TFLM_ARENA_BYTES", _arena_bytes(model_dir)),
        ],
        LIBS=["stdc++_nano", "m"],
    )
    env.BuildSources(
        os.path.join("$BUILD_DIR", "tflm"),
        tflm_root,
        [
            "+<tensorflow/**/*.cc>",
            "+<tensorflow/**/*.c>",
            "-<**/*_test.cc>",
            "-<**/examples/>",
            "-<**/tools/>",
            "-<**/benchmarks/>",
            "-<**/python/>",
            "-<**/integration_tests/>",
        ],
    )
    env.BuildSources(os.path.join("$BUILD_DIR", "model"), model_dir, ["+<model_data.cc>"])
    env.BuildSources(
        os.path.join("$BUILD_DIR", "runtime"),
        os.path.join(env.subst("$PROJECT_DIR"), "runtime", "tflm"),
        ["+<*.cc>"],
    )


def _arena_bytes(model_dir):
    """Arena for the interpreter: export.json tflm_arena_bytes plus 10 % headroom."""
    with open(os.path.join(model_dir, "export.json")) as meta_file:
        meta = json.load(meta_file)
    probed = meta.get("tflm_arena_bytes") or 65536
    return int(probed * 1.1) + 1024
