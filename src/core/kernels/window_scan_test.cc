// window_scan: the AVX-512 kernel and the portable one against a direct count, on keys
// around and on the window's edges (first and last bin, bin edges, above the top bin's
// low bits), from keys, f32 deltas and bf16 deltas; lengths that leave tails; two
// windows in one scan against one scan each.
#include "kernels/window_scan.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/convert.h"
#include "kernels/radix_select.h"

namespace amalgam {
namespace {

struct Counts {
  std::vector<uint64_t> hist;
  uint64_t above = 0;
};

Counts direct(const std::vector<uint32_t>& keys, KeyWindow w) {
  Counts c{std::vector<uint64_t>(w.width(), 0), 0};
  for (uint32_t k : keys) {
    const uint32_t bin = k >> 16;
    if (bin > w.hi_bin) ++c.above;
    else if (bin >= w.lo_bin) c.hist[bin - w.lo_bin] += 1 + (static_cast<uint64_t>((k & 0xffffu) != 0) << 32);
  }
  return c;
}

TEST(WindowScan, KernelsAgreeWithADirectCount) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 80; ++trial) {
    const size_t n = rng() % 5000;
    const uint32_t lo_bin = trial % 7 == 0 ? 0 : 0x3a00 + rng() % 64;
    const KeyWindow w{lo_bin, lo_bin + static_cast<uint32_t>(rng() % 40)};
    // bf16 values near the window's keys: their deltas land below, inside, on and above it.
    std::vector<uint16_t> xb(n), bb(n);
    std::vector<float> xf(n), bf(n);
    std::vector<uint32_t> keys(n), dkeys(n);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t bin = w.lo_bin + static_cast<uint32_t>(rng() % (w.width() + 6)) - 3;
      const uint32_t low = rng() % 4 == 0 ? 0 : (rng() % 3 == 0 ? 0xffffu : rng() & 0xffffu);
      keys[i] = ((bin & 0x7fffu) << 16) | low;
      float v;
      const uint32_t vb = keys[i] & 0xffff0000u;
      std::memcpy(&v, &vb, 4);
      // A base of v's scale, so that bf16 rounding keeps deltas of about v.
      bb[i] = f32_to_bf16((rng() % 2 ? v : -v) * static_cast<float>(1 + rng() % 4));
      xb[i] = f32_to_bf16(load_bf16(bb[i]) + (rng() % 2 ? v : -v));
      xf[i] = load_bf16(xb[i]) + static_cast<float>(rng() % 1000) * 1e-9f;
      bf[i] = load_bf16(bb[i]);
      dkeys[i] = abs_key(load_bf16(xb[i]) - load_bf16(bb[i]));
    }
    std::vector<uint32_t> fkeys(n);
    for (size_t i = 0; i < n; ++i) fkeys[i] = abs_key(xf[i] - bf[i]);
    struct Case {
      const char* what;
      const std::vector<uint32_t>* want_keys;
      int form;  // 0 keys, 1 keys portable, 2 bf16, 3 bf16 portable, 4 f32
    };
    if (n > 1000) {  // the bf16 deltas reach every region
      const Counts d = direct(dkeys, w);
      uint64_t inside = 0;
      for (uint64_t h : d.hist) inside += h & 0xffffffffu;
      EXPECT_GT(inside, n / 10);
      EXPECT_GT(d.above, n / 50);
      if (w.lo_bin > 0) {
        EXPECT_GT(n - inside - d.above, n / 50);
      }
    }
    for (const Case& c : {Case{"keys", &keys, 0}, Case{"keys portable", &keys, 1}, Case{"bf16", &dkeys, 2},
                          Case{"bf16 portable", &dkeys, 3}, Case{"f32", &fkeys, 4}}) {
      const Counts want = direct(*c.want_keys, w);
      Counts got{std::vector<uint64_t>(w.width(), 0), 5};  // adds to what is there
      switch (c.form) {
        case 0: window_scan_keys(keys.data(), n, w, got.hist.data(), &got.above); break;
        case 1: window_scan_keys_portable(keys.data(), n, w, got.hist.data(), &got.above); break;
        case 2: window_scan_delta(xb.data(), bb.data(), n, w, got.hist.data(), &got.above); break;
        case 3: window_scan_delta_portable(xb.data(), bb.data(), n, w, got.hist.data(), &got.above); break;
        case 4: window_scan_delta(xf.data(), bf.data(), n, w, got.hist.data(), &got.above); break;
      }
      EXPECT_EQ(got.above, want.above + 5) << c.what << " trial " << trial;
      EXPECT_EQ(got.hist, want.hist) << c.what << " trial " << trial;
    }
  }
}

