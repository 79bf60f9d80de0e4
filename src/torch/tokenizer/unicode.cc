// UTF-8 decoding with maximal-subpart replacement and the property look-ups.
#include "torch/tokenizer/unicode.h"

#include <algorithm>

namespace amalgam {

namespace {

bool in_ranges(const unicode_detail::CodePointRange* ranges, size_t n, uint32_t cp) {
  const auto* end = ranges + n;
  const auto* it = std::upper_bound(ranges, end, cp, [](uint32_t c, const auto& r) { return c < r.first; });
  if (it == ranges) return false;
  --it;
  return cp >= it->first && cp <= it->last;
}

}  // namespace

bool is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return in_ranges(unicode_detail::kLetterRanges, unicode_detail::kLetterRangesCount, cp);
}

bool is_number(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in_ranges(unicode_detail::kNumberRanges, unicode_detail::kNumberRangesCount, cp);
}

bool is_whitespace(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  return in_ranges(unicode_detail::kWhiteSpaceRanges, unicode_detail::kWhiteSpaceRangesCount, cp);
}

size_t decode_utf8(std::string_view s, size_t pos, uint32_t* cp) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  size_t need;
  uint32_t value;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, value = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, value = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, value = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *cp = kReplacementChar;
    return 1;
  }
  size_t i = 1;
  for (; i <= need; ++i) {
    if (pos + i >= s.size()) break;
    const auto b = static_cast<unsigned char>(s[pos + i]);
    const unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
    if (b < l || b > h) break;
    value = (value << 6) | (b & 0x3F);
  }
  if (i <= need) {  // the maximal subpart s[pos, pos+i) becomes one U+FFFD
    *cp = kReplacementChar;
    return i;
  }
  *cp = value;
  return need + 1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    uint32_t cp;
    const size_t n = decode_utf8(s, pos, &cp);
    if (cp == kReplacementChar && (n != 3 || s.substr(pos, 3) != "\xEF\xBF\xBD")) return false;
    pos += n;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (size_t pos = 0; pos < s.size();) {
    uint32_t cp;
    const size_t n = decode_utf8(s, pos, &cp);
    if (cp == kReplacementChar) {
      append_utf8(out, cp);
    } else {
      out.append(s.substr(pos, n));
    }
    pos += n;
  }
  return out;
}

}  // namespace amalgam
