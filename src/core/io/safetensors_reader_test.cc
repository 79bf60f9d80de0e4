// The reader on valid files (values, order, metadata, unaligned data) and on every kind
// of malformed file the Foundation issue lists: each must raise Error(Input) naming the
// file and, where one is involved, the tensor.
#include "io/safetensors_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "io/testing.h"
#include "kernels/convert.h"
#include "util/error.h"

namespace amalgam {
namespace {
using namespace testing_io;

std::string f32_bytes(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), v.begin(), s.size());
  return s;
}

TEST(SafetensorsReader, ReadsValuesMetadataAndOrder) {
  TempDir dir;
  // "b" comes first in the JSON but second in the data: tensors() is data order.
  const std::string header =
      R"({"b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},)"
      R"("a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
      R"("__metadata__":{"format":"pt","note":"x"}})";
  std::string data = f32_bytes({1.0f, -2.5f, 3.25f, 1e-3f});
  for (float v : {1.0f, 2.0f, -0.5f}) {
    uint16_t h = f32_to_bf16(v);
    data.append(reinterpret_cast<const char*>(&h), 2);
  }
  write_bytes(dir / "m.safetensors", safetensors_bytes(header, data));
  SafetensorsFile f(dir / "m.safetensors");
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.tensors()[0].name, "a");
  EXPECT_EQ(f.tensors()[1].name, "b");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "x");
  EXPECT_EQ(f.header_size(), header.size());
  EXPECT_EQ(f.file_size(), 8 + header.size() + data.size());
  const TensorInfo* a = f.find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::F32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a->numel(), 4u);
  EXPECT_EQ(f.find("zz"), nullptr);
  // The header length here is not a multiple of 4, so this exercises the unaligned path.
  float out[4];
  f.read_f32(*a, 0, 4, out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.5f);
  EXPECT_EQ(out[3], 1e-3f);
  f.read_f32(*a, 2, 2, out);
  EXPECT_EQ(out[0], 3.25f);
  const TensorInfo* b = f.find("b");
  f.read_f32(*b, 1, 2, out);
  EXPECT_EQ(out[0], 2.0f);
  EXPECT_EQ(out[1], -0.5f);
  EXPECT_EQ(std::memcmp(f.data(*a), data.data(), 16), 0);
  f.prefetch(*a, 0, 4);
  f.release(*a, 0, 4);
  f.read_f32(*a, 0, 1, out);  // released pages fault back in
  EXPECT_EQ(out[0], 1.0f);
  try {
    f.read_f32(*b, 2, 2, out);
    FAIL() << "read past the end was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos);
  }
}

TEST(SafetensorsReader, ScalarsEmptyTensorsAndEmptyHeader) {
  TempDir dir;
  const std::string header =
      R"({"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},)"
      R"("e":{"dtype":"I32","shape":[0,5],"data_offsets":[8,8]},)"
      R"("e2":{"dtype":"U8","shape":[0],"data_offsets":[8,8]}})";
  double v = 2.75;
  write_bytes(dir / "s.safetensors", safetensors_bytes(header, std::string(reinterpret_cast<char*>(&v), 8)));
  SafetensorsFile f(dir / "s.safetensors");
  ASSERT_EQ(f.tensors().size(), 3u);
  EXPECT_EQ(f.find("s")->numel(), 1u);
  EXPECT_EQ(f.find("e")->numel(), 0u);
  float out;
  f.read_f32(*f.find("s"), 0, 1, &out);
  EXPECT_EQ(out, 2.75f);

  write_bytes(dir / "empty.safetensors", safetensors_bytes("{}", ""));
  SafetensorsFile g(dir / "empty.safetensors");
  EXPECT_TRUE(g.tensors().empty());
  // Trailing spaces (header padding) are valid.
  write_bytes(dir / "pad.safetensors", safetensors_bytes("{}      ", ""));
  EXPECT_NO_THROW(SafetensorsFile(dir / "pad.safetensors"));
}

struct BadCase {
  const char* label;
  std::string bytes;
  const char* expect;       // substring of the message
  const char* tensor = "";  // tensor the message must name, if any
};

std::string entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}";
}
std::string one(const std::string& name, const std::string& e) { return "{\"" + name + "\":" + e + "}"; }

