/* test_half.c - f16/bf16 conversions: exact and exhaustive where possible.
 * - all 65536 f16 values widen exactly and narrow back to themselves (NaN stays NaN)
 * - every f16 rounding boundary: f32 just below / at / above each midpoint
 *   (ties to even), subnormals, overflow to inf at 65520, inf, nan
 * - bf16 likewise on all 65536 patterns and its midpoints
 * - the backend's bulk (SIMD) conversion equals the scalar reference bit for bit */
#include "te_test.h"
#include "te_half.h"
#include <stdint.h>

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static int h_isnan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

int main(void) {
    te_backend *be = tt_backend();
    /* f16 round trip and value check against a double computation */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = te_f16_to_f32((uint16_t)h);
        int e = (h >> 10) & 31, m = h & 1023;
        double want = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
        if (h & 0x8000) want = -want;
        if (h_isnan((uint16_t)h)) { TT_CHECK(isnan(f), "f16 %04x -> not nan", h); TT_CHECK(h_isnan(te_f32_to_f16(f)), "nan roundtrip %04x", h); continue; }
        TT_CHECK((double)f == want, "f16 %04x -> %g want %g", h, f, want);
        TT_CHECK(te_f32_to_f16(f) == h, "f16 roundtrip %04x -> %04x", h, te_f32_to_f16(f));
    }
    /* rounding at every midpoint between consecutive positive finite f16 */
    for (uint32_t h = 0; h < 0x7bff; h++) {
        double lo = te_f16_to_f32((uint16_t)h), hi = te_f16_to_f32((uint16_t)(h + 1)), mid = (lo + hi) / 2;
        float fm = (float)mid;                     /* exact: mid needs <= 12 significant bits */
        TT_CHECK((double)fm == mid, "mid not exact %04x", h);
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        for (int sgn = 0; sgn < 2; sgn++) {
            float s = sgn ? -1.0f : 1.0f;
            uint16_t sb = sgn ? 0x8000 : 0;
            TT_CHECK(te_f32_to_f16(s * fm) == (even | sb), "tie %04x", h);
            TT_CHECK(te_f32_to_f16(s * u2f(f2u(fm) - 1)) == (h | sb), "below mid %04x", h);
            TT_CHECK(te_f32_to_f16(s * u2f(f2u(fm) + 1)) == ((h + 1) | sb), "above mid %04x", h);
        }
    }
    TT_CHECK(te_f32_to_f16(65504.0f) == 0x7bff, "max");
    TT_CHECK(te_f32_to_f16(65519.99f) == 0x7bff, "below overflow");
    TT_CHECK(te_f32_to_f16(65520.0f) == 0x7c00, "overflow tie -> inf");
    TT_CHECK(te_f32_to_f16(1e10f) == 0x7c00 && te_f32_to_f16(-1e10f) == 0xfc00, "big -> inf");
    TT_CHECK(te_f32_to_f16(INFINITY) == 0x7c00 && te_f32_to_f16(-INFINITY) == 0xfc00, "inf");
    TT_CHECK(h_isnan(te_f32_to_f16(NAN)), "nan");
    TT_CHECK(te_f32_to_f16(ldexpf(1, -25)) == 0x0000, "2^-25 tie -> 0");
    TT_CHECK(te_f32_to_f16(u2f(f2u(ldexpf(1, -25)) + 1)) == 0x0001, "just above 2^-25 -> min subnormal");
    TT_CHECK(te_f32_to_f16(ldexpf(1, -30)) == 0 && te_f32_to_f16(-ldexpf(1, -30)) == 0x8000, "underflow keeps sign");
    TT_CHECK(te_f32_to_f16(ldexpf(1023, -24) + ldexpf(1, -25)) == 0x0400, "largest subnormal tie -> min normal (even)");
    TT_CHECK(te_f32_to_f16(u2f(1)) == 0, "f32 denormal -> 0");

    /* bf16 */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = te_bf16_to_f32((uint16_t)h);
        TT_CHECK(f2u(f) == h << 16, "bf16 widen %04x", h);
        if (isnan(f)) { TT_CHECK(isnan(te_bf16_to_f32(te_f32_to_bf16(f))), "bf16 nan %04x", h); continue; }
        TT_CHECK(te_f32_to_bf16(f) == h, "bf16 roundtrip %04x", h);
        if ((h & 0x7f80) != 0x7f80 && (h & 0x7fff) != 0x7f7f) {
            uint32_t mid = (h << 16) | 0x8000;
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            TT_CHECK(te_f32_to_bf16(u2f(mid)) == even, "bf16 tie %04x", h);
            TT_CHECK(te_f32_to_bf16(u2f(mid - 1)) == h, "bf16 below %04x", h);
            TT_CHECK(te_f32_to_bf16(u2f(mid + 1)) == (uint16_t)(h + 1), "bf16 above %04x", h);
        }
    }
    TT_CHECK(te_f32_to_bf16(INFINITY) == 0x7f80, "bf16 inf");
    TT_CHECK(te_f32_to_bf16(u2f(0x7f7fffff)) == 0x7f80, "bf16 overflow");

    /* backend bulk conversions vs the scalar reference, bit for bit (odd length) */
    int64_t n = (1 << 20) + 37;
    te_tensor f = TT_T(be, 1, n), h = tt_tensor(be, TE_F16, 1, TT_SHAPE(n)), b = tt_tensor(be, TE_BF16, 1, TT_SHAPE(n));
    te_tensor f2 = TT_T(be, 1, n);
    uint32_t *fu = f.data;
    for (int64_t i = 0; i < n; i++) { tt_rand(); fu[i] = (uint32_t)(tt_seed >> 32); }
    for (int64_t i = 0; i < 65536; i++) fu[i] = f2u(te_f16_to_f32((uint16_t)i)) + (uint32_t)(i % 3) - 1;  /* near f16 values */
    TT_OK(te_convert(&h, &f), be);
    TT_OK(te_convert(&b, &f), be);
    int bad_h = 0, bad_b = 0;
    for (int64_t i = 0; i < n; i++) {
        float x = ((float *)f.data)[i];
        uint16_t rh = te_f32_to_f16(x), rb = te_f32_to_bf16(x), gh = ((uint16_t *)h.data)[i], gb = ((uint16_t *)b.data)[i];
        if (isnan(x)) { bad_h += !h_isnan(gh); bad_b += !isnan(te_bf16_to_f32(gb)); continue; }
        bad_h += rh != gh;
        bad_b += rb != gb;
    }
    TT_CHECK(bad_h == 0, "bulk f32->f16: %d mismatches", bad_h);
    TT_CHECK(bad_b == 0, "bulk f32->bf16: %d mismatches", bad_b);
    uint16_t *hp = h.data;
    for (int64_t i = 0; i < 65536; i++) hp[i] = (uint16_t)i;
    TT_OK(te_convert(&f2, &h), be);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        float want = te_f16_to_f32(hp[i]), got = ((float *)f2.data)[i];
        bad += isnan(want) ? !isnan(got) : f2u(want) != f2u(got);
    }
    TT_CHECK(bad == 0, "bulk f16->f32: %d mismatches", bad);
    TT_OK(te_convert(&f2, &b), be);
    bad = 0;
    for (int64_t i = 0; i < n; i++) bad += f2u(te_bf16_to_f32(((uint16_t *)b.data)[i])) != f2u(((float *)f2.data)[i]);
    TT_CHECK(bad == 0, "bulk bf16->f32: %d mismatches", bad);
    tt_free(&f); tt_free(&h); tt_free(&b); tt_free(&f2);
    te_backend_destroy(be);
    return tt_done("engine_half");
}
