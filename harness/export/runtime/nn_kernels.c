/*
 * int8 inference kernels for the generated-C runtime (see nn_kernels.h).
 *
 * The fixed-point helpers reproduce the TensorFlow Lite reference
 * arithmetic bit for bit. They are a rounding doubling high multiply that
 * saturates only for INT32_MIN * INT32_MIN, a divide by a power of two
 * that rounds half away from zero, and the gemmlowp-style fixed-point
 * exp, reciprocal and logistic used by SOFTMAX and LOGISTIC. Signed right
 * shifts are assumed to be arithmetic, as they are with GCC and Clang.
 */
#include "nn_kernels.h"

#include <stddef.h>
#include <string.h>

#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
#define NN_USE_SIMD32 1
#else
#define NN_USE_SIMD32 0
#endif

/* ---- Fixed-point arithmetic on int32 ---------------------------------- */

/* Two's-complement wrapping add, which the reference gets from int32 overflow. */
static int32_t wrap_add(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t wrap_sub(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

static int32_t wrap_shift_left(int32_t x, int32_t amount)
{
    return (int32_t)((uint32_t)x << amount);
}

static int32_t rounding_doubling_high_mul(int32_t a, int32_t b)
{
    int64_t product;
    int64_t nudge;

    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    product = (int64_t)a * (int64_t)b;
    nudge = product >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((product + nudge) / ((int64_t)1 << 31));
}

static int32_t rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);

    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* Return x * multiplier * 2^shift, rounded, where multiplier is a Q0.31 value in [0.5, 1). */
static int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left_shift = shift > 0 ? shift : 0;
    const int32_t right_shift = shift > 0 ? 0 : -shift;

    return rounding_divide_by_pot(
        rounding_doubling_high_mul(wrap_shift_left(x, left_shift), multiplier), right_shift);
}

/* Multiply by 2^exponent: saturating for exponent > 0, rounding for exponent < 0. */
static int32_t saturating_rounding_multiply_by_pot(int32_t x, int32_t exponent)
{
    int32_t threshold;

    if (exponent == 0) {
        return x;
    }
    if (exponent < 0) {
        return rounding_divide_by_pot(x, -exponent);
    }
    threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return wrap_shift_left(x, exponent);
}

static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;

    return (int32_t)((sum + sign) / 2);
}

static int32_t clamp_int32(int32_t x, int32_t low, int32_t high)
{
    if (x < low) {
        return low;
    }
    if (x > high) {
        return high;
    }
    return x;
}

/* exp(a) for a in [-1/4, 0), a and the result in Q0.31. */
static int32_t exp_on_interval_minus_quarter_to_zero(int32_t a)
{
    const int32_t constant_term = 1895147668;    /* exp(-1/8) in Q0.31 */
    const int32_t constant_one_third = 715827883; /* 1/3 in Q0.31 */
    const int32_t x = wrap_add(a, (int32_t)1 << 28);
    const int32_t x2 = rounding_doubling_high_mul(x, x);
    const int32_t x3 = rounding_doubling_high_mul(x2, x);
    const int32_t x4 = rounding_doubling_high_mul(x2, x2);
    const int32_t x4_over_4 = rounding_divide_by_pot(x4, 2);
    const int32_t poly = rounding_divide_by_pot(
        wrap_add(rounding_doubling_high_mul(wrap_add(x4_over_4, x3), constant_one_third), x2), 1);

    return wrap_add(constant_term, rounding_doubling_high_mul(constant_term, wrap_add(x, poly)));
}

/* exp(a) for a <= 0, a with `integer_bits` integer bits, the result in Q0.31. */
static int32_t exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    /* exp(-2^k) in Q0.31 for k = -2 .. 4 */
    static const int32_t barrel_multipliers[7] = {
        1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_quarter = wrap_sub(a & mask, one_quarter);
    const int32_t remainder = wrap_sub(a_mod_quarter_minus_quarter, a);
    int32_t result = exp_on_interval_minus_quarter_to_zero(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_quarter, integer_bits));
    int32_t exponent;

    for (exponent = -2; exponent <= 4; ++exponent) {
        if (integer_bits > exponent) {
            const int32_t bit = fractional_bits + exponent;
            if ((remainder & ((int32_t)1 << bit)) != 0) {
                result = rounding_doubling_high_mul(result, barrel_multipliers[exponent + 2]);
            }
        }
    }
    if (integer_bits > 5) {
        const int32_t clamp = -((int32_t)1 << (36 - integer_bits));
        if (a < clamp) {
            result = 0;
        }
    }
    if (a == 0) {
        result = INT32_MAX;
    }
    return result;
}

