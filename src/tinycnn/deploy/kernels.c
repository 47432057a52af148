/* The kernels of tinycnn's C export (deploy/c_export.py copies into model.c those a network
 * uses). Integer arithmetic only; every buffer is the caller's. A line "//@ name" starts a
 * kernel; "//@ needs a, b" names the kernels it calls. */

//@ requantize
/* round(a * m / 2^31 / 2^shift), rounding half up: a fixed-point multiplier m in [2^30, 2^31),
 * as TFLite Micro's MultiplyByQuantizedMultiplier. */
static int32_t requantize(int32_t a, int32_t m, int shift)
{
    int64_t product = (int64_t)a * (int64_t)m;
    int total = 31 + shift;
    if (total <= 0)
        return (int32_t)(product * ((int64_t)1 << -total));
    return (int32_t)((product + ((int64_t)1 << (total - 1))) >> total);
}

//@ saturate
static int8_t saturate(int32_t v)
{
    return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
}

//@ round_shift
static int64_t round_shift(int64_t v, int bits)
{
    return (v + ((int64_t)1 << (bits - 1))) >> bits;
}

//@ input_table
static void input_table(const unsigned char *pixels, const int8_t *table, int8_t *y, int n)
{
    int i;
    for (i = 0; i < n; i++)
        y[i] = table[pixels[i]];
}

//@ conv
//@ needs requantize, saturate
/* A convolution (or, on a 1x1 map, a linear layer) over int8 values, padded with the
 * input's zero point; each output channel requantised by its own multiplier. */
static void conv(const struct conv_shape *s, const int8_t *x, int8_t *y, const int8_t *w,
                 const int32_t *bias, const int32_t *mult, const int8_t *shift)
{
    int co, oy, ox, ci, ky, kx;
    for (co = 0; co < s->cout; co++)
        for (oy = 0; oy < s->oh; oy++)
            for (ox = 0; ox < s->ow; ox++) {
                int32_t acc = bias[co];
                for (ci = 0; ci < s->cin; ci++)
                    for (ky = 0; ky < s->kh; ky++) {
                        int iy = oy * s->sh - s->ph + ky;
                        if (iy < 0 || iy >= s->h)
                            continue;
                        for (kx = 0; kx < s->kw; kx++) {
                            int ix = ox * s->sw - s->pw + kx;
                            if (ix < 0 || ix >= s->w)
                                continue;
                            acc += (int32_t)(x[(ci * s->h + iy) * s->w + ix] - s->in_zero)
                                 * (int32_t)w[((co * s->cin + ci) * s->kh + ky) * s->kw + kx];
                        }
                    }
                y[(co * s->oh + oy) * s->ow + ox] = saturate(s->out_zero + requantize(acc, mult[co], shift[co]));
            }
}

//@ max_pool
static void max_pool(const struct pool_shape *s, const int8_t *x, int8_t *y)
{
    int c, oy, ox, ky, kx;
    for (c = 0; c < s->c; c++)
        for (oy = 0; oy < s->oh; oy++)
            for (ox = 0; ox < s->ow; ox++) {
                int8_t best = -128;
                for (ky = 0; ky < s->kh; ky++)
                    for (kx = 0; kx < s->kw; kx++) {
                        int iy = oy * s->sh - s->ph + ky, ix = ox * s->sw - s->pw + kx;
                        if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w && x[(c * s->h + iy) * s->w + ix] > best)
                            best = x[(c * s->h + iy) * s->w + ix];
                    }
                y[(c * s->oh + oy) * s->ow + ox] = best;
            }
}

