"""A small hand-written int8 model in the export directory layout.

It implements the model.h interface with one fully connected layer (int8
weights, int32 bias, fixed-point requantization).  A numpy twin of the same
integer arithmetic is the host reference, so the firmware, protocol and
deploy path can be tested without the TFLite export.  `padding_bytes` adds a
constant array that the model references, to make a model of a given flash
size, and `arena_bytes` sets the size of its static arena in RAM (both for
the overflow tests).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

INPUT_SHAPE = (1, 1, 256, 6)  # NHWC, 1536 bytes: two load chunks
OUTPUT_ELEMENTS = 4
INPUT_ZERO_POINT = -3
OUTPUT_ZERO_POINT = 5
MULTIPLIER = 1234
SHIFT = 20


def reference_outputs(inputs: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """inputs: samples x 1536 int8; weights: 4 x 1536 int8; bias: 4 int32 -> samples x 4 int8."""
    acc = (inputs.astype(np.int64) - INPUT_ZERO_POINT) @ weights.astype(np.int64).T + bias.astype(np.int64)
    scaled = (acc * MULTIPLIER + (1 << (SHIFT - 1))) >> SHIFT
    return np.clip(scaled + OUTPUT_ZERO_POINT, -128, 127).astype(np.int8)


def _c_array(values: np.ndarray) -> str:
    items = [str(int(v)) for v in values.reshape(-1)]
    return ",\n".join(", ".join(items[i : i + 24]) for i in range(0, len(items), 24))


def write_handmade_model(
    out_dir: Path, *, samples: int = 40, seed: int = 0, padding_bytes: int = 0, arena_bytes: int = 16
) -> Path:
    """Write model.h, model.c, test_inputs.npy, test_labels.npy, reference_outputs.npy, export.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    input_bytes = int(np.prod(INPUT_SHAPE))
    weights = rng.integers(-128, 128, size=(OUTPUT_ELEMENTS, input_bytes), dtype=np.int8)
    bias = rng.integers(-20000, 20000, size=OUTPUT_ELEMENTS, dtype=np.int32)
    inputs = rng.integers(-128, 128, size=(samples, *INPUT_SHAPE[1:]), dtype=np.int8)
    reference = reference_outputs(inputs.reshape(samples, -1), weights, bias)
    labels = reference.argmax(axis=1).astype(np.int64)
    labels[::4] = (labels[::4] + 1) % OUTPUT_ELEMENTS  # a quarter wrong: accuracy 0.75
    accuracy = float(np.mean(reference.argmax(axis=1) == labels))

    digest = hashlib.sha256(
        weights.tobytes() + bias.tobytes() + padding_bytes.to_bytes(8, "little") + arena_bytes.to_bytes(8, "little")
    )
    model_hash = digest.hexdigest()[:16]

    (out_dir / "model.h").write_text(
        f"""#ifndef MODEL_H
#define MODEL_H
#include <stdint.h>
#define MODEL_INPUT_BYTES {input_bytes}
#define MODEL_OUTPUT_BYTES {OUTPUT_ELEMENTS}
#define MODEL_ARENA_BYTES {arena_bytes}
#define MODEL_INPUT_SCALE 0.05f
#define MODEL_INPUT_ZERO_POINT {INPUT_ZERO_POINT}
#define MODEL_OUTPUT_SCALE 0.1f
#define MODEL_OUTPUT_ZERO_POINT {OUTPUT_ZERO_POINT}
#define MODEL_HASH "{model_hash}"
int model_invoke(const int8_t *input, int8_t *output);
#endif
"""
    )
    padding = ""
    keep = ""
    if padding_bytes:
        padding = (
            f"static const int8_t g_padding[{padding_bytes}] = {{1}};\n"
            "static const int8_t *volatile g_keep_padding = g_padding;\n"
        )
        keep = "    (void)g_keep_padding;\n"
    (out_dir / "model.c").write_text(
        f"""#include "model.h"

static const int8_t g_weights[{OUTPUT_ELEMENTS}][{input_bytes}] = {{
{_c_array(weights)}
}};
static const int32_t g_bias[{OUTPUT_ELEMENTS}] = {{ {_c_array(bias)} }};
static volatile int64_t g_arena[{max(arena_bytes // 8, 1)}];
{padding}
int model_invoke(const int8_t *input, int8_t *output)
{{
{keep}    for (int j = 0; j < {OUTPUT_ELEMENTS}; j++) {{
        int64_t acc = g_bias[j];
        for (int i = 0; i < {input_bytes}; i++) {{
            acc += (int64_t)(input[i] - ({INPUT_ZERO_POINT})) * g_weights[j][i];
        }}
        g_arena[0] = acc;
        int64_t scaled = (g_arena[0] * {MULTIPLIER} + (1LL << {SHIFT - 1})) >> {SHIFT};
        scaled += {OUTPUT_ZERO_POINT};
        if (scaled > 127) scaled = 127;
        if (scaled < -128) scaled = -128;
        output[j] = (int8_t)scaled;
    }}
    return 0;
}}
"""
    )
    np.save(out_dir / "test_inputs.npy", inputs)
    np.save(out_dir / "test_labels.npy", labels)
    np.save(out_dir / "reference_outputs.npy", reference)
    meta = {
        "model_hash": model_hash,
        "host_int8_accuracy": accuracy,
        "gate": {"top1_agreement": 1.0, "logit_cosine": 1.0, "samples": samples},
        "ops": ["FULLY_CONNECTED"],
        "input_shape": list(INPUT_SHAPE),
        "output_shape": [1, OUTPUT_ELEMENTS],
        "input_scale": 0.05,
        "input_zero_point": INPUT_ZERO_POINT,
        "output_scale": 0.1,
        "output_zero_point": OUTPUT_ZERO_POINT,
        "tflm_arena_bytes": None,
        "generated_arena_bytes": arena_bytes,
        "weight_bytes": int(weights.size + 4 * bias.size + padding_bytes),
        "source_checkpoint": None,
    }
    (out_dir / "export.json").write_text(json.dumps(meta, indent=2))
    return out_dir