/* 1 / (1 + a) for a in [0, 1), Newton-Raphson in Q2.29, a and the result in Q0.31. */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    const int32_t one_q2 = (int32_t)1 << 29;
    int32_t x = wrap_add(1515870810, rounding_doubling_high_mul(half_denominator, -1010580540));
    int i;

    for (i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = rounding_doubling_high_mul(half_denominator, x);
        const int32_t one_minus = wrap_sub(one_q2, half_denominator_times_x);
        x = wrap_add(x, saturating_rounding_multiply_by_pot(rounding_doubling_high_mul(x, one_minus), 2));
    }
    return saturating_rounding_multiply_by_pot(x, 1);
}

/* 1 / (1 + exp(-a)) with a in Q4.27, the result in Q0.31. */
static int32_t logistic_q4(int32_t a)
{
    int32_t magnitude;
    int32_t result_if_positive;

    if (a == 0) {
        return (int32_t)1 << 30;
    }
    magnitude = a > 0 ? a : wrap_sub(0, a);
    result_if_positive = one_over_one_plus_x(exp_on_negative_values(wrap_sub(0, magnitude), 4));
    return a > 0 ? result_if_positive : wrap_sub(INT32_MAX, result_if_positive);
}

static int32_t count_leading_zeros(uint32_t x)
{
    int32_t count = 0;

    if (x == 0) {
        return 32;
    }
    while ((x & 0x80000000u) == 0) {
        x <<= 1;
        ++count;
    }
    return count;
}

/* ---- Fixed-point arithmetic on int16 (HARD_SWISH) ---------------------- */

static int16_t rounding_doubling_high_mul16(int16_t a, int16_t b)
{
    int32_t product;
    int32_t nudge;

    if (a == INT16_MIN && b == INT16_MIN) {
        return INT16_MAX;
    }
    product = (int32_t)a * (int32_t)b;
    nudge = product >= 0 ? (1 << 14) : (1 - (1 << 14));
    return (int16_t)((product + nudge) / (1 << 15));
}

/* Doubling high multiply without rounding (truncates toward zero). */
static int16_t doubling_high_mul16(int16_t a, int16_t b)
{
    if (a == INT16_MIN && b == INT16_MIN) {
        return INT16_MAX;
    }
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

static int16_t rounding_divide_by_pot16(int16_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);

    return (int16_t)((x >> exponent) + (remainder > threshold ? 1 : 0));
}

static int16_t saturating_left_shift16(int16_t x, int32_t amount)
{
    int64_t result = (int64_t)x * ((int64_t)1 << amount);

    if (result > INT16_MAX) {
        result = INT16_MAX;
    }
    if (result < INT16_MIN) {
        result = INT16_MIN;
    }
    return (int16_t)result;
}

/* ---- Shape helpers ----------------------------------------------------- */

/* Offset of flat row-major index `index` over `dims` under `strides`. */
static int32_t strided_offset(int32_t index, int32_t rank, const int32_t *dims, const int32_t *strides)
{
    int32_t offset = 0;
    int32_t axis;

    for (axis = rank - 1; axis >= 0; --axis) {
        offset += (index % dims[axis]) * strides[axis];
        index /= dims[axis];
    }
    return offset;
}

/* ---- Kernels ----------------------------------------------------------- */

