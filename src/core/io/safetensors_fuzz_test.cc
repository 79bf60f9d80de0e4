// Mutation fuzzing of the safetensors header validator: valid files from a small corpus
// are mutated (bit flips, byte insert/delete, truncation, length-prefix and numeric field
// rewrites, JSON structure edits, splices) and fed to SafetensorsFile::parse_header.
// Each must either be accepted with all invariants holding, or raise amalgam::Error;
// anything else (another exception, a sanitizer report, a crash) fails.
// AMALGAM_FUZZ_ITERATIONS sets the count (default 20,000; docs/io.md has the long run),
// AMALGAM_FUZZ_SEED the seed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include <nlohmann/json.hpp>

#include "io/safetensors_reader.h"
#include "io/testing.h"
#include "util/error.h"

namespace amalgam {
namespace {
using namespace testing_io;
using Bytes = std::vector<uint8_t>;

uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

Bytes file_of(const std::string& header, size_t data_size, std::mt19937_64& rng) {
  Bytes b(8 + header.size() + data_size);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  std::memcpy(b.data() + 8, header.data(), header.size());
  for (size_t i = 8 + header.size(); i < b.size(); ++i) b[i] = static_cast<uint8_t>(rng());
  return b;
}

// Valid files: assorted dtypes, shapes (scalar, empty, multi-dim), metadata, padding.
std::vector<Bytes> corpus(std::mt19937_64& rng) {
  std::vector<Bytes> out;
  const char* dtypes[] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
  const size_t sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 1, 1, 1, 1};
  for (int k = 0; k < 24; ++k) {
    nlohmann::json h = nlohmann::json::object();
    if (k % 3 == 0) h["__metadata__"] = {{"format", "pt"}, {"k", std::to_string(k)}};
    uint64_t off = 0;
    const int n = 1 + k % 5;
    for (int t = 0; t < n; ++t) {
      const int d = static_cast<int>(rng() % 12);
      std::vector<int64_t> shape;
      const int rank = static_cast<int>(rng() % 4);
      uint64_t numel = 1;
      for (int r = 0; r < rank; ++r) {
        shape.push_back(static_cast<int64_t>(rng() % 5));
        numel *= static_cast<uint64_t>(shape.back());
      }
      const uint64_t nb = numel * sizes[d];
      h["model.layers." + std::to_string(t) + ".w"] = {
          {"dtype", dtypes[d]}, {"shape", shape}, {"data_offsets", {off, off + nb}}};
      off += nb;
    }
    std::string text = h.dump();
    if (k % 2) text.append((8 - text.size() % 8) % 8, ' ');
    out.push_back(file_of(text, off, rng));
  }
  out.push_back(file_of("{}", 0, rng));
  return out;
}

uint64_t read_len(const Bytes& b) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | b[i];
  return n;
}

