/*
 * Empty model: implements the model.h interface with no computation and no
 * arena.  The harness builds it once per board and runtime; the memory of
 * a real model minus the memory of this build is the model's share.
 */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#define MODEL_INPUT_BYTES 1
#define MODEL_OUTPUT_BYTES 1
#define MODEL_ARENA_BYTES 0
#define MODEL_INPUT_SCALE 1.0f
#define MODEL_INPUT_ZERO_POINT 0
#define MODEL_OUTPUT_SCALE 1.0f
#define MODEL_OUTPUT_ZERO_POINT 0
#define MODEL_HASH "0000000000000000"

int model_invoke(const int8_t *input, int8_t *output);

#endif
