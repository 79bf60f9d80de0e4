// The sharded writer: layout, header format, round trips through the reader, the index
// file, I/O failures, and an independent check that PyTorch reads what we write.
#include "io/safetensors_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

#include "io/safetensors_reader.h"
#include "io/testing.h"
#include "kernels/convert.h"
#include "util/error.h"

namespace amalgam {
namespace {
using namespace testing_io;

// Deterministic values exactly representable in every float type used below.
float value(size_t tensor, size_t i) { return static_cast<float>((static_cast<int>(i * 7 + tensor * 3) % 61) - 30) * 0.25f; }

std::vector<uint8_t> encode(DType t, size_t tensor, size_t n) {
  std::vector<float> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = value(tensor, i);
  std::vector<uint8_t> out(n * dtype_size(t));
  from_f32(t, f.data(), out.data(), n);
  return out;
}

size_t numel(const OutputTensor& t) {
  size_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<size_t>(d);
  return n;
}

// Writes every tensor in chunks of `chunk` bytes, spread over `threads` threads.
void write_all(ShardedWriter& w, size_t chunk, int threads) {
  std::vector<std::thread> pool;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      try {
      for (size_t i = static_cast<size_t>(t); i < w.tensor_count(); i += static_cast<size_t>(threads)) {
        const auto bytes = encode(w.tensor(i).dtype, i, numel(w.tensor(i)));
        // Back to front, to show offsets (not call order) decide placement.
        for (size_t end = bytes.size(); end > 0;) {
          const size_t begin = end > chunk ? end - chunk : 0;
          w.write(i, begin, bytes.data() + begin, end - begin);
          end = begin;
        }
      }
      } catch (...) {
        errors[static_cast<size_t>(t)] = std::current_exception();
      }
    });
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

std::vector<OutputTensor> sample_tensors() {
  return {{"model.embed.weight", DType::BF16, {64, 32}},   // 4096 B
          {"model.layers.0.w", DType::F16, {32, 32}},      // 2048 B
          {"model.layers.0.b", DType::F32, {32}},          // 128 B
          {"model.layers.1.w", DType::F32, {40, 40}},      // 6400 B: bigger than the limit below
          {"model.layers.1.s", DType::F64, {}},            // 8 B
          {"model.steps", DType::I64, {3}},                // 24 B
          {"model.empty", DType::F32, {0, 4}},             // 0 B
          {"model.f8", DType::F8_E4M3, {16}},
          {"model.f8b", DType::F8_E5M2, {16}},
          {"model.mask", DType::BOOL, {5}}};
}

void check_values(const SafetensorsFile& f, const TensorInfo& t, size_t index) {
  std::vector<float> got(t.numel());
  f.read_f32(t, 0, t.numel(), got.data());
  for (size_t i = 0; i < got.size(); ++i) {
    // What the declared dtype can hold of the value (8-bit floats and ints round).
    const float v = value(index, i);
    uint8_t stored[8];
    float want;
    from_f32(t.dtype, &v, stored, 1);
    to_f32(t.dtype, stored, &want, 1);
    ASSERT_EQ(got[i], want) << t.name << "[" << i << "]";
  }
}

TEST(ShardedWriter, SingleFileRoundTrip) {
  TempDir dir;
  const auto tensors = sample_tensors();
  ShardedWriter w(dir.path().string(), tensors, 0, FileEnv::posix(), {{"merged_by", "amalgam"}});
  EXPECT_EQ(w.shard_count(), 1u);
  EXPECT_EQ(w.shard_file(0), "model.safetensors");
  write_all(w, 1000, 3);
  EXPECT_EQ(w.finish(), std::vector<std::string>{"model.safetensors"});
  const std::string raw = read_bytes(dir / "model.safetensors");
  uint64_t hlen;
  std::memcpy(&hlen, raw.data(), 8);
  EXPECT_EQ((8 + hlen) % 8, 0u) << "data section must start 8-byte aligned";
  EXPECT_EQ(raw[8 + hlen - 1] == ' ' || raw[8 + hlen - 1] == '}', true);
  SafetensorsFile f(dir / "model.safetensors");
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("merged_by"), "amalgam");
  ASSERT_EQ(f.tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo* t = f.find(tensors[i].name);
    ASSERT_NE(t, nullptr) << tensors[i].name;
    EXPECT_EQ(t->dtype, tensors[i].dtype);
    EXPECT_EQ(t->shape, tensors[i].shape);
    check_values(f, *t, i);
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "model.safetensors.index.json"));
}

