/*
 * Interface between the TFLite Micro glue (runtime.cc, compiled once per
 * board) and the model's side (model_info.c, compiled with each model):
 * the flatbuffer, the arena and the I/O buffers.  Sizes come from
 * g_runtime_info (input_bytes, output_bytes, arena_bytes), so runtime.cc
 * includes nothing that changes between models.
 *
 * Ownership: every buffer is a static array of model_info.c.  The arena
 * belongs to the interpreter after runtime_init. g_tflm_output contains the
 * last output. g_tflm_input_fallback receives input bytes only when the
 * interpreter failed to start, so the protocol always has somewhere to
 * write.
 */
#ifndef HARNESS_TFLM_MODEL_H
#define HARNESS_TFLM_MODEL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

extern const unsigned char g_model_data[];  /* model_data.cc, 16-byte aligned */
extern uint8_t g_tflm_arena[];               /* g_runtime_info.arena_bytes, 16-byte aligned */
extern int8_t g_tflm_output[];               /* g_runtime_info.output_bytes */
extern int8_t g_tflm_input_fallback[];       /* g_runtime_info.input_bytes */

#ifdef __cplusplus
}
#endif

#endif