//@ avg_pool
//@ needs requantize, saturate
static void avg_pool(const struct pool_shape *s, const int8_t *x, int8_t *y, int in_zero, int out_zero,
                     int32_t mult, int shift)
{
    int c, oy, ox, ky, kx;
    for (c = 0; c < s->c; c++)
        for (oy = 0; oy < s->oh; oy++)
            for (ox = 0; ox < s->ow; ox++) {
                int32_t sum = 0;
                for (ky = 0; ky < s->kh; ky++)
                    for (kx = 0; kx < s->kw; kx++) {
                        int iy = oy * s->sh - s->ph + ky, ix = ox * s->sw - s->pw + kx;
                        if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w)
                            sum += x[(c * s->h + iy) * s->w + ix] - in_zero;
                    }
                y[(c * s->oh + oy) * s->ow + ox] = saturate(out_zero + requantize(sum, mult, shift));
            }
}

//@ to_fixed
//@ needs round_shift
/* A float stretch of the graph runs in fixed point: the values of its output's scale times
 * 2^FRACTION, in int32. */
static void to_fixed(const int8_t *x, int32_t *r, int n, int zero, const int64_t *factor)
{
    int i;
    for (i = 0; i < n; i++)
        r[i] = (int32_t)round_shift((int64_t)(x[i] - zero) * factor[0], SHIFT);
}

//@ fixed_affine
//@ needs round_shift
/* BatchNorm that no convolution could take in: a * v + b per channel. */
static void fixed_affine(int32_t *r, int channels, int per_channel, const int64_t *a, const int64_t *b)
{
    int c, i;
    for (c = 0; c < channels; c++)
        for (i = 0; i < per_channel; i++) {
            int32_t *v = &r[c * per_channel + i];
            *v = (int32_t)(round_shift((int64_t)*v * a[c], SHIFT) + b[c]);
        }
}

//@ fixed_relu
static void fixed_relu(int32_t *r, int n)
{
    int i;
    for (i = 0; i < n; i++)
        if (r[i] < 0)
            r[i] = 0;
}

//@ fixed_max_pool
static void fixed_max_pool(const struct pool_shape *s, const int32_t *x, int32_t *y)
{
    int c, oy, ox, ky, kx;
    for (c = 0; c < s->c; c++)
        for (oy = 0; oy < s->oh; oy++)
            for (ox = 0; ox < s->ow; ox++) {
                int32_t best = INT32_MIN;
                for (ky = 0; ky < s->kh; ky++)
                    for (kx = 0; kx < s->kw; kx++) {
                        int iy = oy * s->sh - s->ph + ky, ix = ox * s->sw - s->pw + kx;
                        if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w && x[(c * s->h + iy) * s->w + ix] > best)
                            best = x[(c * s->h + iy) * s->w + ix];
                    }
                y[(c * s->oh + oy) * s->ow + ox] = best;
            }
}

//@ fixed_avg_pool
static void fixed_avg_pool(const struct pool_shape *s, const int32_t *x, int32_t *y)
{
    int c, oy, ox, ky, kx;
    int64_t count = (int64_t)s->kh * s->kw;
    for (c = 0; c < s->c; c++)
        for (oy = 0; oy < s->oh; oy++)
            for (ox = 0; ox < s->ow; ox++) {
                int64_t sum = 0;
                for (ky = 0; ky < s->kh; ky++)
                    for (kx = 0; kx < s->kw; kx++) {
                        int iy = oy * s->sh - s->ph + ky, ix = ox * s->sw - s->pw + kx;
                        if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w)
                            sum += x[(c * s->h + iy) * s->w + ix];
                    }
                /* the mean, rounded half away from zero */
                y[(c * s->oh + oy) * s->ow + ox] = (int32_t)((sum >= 0 ? sum + count / 2 : sum - count / 2) / count);
            }
}

//@ from_fixed
//@ needs round_shift, saturate
static void from_fixed(const int32_t *r, int8_t *y, int n, int zero)
{
    int i;
    for (i = 0; i < n; i++)
        y[i] = saturate(zero + (int32_t)round_shift(r[i], FRACTION));
}

//@ argmax_q
static int argmax_q(const int8_t *v, int n)
{
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

//@ argmax_r
static int argmax_r(const int32_t *v, int n)
{
    int i, best = 0;
    for (i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}