TEST(ShardedWriter, ShardsBySizeWithIndex) {
  TempDir dir;
  const auto tensors = sample_tensors();
  ShardedWriter w(dir.path().string(), tensors, 5000);
  // [embed 4096] [w0 2048 + b 128] [layers.1.w 6400 alone: over the limit] [rest]
  ASSERT_EQ(w.shard_count(), 4u);
  EXPECT_EQ(w.shard_file(0), "model-00001-of-00004.safetensors");
  EXPECT_EQ(w.shard_file(1), "model-00002-of-00004.safetensors");
  EXPECT_EQ(w.shard_file(2), "model-00002-of-00004.safetensors");
  EXPECT_EQ(w.shard_file(3), "model-00003-of-00004.safetensors");
  EXPECT_EQ(w.shard_file(4), "model-00004-of-00004.safetensors");
  EXPECT_EQ(w.shard_file(9), "model-00004-of-00004.safetensors");
  write_all(w, 333, 2);
  const auto files = w.finish();
  ASSERT_EQ(files.size(), 5u);
  EXPECT_EQ(files.back(), "model.safetensors.index.json");

  auto index = nlohmann::json::parse(read_bytes(dir / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), w.total_bytes());
  uint64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(index["weight_map"][tensors[i].name], w.shard_file(i));
    SafetensorsFile f(dir / w.shard_file(i));
    const TensorInfo* t = f.find(tensors[i].name);
    ASSERT_NE(t, nullptr);
    total += t->nbytes();
    check_values(f, *t, i);
    EXPECT_LE(f.file_size(), 5000u + f.header_size() + 8 + 6400u);
  }
  EXPECT_EQ(total, w.total_bytes());
}

TEST(ShardedWriter, RefusesIncompleteAndOutOfRangeWrites) {
  TempDir dir;
  ShardedWriter w(dir.path().string(), {{"a", DType::F32, {4}}, {"b", DType::F32, {2}}}, 0);
  const float v[4] = {1, 2, 3, 4};
  EXPECT_THROW(w.write(0, 8, v, 16), Error);
  EXPECT_THROW(w.write(2, 0, v, 4), Error);
  w.write(0, 0, v, 16);
  w.write(1, 0, v, 4);
  try {
    w.finish();
    FAIL() << "finish accepted a half-written tensor";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'b'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ShardedWriter(dir.path().string(), {{"a", DType::F32, {1}}, {"a", DType::F32, {1}}}, 0), Error);
  EXPECT_THROW(ShardedWriter(dir.path().string(), {{"__metadata__", DType::F32, {1}}}, 0), Error);
}

TEST(FileEnv, DiskFullIsAnIoErrorNamingTheFile) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  auto f = FileEnv::posix()->create("/dev/full");
  const char buf[64] = {};
  try {
    f->write_at(0, buf, sizeof(buf));
    FAIL() << "write to /dev/full succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("/dev/full"), std::string::npos) << e.what();
  }
  try {
    FileEnv::posix()->create("/nonexistent-dir/x.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.safetensors"), std::string::npos);
  }
}

// The seam's purpose: a disk that fills after `budget` bytes. Files are real; the
// injected ENOSPC is raised the way PosixWritableFile raises it.
class QuotaEnv final : public FileEnv {
 public:
  explicit QuotaEnv(uint64_t budget) : budget_(budget) {}
  std::unique_ptr<WritableFile> create(const std::string& path) override {
    return std::make_unique<File>(this, path, FileEnv::posix()->create(path));
  }

 private:
  struct File final : WritableFile {
    File(QuotaEnv* env, std::string path, std::unique_ptr<WritableFile> real)
        : env(env), path(std::move(path)), real(std::move(real)) {}
    void write_at(uint64_t offset, const void* data, size_t n) override {
      if (env->used_.fetch_add(n) + n > env->budget_)
        fail(ErrorKind::Io, "{}: write of {} bytes at offset {} failed: No space left on device", path, n, offset);
      real->write_at(offset, data, n);
    }
    void sync() override { real->sync(); }
    void close() override { real->close(); }
    QuotaEnv* env;
    std::string path;
    std::unique_ptr<WritableFile> real;
  };
  uint64_t budget_;
  std::atomic<uint64_t> used_{0};
};

