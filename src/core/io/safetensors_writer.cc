#include "io/safetensors_writer.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace amalgam {

struct ShardedWriter::Impl {
  struct Slot {
    size_t shard = 0;
    uint64_t offset = 0;  // within the shard's data section
    uint64_t nbytes = 0;
  };
  struct Shard {
    std::string file;
    uint64_t data_start = 0;  // 8 + padded header length
    std::unique_ptr<WritableFile> out;
  };
  std::string dir;
  FileEnv* env;
  std::vector<OutputTensor> tensors;
  std::vector<Slot> slots;
  std::vector<Shard> shards;
  std::unique_ptr<std::atomic<uint64_t>[]> unflushed;  // per shard: bytes since the last writeback kick
  std::unique_ptr<std::atomic<uint64_t>[]> written;  // bytes received per tensor (a sanity check)
  uint64_t total = 0;
  bool finished = false;
};

namespace {

uint64_t tensor_nbytes(const OutputTensor& t) {
  uint64_t n = dtype_size(t.dtype);
  for (int64_t d : t.shape) {
    if (d < 0) fail(ErrorKind::Internal, "output tensor '{}': negative dimension {}", t.name, d);
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
      fail(ErrorKind::Internal, "output tensor '{}': byte size overflows", t.name);
  }
  return n;
}

std::string shard_name(size_t i, size_t n) {
  if (n == 1) return "model.safetensors";
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", i + 1, n);
}

}  // namespace

ShardedWriter::ShardedWriter(std::string dir, std::vector<OutputTensor> tensors, uint64_t max_shard_bytes,
                             FileEnv* env, std::map<std::string, std::string> extra_metadata)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.dir = std::move(dir);
  m.env = env;
  m.tensors = std::move(tensors);
  m.slots.resize(m.tensors.size());
  m.written = std::make_unique<std::atomic<uint64_t>[]>(m.tensors.size());

  // Greedy packing in declared order (that keeps layers together, as HF does). A tensor
  // larger than the limit still gets a shard: an empty shard takes anything.
  {
    std::map<std::string, size_t> seen;
    size_t shard = 0;
    uint64_t used = 0;
    bool shard_empty = true;
    for (size_t i = 0; i < m.tensors.size(); ++i) {
      if (m.tensors[i].name == "__metadata__" || m.tensors[i].name.empty())
        fail(ErrorKind::Internal, "{}: invalid output tensor name '{}'", m.dir, m.tensors[i].name);
      if (!seen.emplace(m.tensors[i].name, i).second)
        fail(ErrorKind::Internal, "{}: output tensor '{}' declared twice", m.dir, m.tensors[i].name);
      const uint64_t nb = tensor_nbytes(m.tensors[i]);
      if (!shard_empty && max_shard_bytes > 0 && used + nb > max_shard_bytes) {
        ++shard;
        used = 0;
        shard_empty = true;
      }
      m.slots[i] = {shard, used, nb};
      used += nb;
      shard_empty = false;
      m.total += nb;
      m.written[i].store(0, std::memory_order_relaxed);
    }
    m.shards.resize(m.tensors.empty() ? 1 : shard + 1);
    m.unflushed = std::make_unique<std::atomic<uint64_t>[]>(m.shards.size());
  }

  std::error_code ec;
  std::filesystem::create_directories(m.dir, ec);
  if (ec) fail(ErrorKind::Io, "{}: cannot create output directory: {}", m.dir, ec.message());

  std::vector<nlohmann::json> headers(m.shards.size());
  for (auto& h : headers) {
    nlohmann::json meta = {{"format", "pt"}};
    for (const auto& [k, v] : extra_metadata) meta[k] = v;
    h["__metadata__"] = meta;
  }
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const Impl::Slot& s = m.slots[i];
    headers[s.shard][m.tensors[i].name] = {{"dtype", dtype_name(m.tensors[i].dtype)},
                                           {"shape", m.tensors[i].shape},
                                           {"data_offsets", {s.offset, s.offset + s.nbytes}}};
  }
  std::vector<uint64_t> data_bytes(m.shards.size(), 0);  // per shard, for the preallocation
  for (const Impl::Slot& s : m.slots) data_bytes[s.shard] += s.nbytes;
  for (size_t k = 0; k < m.shards.size(); ++k) {
    Impl::Shard& sh = m.shards[k];
    sh.file = shard_name(k, m.shards.size());
    std::string text = headers[k].dump();
    // Pad with spaces so the data section starts 8-byte aligned (typed loads by readers).
    text.append((8 - text.size() % 8) % 8, ' ');
    uint8_t len[8];
    for (int b = 0; b < 8; ++b) len[b] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * b));
    sh.data_start = 8 + text.size();
    sh.out = m.env->create((std::filesystem::path(m.dir) / sh.file).string());
    sh.out->reserve(sh.data_start + data_bytes[k]);
    sh.out->write_at(0, len, 8);
    sh.out->write_at(8, text.data(), text.size());
  }
}

ShardedWriter::~ShardedWriter() = default;  // unfinished files are closed by their owners