// Splits a file into header text and data (when the prefix is sane), and rebuilds it with
// a consistent length prefix so mutations reach the JSON validator.
bool split(const Bytes& b, std::string* header, Bytes* data) {
  if (b.size() < 8) return false;
  const uint64_t n = read_len(b);
  if (n > b.size() - 8) return false;
  header->assign(reinterpret_cast<const char*>(b.data() + 8), n);
  data->assign(b.begin() + 8 + static_cast<std::ptrdiff_t>(n), b.end());
  return true;
}
Bytes join(const std::string& header, const Bytes& data) {
  Bytes b = Bytes(8, 0);
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

const char* const kNumbers[] = {"0", "1", "-1", "7", "4294967296", "9223372036854775807", "9223372036854775808",
                                "18446744073709551615", "18446744073709551616", "-9223372036854775808", "1e308",
                                "1.5", "-0", "1E2", "99999999999999999999999999"};

nlohmann::json random_json_value(std::mt19937_64& rng) {
  switch (rng() % 8) {
    case 0: return nullptr;
    case 1: return true;
    case 2: return static_cast<int64_t>(rng());
    case 3: return -static_cast<int64_t>(rng() % 100);
    case 4: return "F32";
    case 5: return nlohmann::json::array({rng() % 10, rng() % 100});
    case 6: return nlohmann::json::object({{"dtype", "BF16"}});
    default: return 0.5;
  }
}

void mutate_json(nlohmann::json& h, std::mt19937_64& rng) {
  if (!h.is_object() || h.empty()) {
    h = random_json_value(rng);
    return;
  }
  auto it = h.begin();
  std::advance(it, static_cast<long>(rng() % h.size()));
  nlohmann::json& e = it.value();
  switch (rng() % 10) {
    case 0: h.erase(it); break;
    case 1: e = random_json_value(rng); break;
    case 2:
      if (e.is_object() && !e.empty()) {
        auto f = e.begin();
        std::advance(f, static_cast<long>(rng() % e.size()));
        if (rng() % 2) e.erase(f);
        else f.value() = random_json_value(rng);
      }
      break;
    case 3:
      if (e.contains("dtype")) {
        const char* ds[] = {"F32", "BF16", "U8", "F64", "bf16", "F8_E4M3FN", "", "Q4"};
        e["dtype"] = ds[rng() % 8];
      }
      break;
    case 4:
      if (e.contains("shape") && e["shape"].is_array()) {
        if (rng() % 2) e["shape"].push_back(rng() % 3 ? rng() % 8 : rng());
        else if (!e["shape"].empty()) e["shape"].erase(e["shape"].size() - 1);
      }
      break;
    case 5:
      if (e.contains("data_offsets") && e["data_offsets"].is_array() && e["data_offsets"].size() == 2) {
        auto& o = e["data_offsets"];
        const int which = static_cast<int>(rng() % 2);
        const int64_t delta = static_cast<int64_t>(rng() % 17) - 8;
        if (o[which].is_number_unsigned()) o[which] = static_cast<int64_t>(o[which].get<uint64_t>() + static_cast<uint64_t>(delta));  // wraps: may go negative
      }
      break;
    case 6: h[it.key() + "_copy"] = e; break;  // a second tensor on the same bytes
    case 7: e = nlohmann::json::object({{"nested", e}}); break;
    case 8: h["__metadata__"] = random_json_value(rng); break;
    default: {
      nlohmann::json deep = 1;
      for (int i = 0; i < 200; ++i) deep = nlohmann::json::array({deep});
      e = deep;
    }
  }
}

Bytes mutate(const std::vector<Bytes>& corpus, std::mt19937_64& rng) {
  Bytes b = corpus[rng() % corpus.size()];
  const int rounds = 1 + static_cast<int>(rng() % 3);
  for (int r = 0; r < rounds; ++r) {
    std::string header;
    Bytes data;
    switch (rng() % 9) {
      case 0:  // bit flips, biased to the header
        for (int k = 0, n = 1 + static_cast<int>(rng() % 8); k < n && !b.empty(); ++k) {
          const size_t lim = std::min<size_t>(b.size(), rng() % 4 ? 8 + read_len(b) % (b.size() + 1) : b.size());
          b[rng() % std::max<size_t>(lim, 1) % b.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
        }
        break;
      case 1:  // byte insert / delete inside the header, keeping the prefix consistent
        if (split(b, &header, &data)) {
          const size_t pos = header.empty() ? 0 : rng() % header.size();
          if (rng() % 2 || header.empty()) {
            static const std::string kChars = "{}[]\",:0123456789 e\\-.";
            header.insert(pos, 1, kChars[rng() % kChars.size()]);
          }
          else header.erase(pos, 1 + rng() % 4);
          b = join(header, data);
        }
        break;
      case 2:  // truncation
        b.resize(rng() % (b.size() + 1));
        break;
      case 3: {  // length prefix rewrite
        const uint64_t vals[] = {0, 1, 7, 8, b.size(), b.size() - 8, b.size() - 7, 100'000'000, 100'000'001,
                                 ~0ull, 1ull << 63, rng()};
        const uint64_t v = vals[rng() % 12];
        if (b.size() < 8) b.resize(8);
        for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
        break;
      }
      case 4:  // numeric field rewrite
        if (split(b, &header, &data)) {
          std::vector<size_t> starts;
          for (size_t i = 0; i < header.size(); ++i)
            if (std::isdigit(static_cast<unsigned char>(header[i])) &&
                (i == 0 || !std::isdigit(static_cast<unsigned char>(header[i - 1]))))
              starts.push_back(i);
          if (!starts.empty()) {
            const size_t s = starts[rng() % starts.size()];
            size_t e = s;
            while (e < header.size() && std::isdigit(static_cast<unsigned char>(header[e]))) ++e;
            header.replace(s, e - s, kNumbers[rng() % (sizeof(kNumbers) / sizeof(*kNumbers))]);
          }
          b = join(header, data);
        }
        break;
      case 5:
      case 6:  // JSON structure mutation
        if (split(b, &header, &data)) {
          auto j = nlohmann::json::parse(header, nullptr, false);
          if (!j.is_discarded()) {
            mutate_json(j, rng);
            header = j.dump();
          }
          b = join(header, data);
        }
        break;
      case 7:  // textual duplicate key: nlohmann would silently keep one
        if (split(b, &header, &data) && header.size() > 2 && header[0] == '{') {
          const size_t q = header.find('"');
          const size_t q2 = q == std::string::npos ? q : header.find('"', q + 1);
          if (q2 != std::string::npos) header.insert(1, header.substr(q, q2 - q + 1) + ":{},");
          b = join(header, data);
        }
        break;
      default: {  // splice with another corpus file
        const Bytes& o = corpus[rng() % corpus.size()];
        const size_t cut = rng() % (b.size() + 1), from = rng() % (o.size() + 1);
        b.resize(cut);
        b.insert(b.end(), o.begin() + static_cast<std::ptrdiff_t>(from), o.end());
      }
    }
  }
  return b;
}

// What an accepted header must guarantee to every consumer.
void check_invariants(const std::vector<TensorInfo>& ts, uint64_t file_size, uint64_t header_len) {
  const uint64_t data_size = file_size - 8 - header_len;
  uint64_t prev_end = 0;
  for (const TensorInfo& t : ts) {
    ASSERT_LE(t.data_begin, t.data_end);
    ASSERT_LE(t.data_end, data_size);
    ASSERT_EQ(t.nbytes(), t.numel() * dtype_size(t.dtype));
    if (t.nbytes() > 0) {
      ASSERT_GE(t.data_begin, prev_end);
      prev_end = t.data_end;
    }
  }
}

TEST(SafetensorsFuzz, MutatedHeadersNeverCrash) {
  const uint64_t iterations = env_u64("AMALGAM_FUZZ_ITERATIONS", 20'000);
  std::mt19937_64 rng(env_u64("AMALGAM_FUZZ_SEED", 20261123));
  const auto seeds = corpus(rng);
  for (const Bytes& s : seeds) {  // the corpus itself must be valid
    std::map<std::string, std::string> meta;
    ASSERT_NO_THROW(SafetensorsFile::parse_header("corpus", s.data(), s.size(), &meta));
  }
  TempDir dir;
  uint64_t accepted = 0, rejected = 0;
  for (uint64_t it = 0; it < iterations; ++it) {
    const Bytes m = mutate(seeds, rng);
    // An exact-size heap copy, so any read past the end is a sanitizer error.
    std::unique_ptr<uint8_t[]> buf(new uint8_t[std::max<size_t>(m.size(), 1)]);
    if (!m.empty()) std::memcpy(buf.get(), m.data(), m.size());
    try {
      std::map<std::string, std::string> meta;
      const auto ts = SafetensorsFile::parse_header("fuzz", buf.get(), m.size(), &meta);
      ++accepted;
      check_invariants(ts, m.size(), read_len(m));
      if (HasFatalFailure()) {
        ADD_FAILURE() << "iteration " << it;
        return;
      }
    } catch (const Error& e) {
      ++rejected;
      ASSERT_EQ(e.kind(), ErrorKind::Input) << e.what();
      ASSERT_EQ(std::string(e.what()).rfind("fuzz: ", 0), 0u) << "message must name the file: " << e.what();
    } catch (const std::exception& e) {
      FAIL() << "iteration " << it << ": non-amalgam exception: " << e.what();
    }
    // Every 200th input also goes through the real file path: mmap, then read every tensor.
    if (it % 200 == 0) {
      const std::string path = dir / "f.safetensors";
      write_bytes(path, std::string(m.begin(), m.end()));
      try {
        SafetensorsFile f(path);
        std::vector<float> out;
        for (const TensorInfo& t : f.tensors()) {
          out.resize(t.numel());
          f.read_f32(t, 0, t.numel(), out.data());
          f.release(t, 0, t.numel());
        }
      } catch (const Error&) {
      }
    }
  }
  RecordProperty("accepted", static_cast<int>(accepted));
  RecordProperty("rejected", static_cast<int>(rejected));
  std::printf("fuzz: %llu iterations, %llu accepted, %llu rejected\n", static_cast<unsigned long long>(iterations),
              static_cast<unsigned long long>(accepted), static_cast<unsigned long long>(rejected));
  // Both outcomes must be common, or the mutator is not exercising the validator.
  if (iterations >= 1000) {
    EXPECT_GT(accepted, iterations / 50);
    EXPECT_GT(rejected, iterations / 4);
  }
}

}  // namespace
}  // namespace amalgam
