/*
 * The model-dependent half of the TFLite Micro glue: the identify record,
 * the arena of TFLM_ARENA_BYTES (export.json tflm_arena_bytes with
 * headroom, set by tflm_sources.py) and the I/O buffers.  Plain C with no
 * TFLite Micro header, so a new model recompiles this file and
 * model_data.cc in well under a second; runtime.cc is compiled once.
 */
#include <stdint.h>

#include "model.h"
#include "model_data.h"
#include "model_shape.h"
#include "runtime.h"
#include "tflm_model.h"

uint8_t g_tflm_arena[TFLM_ARENA_BYTES] __attribute__((aligned(16)));
int8_t g_tflm_output[MODEL_OUTPUT_BYTES > 0 ? MODEL_OUTPUT_BYTES : 1];
int8_t g_tflm_input_fallback[MODEL_INPUT_BYTES > 0 ? MODEL_INPUT_BYTES : 1];

const struct runtime_info g_runtime_info = RUNTIME_INFO_FROM_MODEL_H("tflm", MODEL_DATA_HASH, TFLM_ARENA_BYTES);