/*
 * Sum over i < n of w[i] * (x[i] + x_offset), the inner product of every
 * convolution. Integer addition is associative, so the result is the same
 * in any order.
 *
 * On cores with the DSP extension (Cortex-M4, M7, M33) four terms take two
 * SMLAD instructions. SXTB16 splits a word of four int8 values into its
 * even and odd bytes as two int16 halves. SXTAB16 does the same and adds
 * the offset to both halves, and x + x_offset fits int16 because both lie
 * in [-128, 128]. SMLAD multiplies the halves pairwise and adds both
 * products to the accumulator. With arm-none-eabi-gcc 12 at -O2 the loop is
 * 11 instructions per four terms, and convolutions are most of an
 * inference (79 % of the instructions of a BasicMotions dscnn_se under
 * callgrind). Written here instead of calling CMSIS-NN so the generated C
 * stays one self-contained source with no vendor library.
 */
#if NN_USE_SIMD32
static uint32_t rotate_right_8(uint32_t word)
{
    return (word >> 8) | (word << 24); /* compiles to one ROR */
}
#endif

static int32_t dot_with_offset(const int8_t *w, const int8_t *x, int32_t n, int32_t x_offset)
{
    int32_t acc = 0;
    int32_t i = 0;
#if NN_USE_SIMD32
    const uint32_t offset_pair = ((uint32_t)(uint16_t)x_offset << 16) | (uint16_t)x_offset;

    for (; i + 4 <= n; i += 4) {
        uint32_t w_word;
        uint32_t x_word;
        memcpy(&w_word, w + i, sizeof w_word);
        memcpy(&x_word, x + i, sizeof x_word);
        acc = __smlad(__sxtb16(w_word), __sxtab16(offset_pair, x_word), acc);
        acc = __smlad(__sxtb16(rotate_right_8(w_word)), __sxtab16(offset_pair, rotate_right_8(x_word)), acc);
    }
#endif
    for (; i < n; ++i) {
        acc += (int32_t)w[i] * ((int32_t)x[i] + x_offset);
    }
    return acc;
}