std::vector<BadCase> bad_cases() {
  const std::string d16(16, '\0');
  return {
      {"empty file", "", "truncated"},
      {"5 bytes", std::string(5, '\0'), "truncated"},
      {"header length past end", le64(1000) + "{}", "past the end of the file"},
      {"header length huge", le64(1ull << 60) + "{}", "100 MB"},
      {"header over 100 MB", le64(100'000'001) + "{}", "100 MB"},
      {"header not JSON", safetensors_bytes("{\"a\": [1, 2", d16), "not valid JSON"},
      {"header binary garbage", safetensors_bytes(std::string("\xff\xfe\x00\x01", 4), d16), "not valid JSON"},
      {"header not object", safetensors_bytes("[1,2,3]", d16), "not a JSON object"},
      {"header a string", safetensors_bytes("\"abc\"", d16), "not a JSON object"},
      {"entry not object", safetensors_bytes(R"({"w":5})", d16), "not a JSON object", "w"},
      {"unknown dtype", safetensors_bytes(one("w", entry("F12", "[4]", "[0,16]")), d16), "unknown dtype", "w"},
      {"lowercase dtype", safetensors_bytes(one("w", entry("f32", "[4]", "[0,16]")), d16), "unknown dtype", "w"},
      {"missing dtype", safetensors_bytes(R"({"w":{"shape":[4],"data_offsets":[0,16]}})", d16), "dtype", "w"},
      {"missing shape", safetensors_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,16]}})", d16), "shape", "w"},
      {"missing offsets", safetensors_bytes(R"({"w":{"dtype":"F32","shape":[4]}})", d16), "data_offsets", "w"},
      {"negative shape", safetensors_bytes(one("w", entry("F32", "[-4]", "[0,16]")), d16), "non-negative", "w"},
      {"float shape", safetensors_bytes(one("w", entry("F32", "[4.0]", "[0,16]")), d16), "non-negative", "w"},
      {"string shape", safetensors_bytes(one("w", entry("F32", "[\"4\"]", "[0,16]")), d16), "non-negative", "w"},
      {"shape not array", safetensors_bytes(one("w", entry("F32", "4", "[0,16]")), d16), "shape", "w"},
      {"overflowing shape",
       safetensors_bytes(one("w", entry("F32", "[4294967296,4294967296]", "[0,16]")), d16), "overflow", "w"},
      {"overflowing bytes", safetensors_bytes(one("w", entry("F32", "[4611686018427387904]", "[0,16]")), d16),
       "overflow", "w"},
      {"dim past int64", safetensors_bytes(one("w", entry("U8", "[18446744073709551615]", "[0,16]")), d16),
       "non-negative", "w"},
      {"offsets out of bounds", safetensors_bytes(one("w", entry("F32", "[100]", "[0,400]")), d16),
       "past the end of the data section", "w"},
      {"truncated data", safetensors_bytes(one("w", entry("F32", "[4]", "[0,16]")), std::string(10, '\0')),
       "past the end of the data section", "w"},
      {"offsets wrong size", safetensors_bytes(one("w", entry("F32", "[2]", "[0,12]")), d16), "needs 8", "w"},
      {"offsets reversed", safetensors_bytes(one("w", entry("U8", "[4]", "[8,4]")), d16), "end before begin", "w"},
      {"offsets one number", safetensors_bytes(one("w", entry("U8", "[4]", "[4]")), d16), "two integers", "w"},
      {"offsets negative", safetensors_bytes(one("w", entry("U8", "[4]", "[-4,0]")), d16), "non-negative", "w"},
      {"overlapping",
       safetensors_bytes("{\"a\":" + entry("F32", "[2]", "[0,8]") + ",\"b\":" + entry("F32", "[2]", "[4,12]") + "}",
                         d16),
       "overlap", "b"},
      {"duplicate names",
       safetensors_bytes("{\"a\":" + entry("F32", "[2]", "[0,8]") + ",\"a\":" + entry("F32", "[2]", "[8,16]") + "}",
                         d16),
       "duplicate key 'a'"},
      {"metadata not object", safetensors_bytes(R"({"__metadata__":[1]})", d16), "__metadata__"},
      {"metadata value not string", safetensors_bytes(R"({"__metadata__":{"k":1}})", d16), "__metadata__"},
  };
}

TEST(SafetensorsReader, RejectsEveryMalformedFile) {
  TempDir dir;
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.label);
    const std::string path = dir / "bad.safetensors";
    write_bytes(path, c.bytes);
    try {
      SafetensorsFile f(path);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_EQ(e.kind(), ErrorKind::Input) << msg;
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
      if (*c.tensor) {
        EXPECT_NE(msg.find(std::string("'") + c.tensor + "'"), std::string::npos) << msg;
      }
      EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
    }
  }
}

TEST(SafetensorsReader, MissingFileAndDirectory) {
  TempDir dir;
  try {
    SafetensorsFile f(dir / "nope.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("nope.safetensors"), std::string::npos);
  }
  EXPECT_THROW(SafetensorsFile(dir.path().string()), Error);
}

long rss_file_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("RssFile:", 0) == 0) return std::stol(line.substr(8));
  return -1;
}

// release() must keep resident memory bounded while streaming through a file much larger
// than a chunk; without it the mapping's RSS grows by the whole file (checked too, so
// the bound is meaningful).
TEST(SafetensorsReader, ReleaseKeepsRssBounded) {
  if (rss_file_kb() < 0) GTEST_SKIP() << "no /proc/self/status RssFile";
  TempDir dir;
  const uint64_t n = 48ull << 20;  // 48 Mi bf16 elements = 96 MiB
  {
    std::ofstream out(dir / "big.safetensors", std::ios::binary);
    std::string header = one("w", entry("BF16", "[" + std::to_string(n) + "]", "[0," + std::to_string(2 * n) + "]"));
    out << le64(header.size()) << header;
    std::vector<uint16_t> block(1 << 20, f32_to_bf16(0.5f));
    for (uint64_t i = 0; i < n; i += block.size()) out.write(reinterpret_cast<char*>(block.data()), 2 << 20);
  }
  SafetensorsFile f(dir / "big.safetensors");
  const TensorInfo& t = *f.find("w");
  std::vector<float> buf(1 << 20);
  auto stream = [&](bool release) {
    const long base = rss_file_kb();
    long peak = base;
    for (uint64_t i = 0; i < n; i += buf.size()) {
      f.prefetch(t, i + buf.size(), buf.size());
      f.read_f32(t, i, buf.size(), buf.data());
      EXPECT_EQ(buf[buf.size() - 1], 0.5f);
      peak = std::max(peak, rss_file_kb());  // before release: the chunk is resident here
      if (release) f.release(t, i, buf.size());
    }
    if (!release) f.release(t, 0, n);
    return peak - base;
  };
  const long with_release = stream(true);
  const long without = stream(false);
  RecordProperty("rss_kib_with_release", static_cast<int>(with_release));
  RecordProperty("rss_kib_without_release", static_cast<int>(without));
  EXPECT_LT(with_release, 16 * 1024) << "KiB of file pages resident while streaming with release()";
  EXPECT_GT(without, 48 * 1024) << "the no-release baseline should grow (else this test measures nothing)";
}

}  // namespace
}  // namespace amalgam
