/*
 * int8 inference kernels for the generated-C runtime.
 *
 * Each kernel takes a parameter struct that the generator fills at export
 * time (shapes, strides, padding, fixed-point multipliers, activation
 * range), so nothing is computed or allocated when the model runs. The
 * arithmetic follows the TensorFlow Lite int8 operator semantics: 32-bit
 * accumulators, per-channel fixed-point multipliers with round-half-away
 * "doubling high multiply" followed by a rounding right shift, and
 * saturation to the int8 range. Every kernel writes its whole output and
 * never reads it back, so an output buffer must not overlap its inputs.
 *
 * Strict C99, no dynamic memory, no stdio, no libm.
 */
#ifndef NN_KERNELS_H
#define NN_KERNELS_H

#include <stdint.h>

/* Maximum tensor rank handled by the shape-generic kernels. */
#define NN_MAX_RANK 6

/* CONV_2D on NHWC tensors, with weights laid out [out_c][k_h][k_w][filter_in_c]. */
typedef struct {
    int32_t batches, in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t k_h, k_w, filter_in_c;
    int32_t stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
    int32_t input_offset, output_offset, act_min, act_max;
    const int8_t *weights;
    const int32_t *bias;       /* out_c entries or NULL */
    const int32_t *multiplier; /* out_c entries */
    const int32_t *shift;      /* out_c entries */
} nn_conv_params;

/* DEPTHWISE_CONV_2D with weights [1][k_h][k_w][out_c], where out_c = in_c * depth_multiplier. */
typedef struct {
    int32_t batches, in_h, in_w, in_c;
    int32_t out_h, out_w, out_c, depth_multiplier;
    int32_t k_h, k_w;
    int32_t stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
    int32_t input_offset, output_offset, act_min, act_max;
    const int8_t *weights;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
} nn_depthwise_params;

/* FULLY_CONNECTED with weights [out_depth][accum_depth]. */
typedef struct {
    int32_t batches, accum_depth, out_depth;
    int32_t per_channel; /* 1: multiplier/shift have out_depth entries, 0: one entry */
    int32_t input_offset, filter_offset, output_offset, act_min, act_max;
    const int8_t *weights;
    const int32_t *bias;
    const int32_t *multiplier;
    const int32_t *shift;
} nn_fully_connected_params;

/*
 * Broadcast shapes of a binary op, padded on the left to NN_MAX_RANK.
 * A stride of 0 repeats an input along that dimension.
 */
typedef struct {
    int32_t count;      /* output elements */
    int32_t broadcast;  /* 0: both inputs have the output's shape */
    int32_t out_dims[NN_MAX_RANK];
    int32_t in1_strides[NN_MAX_RANK];
    int32_t in2_strides[NN_MAX_RANK];
} nn_broadcast_shape;

typedef struct {
    nn_broadcast_shape shape;
    int32_t input1_offset, input2_offset, output_offset, left_shift;
    int32_t input1_multiplier, input1_shift, input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift, act_min, act_max;
} nn_add_params;

typedef struct {
    nn_broadcast_shape shape;
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_multiplier, output_shift, act_min, act_max;
} nn_mul_params;

/* MEAN: the input is split into kept and reduced dimensions, each with its own strides. */
typedef struct {
    int32_t out_count, reduce_count;
    int32_t kept_rank, reduced_rank;
    int32_t kept_dims[NN_MAX_RANK], kept_strides[NN_MAX_RANK];
    int32_t reduced_dims[NN_MAX_RANK], reduced_strides[NN_MAX_RANK];
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift; /* already divided by reduce_count */
} nn_mean_params;

/* AVERAGE_POOL_2D and MAX_POOL_2D on NHWC tensors. */
typedef struct {
    int32_t batches, in_h, in_w, channels, out_h, out_w;
    int32_t filter_h, filter_w, stride_h, stride_w, pad_h, pad_w;
    int32_t act_min, act_max;
} nn_pool_params;

/* PAD with a constant; shapes padded on the left to NN_MAX_RANK. */
typedef struct {
    int32_t in_count, out_count;
    int32_t in_dims[NN_MAX_RANK];
    int32_t out_strides[NN_MAX_RANK];
    int32_t before[NN_MAX_RANK];
    int8_t pad_value;
} nn_pad_params;

/* TRANSPOSE: for each output dimension, its size and the stride of the matching input dimension. */
typedef struct {
    int32_t count, rank;
    int32_t out_dims[NN_MAX_RANK];
    int32_t in_strides[NN_MAX_RANK];
} nn_transpose_params;

typedef struct {
    int32_t count, input_zero_point, output_zero_point;
    int32_t output_multiplier, output_exponent;   /* int16 fixed-point multiplier */
    int32_t reluish_multiplier, reluish_exponent; /* int16 fixed-point multiplier */
} nn_hard_swish_params;

typedef struct {
    int32_t count, input_zero_point, input_range_radius;
    int32_t input_multiplier, input_left_shift;
} nn_logistic_params;

typedef struct {
    int32_t outer, depth;
    int32_t input_multiplier, input_left_shift, diff_min;
} nn_softmax_params;

typedef struct {
    int32_t count, input_zero_point, output_zero_point, multiplier, shift;
} nn_requantize_params;

void nn_conv2d(const nn_conv_params *p, const int8_t *input, int8_t *output);
void nn_depthwise_conv2d(const nn_depthwise_params *p, const int8_t *input, int8_t *output);
void nn_fully_connected(const nn_fully_connected_params *p, const int8_t *input, int8_t *output);
void nn_add(const nn_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);
void nn_mul(const nn_mul_params *p, const int8_t *input1, const int8_t *input2, int8_t *output);
void nn_mean(const nn_mean_params *p, const int8_t *input, int8_t *output);
void nn_average_pool(const nn_pool_params *p, const int8_t *input, int8_t *output);
void nn_max_pool(const nn_pool_params *p, const int8_t *input, int8_t *output);
void nn_pad(const nn_pad_params *p, const int8_t *input, int8_t *output);
void nn_transpose(const nn_transpose_params *p, const int8_t *input, int8_t *output);
void nn_copy(int32_t count, const int8_t *input, int8_t *output);
void nn_hard_swish(const nn_hard_swish_params *p, const int8_t *input, int8_t *output);
void nn_logistic(const nn_logistic_params *p, const int8_t *input, int8_t *output);
void nn_softmax(const nn_softmax_params *p, const int8_t *input, int8_t *output);
void nn_requantize(const nn_requantize_params *p, const int8_t *input, int8_t *output);

#endif /* NN_KERNELS_H */