void nn_conv2d(const nn_conv_params *p, const int8_t *input, int8_t *output)
{
    const int32_t groups = p->in_c / p->filter_in_c;
    const int32_t filters_per_group = p->out_c / groups;
    int32_t b, oy, ox, oc, ky, kx;

    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                for (oc = 0; oc < p->out_c; ++oc) {
                    const int32_t channel_base = (oc / filters_per_group) * p->filter_in_c;
                    int32_t acc = 0;
                    for (ky = 0; ky < p->k_h; ++ky) {
                        const int32_t in_y = in_y0 + p->dilation_h * ky;
                        if (in_y < 0 || in_y >= p->in_h) {
                            continue;
                        }
                        for (kx = 0; kx < p->k_w; ++kx) {
                            const int32_t in_x = in_x0 + p->dilation_w * kx;
                            const int8_t *in_row;
                            const int8_t *w_row;
                            if (in_x < 0 || in_x >= p->in_w) {
                                continue;
                            }
                            in_row = input + ((b * p->in_h + in_y) * p->in_w + in_x) * p->in_c + channel_base;
                            w_row = p->weights + ((oc * p->k_h + ky) * p->k_w + kx) * p->filter_in_c;
                            acc += dot_with_offset(w_row, in_row, p->filter_in_c, p->input_offset);
                        }
                    }
                    if (p->bias != NULL) {
                        acc += p->bias[oc];
                    }
                    acc = multiply_by_quantized_multiplier(acc, p->multiplier[oc], p->shift[oc]);
                    acc += p->output_offset;
                    output[((b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] =
                        (int8_t)clamp_int32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

void nn_depthwise_conv2d(const nn_depthwise_params *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, ic, m, ky, kx;

    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                for (ic = 0; ic < p->in_c; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m) {
                        const int32_t oc = ic * p->depth_multiplier + m;
                        int32_t acc = 0;
                        for (ky = 0; ky < p->k_h; ++ky) {
                            const int32_t in_y = in_y0 + p->dilation_h * ky;
                            if (in_y < 0 || in_y >= p->in_h) {
                                continue;
                            }
                            for (kx = 0; kx < p->k_w; ++kx) {
                                const int32_t in_x = in_x0 + p->dilation_w * kx;
                                int32_t in_value;
                                if (in_x < 0 || in_x >= p->in_w) {
                                    continue;
                                }
                                in_value = input[((b * p->in_h + in_y) * p->in_w + in_x) * p->in_c + ic];
                                acc += (int32_t)p->weights[(ky * p->k_w + kx) * p->out_c + oc] *
                                       (in_value + p->input_offset);
                            }
                        }
                        if (p->bias != NULL) {
                            acc += p->bias[oc];
                        }
                        acc = multiply_by_quantized_multiplier(acc, p->multiplier[oc], p->shift[oc]);
                        acc += p->output_offset;
                        output[((b * p->out_h + oy) * p->out_w + ox) * p->out_c + oc] =
                            (int8_t)clamp_int32(acc, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

void nn_fully_connected(const nn_fully_connected_params *p, const int8_t *input, int8_t *output)
{
    int32_t b, o, d;

    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_row = input + b * p->accum_depth;
        for (o = 0; o < p->out_depth; ++o) {
            const int8_t *w_row = p->weights + o * p->accum_depth;
            const int32_t channel = p->per_channel ? o : 0;
            int32_t acc = 0;
            for (d = 0; d < p->accum_depth; ++d) {
                acc += ((int32_t)w_row[d] + p->filter_offset) * ((int32_t)in_row[d] + p->input_offset);
            }
            if (p->bias != NULL) {
                acc += p->bias[o];
            }
            acc = multiply_by_quantized_multiplier(acc, p->multiplier[channel], p->shift[channel]);
            acc += p->output_offset;
            output[b * p->out_depth + o] = (int8_t)clamp_int32(acc, p->act_min, p->act_max);
        }
    }
}

static void broadcast_offsets(const nn_broadcast_shape *s, int32_t index, int32_t *offset1, int32_t *offset2)
{
    if (!s->broadcast) {
        *offset1 = index;
        *offset2 = index;
        return;
    }
    *offset1 = strided_offset(index, NN_MAX_RANK, s->out_dims, s->in1_strides);
    *offset2 = strided_offset(index, NN_MAX_RANK, s->out_dims, s->in2_strides);
}

void nn_add(const nn_add_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    int32_t i;

    for (i = 0; i < p->shape.count; ++i) {
        int32_t offset1, offset2, scaled1, scaled2, raw;
        broadcast_offsets(&p->shape, i, &offset1, &offset2);
        scaled1 = multiply_by_quantized_multiplier(
            ((int32_t)input1[offset1] + p->input1_offset) * (1 << p->left_shift),
            p->input1_multiplier, p->input1_shift);
        scaled2 = multiply_by_quantized_multiplier(
            ((int32_t)input2[offset2] + p->input2_offset) * (1 << p->left_shift),
            p->input2_multiplier, p->input2_shift);
        raw = multiply_by_quantized_multiplier(scaled1 + scaled2, p->output_multiplier, p->output_shift);
        raw += p->output_offset;
        output[i] = (int8_t)clamp_int32(raw, p->act_min, p->act_max);
    }
}

void nn_mul(const nn_mul_params *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    int32_t i;

    for (i = 0; i < p->shape.count; ++i) {
        int32_t offset1, offset2, product, raw;
        broadcast_offsets(&p->shape, i, &offset1, &offset2);
        product = ((int32_t)input1[offset1] + p->input1_offset) * ((int32_t)input2[offset2] + p->input2_offset);
        raw = multiply_by_quantized_multiplier(product, p->output_multiplier, p->output_shift);
        raw += p->output_offset;
        output[i] = (int8_t)clamp_int32(raw, p->act_min, p->act_max);
    }
}

void nn_mean(const nn_mean_params *p, const int8_t *input, int8_t *output)
{
    int32_t o, r;

    for (o = 0; o < p->out_count; ++o) {
        const int32_t base = strided_offset(o, p->kept_rank, p->kept_dims, p->kept_strides);
        int32_t sum = 0;
        int32_t value;
        for (r = 0; r < p->reduce_count; ++r) {
            sum += input[base + strided_offset(r, p->reduced_rank, p->reduced_dims, p->reduced_strides)];
        }
        value = multiply_by_quantized_multiplier(sum - p->input_zero_point * p->reduce_count, p->multiplier, p->shift);
        value += p->output_zero_point;
        output[o] = (int8_t)clamp_int32(value, -128, 127);
    }
}

void nn_average_pool(const nn_pool_params *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, c, fy, fx;

    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            const int32_t fy_start = in_y0 < 0 ? -in_y0 : 0;
            const int32_t fy_end = p->filter_h < p->in_h - in_y0 ? p->filter_h : p->in_h - in_y0;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                const int32_t fx_start = in_x0 < 0 ? -in_x0 : 0;
                const int32_t fx_end = p->filter_w < p->in_w - in_x0 ? p->filter_w : p->in_w - in_x0;
                for (c = 0; c < p->channels; ++c) {
                    int32_t acc = 0;
                    int32_t count = 0;
                    for (fy = fy_start; fy < fy_end; ++fy) {
                        for (fx = fx_start; fx < fx_end; ++fx) {
                            acc += input[((b * p->in_h + in_y0 + fy) * p->in_w + in_x0 + fx) * p->channels + c];
                            ++count;
                        }
                    }
                    if (count > 0) {
                        acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    }
                    output[((b * p->out_h + oy) * p->out_w + ox) * p->channels + c] =
                        (int8_t)clamp_int32(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

void nn_max_pool(const nn_pool_params *p, const int8_t *input, int8_t *output)
{
    int32_t b, oy, ox, c, fy, fx;

    for (b = 0; b < p->batches; ++b) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t in_y0 = oy * p->stride_h - p->pad_h;
            const int32_t fy_start = in_y0 < 0 ? -in_y0 : 0;
            const int32_t fy_end = p->filter_h < p->in_h - in_y0 ? p->filter_h : p->in_h - in_y0;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t in_x0 = ox * p->stride_w - p->pad_w;
                const int32_t fx_start = in_x0 < 0 ? -in_x0 : 0;
                const int32_t fx_end = p->filter_w < p->in_w - in_x0 ? p->filter_w : p->in_w - in_x0;
                for (c = 0; c < p->channels; ++c) {
                    int32_t max_value = -128;
                    for (fy = fy_start; fy < fy_end; ++fy) {
                        for (fx = fx_start; fx < fx_end; ++fx) {
                            const int32_t value =
                                input[((b * p->in_h + in_y0 + fy) * p->in_w + in_x0 + fx) * p->channels + c];
                            if (value > max_value) {
                                max_value = value;
                            }
                        }
                    }
                    output[((b * p->out_h + oy) * p->out_w + ox) * p->channels + c] =
                        (int8_t)clamp_int32(max_value, p->act_min, p->act_max);
                }
            }
        }
    }
}

void nn_pad(const nn_pad_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;

    for (i = 0; i < p->out_count; ++i) {
        output[i] = p->pad_value;
    }
    for (i = 0; i < p->in_count; ++i) {
        int32_t index = i;
        int32_t offset = 0;
        int32_t axis;
        for (axis = NN_MAX_RANK - 1; axis >= 0; --axis) {
            offset += (index % p->in_dims[axis] + p->before[axis]) * p->out_strides[axis];
            index /= p->in_dims[axis];
        }
        output[offset] = input[i];
    }
}

void nn_transpose(const nn_transpose_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;

    for (i = 0; i < p->count; ++i) {
        output[i] = input[strided_offset(i, p->rank, p->out_dims, p->in_strides)];
    }
}

void nn_copy(int32_t count, const int8_t *input, int8_t *output)
{
    int32_t i;

    for (i = 0; i < count; ++i) {
        output[i] = input[i];
    }
}

void nn_hard_swish(const nn_hard_swish_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;

    for (i = 0; i < p->count; ++i) {
        const int16_t value = (int16_t)((int32_t)input[i] - p->input_zero_point);
        const int16_t hires = (int16_t)(value * (1 << 7));
        const int16_t preshift = rounding_doubling_high_mul16(hires, (int16_t)p->output_multiplier);
        int16_t reluish = hires;
        int16_t result;
        int32_t shifted;

        if (p->reluish_exponent > 0) {
            reluish = saturating_left_shift16(reluish, p->reluish_exponent - 1);
        }
        reluish = rounding_doubling_high_mul16(reluish, (int16_t)p->reluish_multiplier);
        if (p->reluish_exponent > 0) {
            reluish = saturating_left_shift16(reluish, 1);
        }
        if (p->reluish_exponent < 0) {
            reluish = rounding_divide_by_pot16(reluish, -p->reluish_exponent);
        }
        /* Map [-1, 1) to [0, 1) in Q0.15. */
        reluish = (int16_t)(((int32_t)reluish + (1 << 15)) >> 1);
        result = rounding_divide_by_pot16(doubling_high_mul16(reluish, preshift), -p->output_exponent);
        result = (int16_t)(result + p->output_zero_point);
        shifted = result;
        output[i] = (int8_t)clamp_int32(shifted, -128, 127);
    }
}

void nn_logistic(const nn_logistic_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;

    for (i = 0; i < p->count; ++i) {
        const int32_t value = (int32_t)input[i] - p->input_zero_point;
        int32_t q4, q0, q23;

        if (value <= -p->input_range_radius) {
            output[i] = -128;
        } else if (value >= p->input_range_radius) {
            output[i] = 127;
        } else {
            q4 = multiply_by_quantized_multiplier(value, p->input_multiplier, p->input_left_shift);
            q0 = logistic_q4(q4);
            q23 = rounding_divide_by_pot(q0, 23);
            output[i] = (int8_t)clamp_int32(q23 - 128, -128, 127);
        }
    }
}

void nn_softmax(const nn_softmax_params *p, const int8_t *input, int8_t *output)
{
    int32_t row, c;

    for (row = 0; row < p->outer; ++row) {
        const int8_t *in_row = input + row * p->depth;
        int8_t *out_row = output + row * p->depth;
        int32_t max_value = -128;
        int32_t sum_of_exps = 0; /* Q12.19 */
        int32_t headroom, bits_over_unit, shifted_scale, exponent;

        for (c = 0; c < p->depth; ++c) {
            if (in_row[c] > max_value) {
                max_value = in_row[c];
            }
        }
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)in_row[c] - max_value;
            if (diff >= p->diff_min) {
                const int32_t scaled = rounding_doubling_high_mul(
                    wrap_shift_left(diff, p->input_left_shift), p->input_multiplier);
                sum_of_exps = wrap_add(sum_of_exps,
                                       rounding_divide_by_pot(exp_on_negative_values(scaled, 5), 12));
            }
        }
        /* 1 / sum_of_exps as a Q0.31 value times 2^-bits_over_unit. */
        headroom = count_leading_zeros((uint32_t)sum_of_exps);
        bits_over_unit = 12 - headroom;
        shifted_scale = one_over_one_plus_x(
            (int32_t)(((uint32_t)sum_of_exps << headroom) - ((uint32_t)1 << 31)));
        exponent = bits_over_unit + 31 - 8;
        for (c = 0; c < p->depth; ++c) {
            const int32_t diff = (int32_t)in_row[c] - max_value;
            if (diff >= p->diff_min) {
                const int32_t scaled = rounding_doubling_high_mul(
                    wrap_shift_left(diff, p->input_left_shift), p->input_multiplier);
                const int32_t exp_value = exp_on_negative_values(scaled, 5);
                const int32_t unsaturated =
                    rounding_divide_by_pot(rounding_doubling_high_mul(shifted_scale, exp_value), exponent);
                out_row[c] = (int8_t)clamp_int32(unsaturated - 128, -128, 127);
            } else {
                out_row[c] = -128;
            }
        }
    }
}

void nn_requantize(const nn_requantize_params *p, const int8_t *input, int8_t *output)
{
    int32_t i;

    for (i = 0; i < p->count; ++i) {
        const int32_t value = multiply_by_quantized_multiplier(
            (int32_t)input[i] - p->input_zero_point, p->multiplier, p->shift);
        output[i] = (int8_t)clamp_int32(value + p->output_zero_point, -128, 127);
    }
}
