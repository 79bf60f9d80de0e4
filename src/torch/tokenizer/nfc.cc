// NFC: decompose, reorder combining marks, recompose (see nfc.h).
#include "torch/tokenizer/nfc.h"

#include <algorithm>
#include <vector>

#include "torch/tokenizer/unicode.h"

namespace amalgam {

namespace {

using namespace nfc_detail;

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint32_t ccc(uint32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = kCombiningClasses + kCombiningClassesCount;
  const auto* it = std::upper_bound(kCombiningClasses, end, cp, [](uint32_t c, const auto& r) { return c < r.first; });
  if (it == kCombiningClasses) return 0;
  --it;
  return cp <= it->last ? it->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto* end = kDecompositions + kDecompositionsCount;
  const auto* it = std::lower_bound(kDecompositions, end, cp, [](const auto& d, uint32_t c) { return d.cp < c; });
  if (it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  decompose(it->first, out);
  if (it->second) decompose(it->second, out);
}

bool compose(uint32_t a, uint32_t b, uint32_t* c) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    *c = kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    return true;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount) {
    *c = a + (b - kTBase);
    return true;
  }
  const auto* end = kCompositions + kCompositionsCount;
  const auto* it = std::lower_bound(kCompositions, end, std::make_pair(a, b), [](const auto& r, const auto& key) {
    return r.first != key.first ? r.first < key.first : r.second < key.second;
  });
  if (it == end || it->first != a || it->second != b) return false;
  *c = it->composite;
  return true;
}

}  // namespace

std::string to_nfc(std::string_view text) {
  // Below U+0300 nothing decomposes or combines: the common case costs one scan.
  bool simple = true;
  for (unsigned char c : text) simple = simple && c < 0xCC;
  if (simple) return std::string(text);

  std::vector<uint32_t> d;
  d.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp;
    pos += decode_utf8(text, pos, &cp);
    decompose(cp, d);
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 0; i < d.size();) {
    if (ccc(d[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < d.size() && ccc(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + i, d.begin() + j, [](uint32_t x, uint32_t y) { return ccc(x) < ccc(y); });
    i = j;
  }
  // Canonical composition: a character joins the last starter unless blocked by a
  // character in between of class 0 or of a class >= its own.
  std::vector<uint32_t> out;
  out.reserve(d.size());
  size_t starter = SIZE_MAX;
  uint32_t last_cc = 0;
  for (uint32_t cp : d) {
    const uint32_t cc = ccc(cp);
    if (starter != SIZE_MAX) {
      const bool adjacent = out.size() - 1 == starter;
      uint32_t composite;
      if ((adjacent || (last_cc != 0 && last_cc < cc)) && compose(out[starter], cp, &composite)) {
        out[starter] = composite;
        continue;
      }
    }
    if (cc == 0) starter = out.size();
    last_cc = cc;
    out.push_back(cp);
  }
  std::string s;
  s.reserve(text.size());
  for (uint32_t cp : out) append_utf8(s, cp);
  return s;
}

}  // namespace amalgam