// Breadcrumbs' two windows in one scan: each gets the counts of its own scan, whether the
// windows are apart, overlapping or the same, from bf16 (AVX-512 and portable) and f32.
TEST(WindowScan, TwoWindowsCountAsTheirOwnScans) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 60; ++trial) {
    const size_t n = rng() % 4000;
    const uint32_t lo_a = trial % 9 == 0 ? 0 : 0x3a00 + rng() % 64;
    const KeyWindow wa{lo_a, lo_a + static_cast<uint32_t>(rng() % 40)};
    const uint32_t lo_b = trial % 3 == 0 ? lo_a : (trial % 3 == 1 ? wa.hi_bin - rng() % 4 : 0x3a40 + rng() % 64);
    const KeyWindow wb{lo_b, lo_b + static_cast<uint32_t>(rng() % 40)};
    std::vector<uint16_t> xb(n), bb(n);
    std::vector<float> xf(n), bf(n);
    for (size_t i = 0; i < n; ++i) {
      const KeyWindow& w = rng() % 2 ? wa : wb;
      const uint32_t bin = w.lo_bin + static_cast<uint32_t>(rng() % (w.width() + 6)) - 3;
      const uint32_t vb = (bin & 0x7fffu) << 16;
      float v;
      std::memcpy(&v, &vb, 4);
      bb[i] = f32_to_bf16((rng() % 2 ? v : -v) * static_cast<float>(1 + rng() % 4));
      xb[i] = f32_to_bf16(load_bf16(bb[i]) + (rng() % 2 ? v : -v));
      bf[i] = load_bf16(bb[i]);
      xf[i] = load_bf16(xb[i]) + static_cast<float>(rng() % 1000) * 1e-9f;
    }
    for (int form = 0; form < 3; ++form) {
      Counts want_a{std::vector<uint64_t>(wa.width(), 0), 3}, want_b{std::vector<uint64_t>(wb.width(), 0), 4};
      Counts got_a = want_a, got_b = want_b;
      if (form == 2) {
        window_scan_delta(xf.data(), bf.data(), n, wa, want_a.hist.data(), &want_a.above);
        window_scan_delta(xf.data(), bf.data(), n, wb, want_b.hist.data(), &want_b.above);
      } else {
        window_scan_delta_portable(xb.data(), bb.data(), n, wa, want_a.hist.data(), &want_a.above);
        window_scan_delta_portable(xb.data(), bb.data(), n, wb, want_b.hist.data(), &want_b.above);
      }
      const WindowTally ta{wa, got_a.hist.data(), &got_a.above}, tb{wb, got_b.hist.data(), &got_b.above};
      switch (form) {
        case 0: window_scan_delta2(xb.data(), bb.data(), n, ta, tb); break;
        case 1: window_scan_delta2_portable(xb.data(), bb.data(), n, ta, tb); break;
        case 2: window_scan_delta2(xf.data(), bf.data(), n, ta, tb); break;
      }
      EXPECT_EQ(got_a.above, want_a.above) << "form " << form << " trial " << trial;
      EXPECT_EQ(got_a.hist, want_a.hist) << "form " << form << " trial " << trial;
      EXPECT_EQ(got_b.above, want_b.above) << "form " << form << " trial " << trial;
      EXPECT_EQ(got_b.hist, want_b.hist) << "form " << form << " trial " << trial;
      if (n > 1000 && form == 0) {
        uint64_t in_a = 0;
        for (uint64_t h : want_a.hist) in_a += h & 0xffffffffu;
        EXPECT_GT(in_a, n / 10);
      }
    }
  }
}

}  // namespace
}  // namespace amalgam