size_t ShardedWriter::tensor_count() const { return impl_->tensors.size(); }
const OutputTensor& ShardedWriter::tensor(size_t index) const { return impl_->tensors.at(index); }
size_t ShardedWriter::shard_count() const { return impl_->shards.size(); }
uint64_t ShardedWriter::total_bytes() const { return impl_->total; }
const std::string& ShardedWriter::shard_file(size_t index) const {
  return impl_->shards[impl_->slots.at(index).shard].file;
}

void ShardedWriter::write(size_t index, uint64_t offset, const void* data, size_t n) {
  Impl& m = *impl_;
  if (index >= m.slots.size()) fail(ErrorKind::Internal, "{}: write to tensor #{} of {}", m.dir, index, m.slots.size());
  const Impl::Slot& s = m.slots[index];
  if (offset > s.nbytes || n > s.nbytes - offset)
    fail(ErrorKind::Internal, "{}: tensor '{}': write of bytes [{}, {}) past its {} bytes", m.dir,
         m.tensors[index].name, offset, offset + n, s.nbytes);
  if (n == 0) return;
  Impl::Shard& sh = m.shards[s.shard];
  sh.out->write_at(sh.data_start + s.offset + offset, data, n);
  m.written[index].fetch_add(n, std::memory_order_relaxed);
  // Every 64 MiB, start the write-back: the final fsync then waits for the tail only,
  // not for the whole model (it was ~20% of a merge's wall time).
  constexpr uint64_t kWritebackBytes = 64 << 20;
  std::atomic<uint64_t>& unflushed = m.unflushed[s.shard];
  if (unflushed.fetch_add(n, std::memory_order_relaxed) + n >= kWritebackBytes) {
    unflushed.store(0, std::memory_order_relaxed);
    sh.out->start_writeback();
  }
}

std::vector<std::string> ShardedWriter::finish() {
  Impl& m = *impl_;
  if (m.finished) fail(ErrorKind::Internal, "{}: finish() called twice", m.dir);
  for (size_t i = 0; i < m.tensors.size(); ++i) {
    const uint64_t w = m.written[i].load();
    if (w < m.slots[i].nbytes)
      fail(ErrorKind::Internal, "{}: tensor '{}': only {} of {} bytes were written", m.dir, m.tensors[i].name, w,
           m.slots[i].nbytes);
  }
  std::vector<std::string> files;
  for (auto& sh : m.shards) {
    sh.out->sync();
    sh.out->close();
    files.push_back(sh.file);
  }
  if (m.shards.size() > 1) {
    nlohmann::ordered_json wm = nlohmann::ordered_json::object();
    for (size_t i = 0; i < m.tensors.size(); ++i) wm[m.tensors[i].name] = m.shards[m.slots[i].shard].file;
    nlohmann::ordered_json index = {{"metadata", {{"total_size", m.total}}}, {"weight_map", wm}};
    std::string text = index.dump(2) + "\n";
    const std::string name = "model.safetensors.index.json";
    auto out = m.env->create((std::filesystem::path(m.dir) / name).string());
    out->write_at(0, text.data(), text.size());
    out->sync();
    out->close();
    files.push_back(name);
  }
  m.finished = true;
  return files;
}

uint64_t parse_byte_size(const std::string& text) {
  auto usage = [&](const char* why) -> uint64_t {
    fail(ErrorKind::Usage, "invalid size '{}': {} (examples: 5B, 500M, 1.5G, 100Ki, 1024)", text, why);
  };
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  const std::string num = text.substr(0, i);
  std::string unit = text.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  if (num.empty() || num == "." || std::count(num.begin(), num.end(), '.') > 1) return usage("no number");
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  double mult;
  // mergekit's convention: "B" is billions (of bytes), K/M/G/T powers of 1000.
  if (unit.empty()) mult = 1;
  else if (unit == "K" || unit == "KB") mult = 1e3;
  else if (unit == "M" || unit == "MB") mult = 1e6;
  else if (unit == "B" || unit == "G" || unit == "GB") mult = 1e9;
  else if (unit == "T" || unit == "TB") mult = 1e12;
  else if (unit == "KI" || unit == "KIB") mult = 1024.0;
  else if (unit == "MI" || unit == "MIB") mult = 1024.0 * 1024;
  else if (unit == "GI" || unit == "GIB") mult = 1024.0 * 1024 * 1024;
  else if (unit == "TI" || unit == "TIB") mult = 1024.0 * 1024 * 1024 * 1024;
  else return usage("unknown unit");
  if (unit.empty() && num.find('.') == std::string::npos) {
    uint64_t v = 0;
    for (char c : num)
      if (__builtin_mul_overflow(v, 10u, &v) || __builtin_add_overflow(v, static_cast<uint64_t>(c - '0'), &v))
        return usage("too large");
    return v;
  }
  const double v = std::stod(num) * mult;
  if (!(v < 1.8e19)) return usage("too large");
  return static_cast<uint64_t>(v + 0.5);
}

}  // namespace amalgam