TEST(ShardedWriter, FullDiskSurfacesAsIoError) {
  TempDir dir;
  QuotaEnv env(6000);
  const auto tensors = sample_tensors();
  ShardedWriter w(dir.path().string(), tensors, 5000, &env);
  try {
    write_all(w, 512, 1);
    w.finish();
    FAIL() << "writing 12 KB on a 6 KB disk succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
    EXPECT_NE(std::string(e.what()).find(".safetensors"), std::string::npos) << e.what();
  }
}

TEST(ParseByteSize, Units) {
  EXPECT_EQ(parse_byte_size("1024"), 1024u);
  EXPECT_EQ(parse_byte_size("5B"), 5'000'000'000u);
  EXPECT_EQ(parse_byte_size("5G"), 5'000'000'000u);
  EXPECT_EQ(parse_byte_size("500M"), 500'000'000u);
  EXPECT_EQ(parse_byte_size("100K"), 100'000u);
  EXPECT_EQ(parse_byte_size("1.5G"), 1'500'000'000u);
  EXPECT_EQ(parse_byte_size("2Gi"), 2ull << 30);
  EXPECT_EQ(parse_byte_size("3Mi"), 3ull << 20);
  EXPECT_EQ(parse_byte_size("4Ki"), 4096u);
  EXPECT_EQ(parse_byte_size("1GiB"), 1ull << 30);
  EXPECT_EQ(parse_byte_size("2gb"), 2'000'000'000u);
  EXPECT_EQ(parse_byte_size("0"), 0u);
  for (const char* bad : {"", "G", "5X", "1.2.3", "-5", "5 5", "99999999999999999999999", "1e9"}) {
    try {
      parse_byte_size(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Usage) << bad;
    }
  }
}

// PyTorch, with nothing but struct + json, must read our shards and index and find the
// same values (computed independently in Python from the same formula).
TEST(ShardedWriter, PyTorchReadsWhatWeWrite) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 has no torch";
  TempDir dir;
  std::vector<OutputTensor> tensors = {{"a.bf16", DType::BF16, {8, 16}}, {"b.f16", DType::F16, {3, 5}},
                                       {"c.f32", DType::F32, {7}},       {"d.f64", DType::F64, {2, 2}},
                                       {"e.i64", DType::I64, {6}},       {"f.i32", DType::I32, {6}},
                                       {"g.i16", DType::I16, {4}},       {"h.i8", DType::I8, {9}},
                                       {"i.u8", DType::U8, {3}},         {"j.bool", DType::BOOL, {4}},
                                       {"k.scalar", DType::F32, {}}};
  ShardedWriter w(dir.path().string(), tensors, 200);
  ASSERT_GT(w.shard_count(), 1u);
  write_all(w, 64, 2);
  w.finish();
  const std::string script = R"PY(
import json, struct, sys, os, torch
d = sys.argv[1]
dt = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64,
      "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
      "BOOL": torch.bool}
index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
seen, total = {}, 0
for shard in sorted(set(index["weight_map"].values())):
    raw = open(os.path.join(d, shard), "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0, "unaligned data section"
    header = json.loads(raw[8:8 + n])
    assert header.pop("__metadata__") == {"format": "pt"}
    for name, e in header.items():
        b, en = e["data_offsets"]
        buf = bytearray(raw[8 + n + b: 8 + n + en])
        t = torch.frombuffer(buf, dtype=dt[e["dtype"]]) if buf else torch.empty(0, dtype=dt[e["dtype"]])
        seen[name] = t.reshape(e["shape"])
        assert index["weight_map"][name] == shard
        total += en - b
assert total == index["metadata"]["total_size"], (total, index["metadata"]["total_size"])
names = sorted(index["weight_map"])
for k, name in enumerate(names):
    t = seen[name].flatten().double()
    want = torch.tensor([((i * 7 + k * 3) % 61 - 30) * 0.25 for i in range(t.numel())], dtype=torch.float64)
    if name.startswith("j."): want = (want != 0).double()
    elif name.startswith("i."): want = want.round().clamp(0, 255)
    elif name[0] in "efgh": want = torch.round(want)  # half to even, as torch.round
    assert torch.equal(t, want), (name, t, want)
print("ok", len(seen))
)PY";
  write_bytes(dir / "check.py", script);
  const std::string cmd = "/usr/bin/python3 " + (dir / "check.py") + " " + dir.path().string() + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (size_t k = std::fread(buf, 1, sizeof(buf), p)) out.append(buf, k);
  const int rc = ::pclose(p);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("ok 11"), std::string::npos) << out;
}

}  // namespace
}  // namespace amalgam
