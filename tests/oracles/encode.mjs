// The test oracle: encodes and decodes with Tokenizers.js (@huggingface/tokenizers).
// Usage: node encode.mjs DIR INPUT.json  where DIR holds tokenizer.json and
// tokenizer_config.json and INPUT.json is {"texts_b64": [...], "decode": [[ids], ...]}.
// Texts travel as base64 bytes and become strings through TextDecoder (invalid UTF-8 ->
// U+FFFD per maximal subpart). Prints {"encode", "encode_special", "decode"} as JSON;
// with a third argument "llama-js" or "gpt3-encoder" it also prints "alt": the ids of
// that package's own encoder (a second, independent implementation).
import fs from "node:fs";
import path from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";

const [dir, inputPath, alt] = process.argv.slice(2);
const tokenizerJson = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf-8"));
const configPath = path.join(dir, "tokenizer_config.json");
const config = fs.existsSync(configPath) ? JSON.parse(fs.readFileSync(configPath, "utf-8")) : {};
const tok = new Tokenizer(tokenizerJson, config);
const input = JSON.parse(fs.readFileSync(inputPath, "utf-8"));
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });
const texts = (input.texts_b64 ?? []).map((b) => decoder.decode(Buffer.from(b, "base64")));

const result = {
  encode: texts.map((t) => tok.encode(t, { add_special_tokens: false }).ids),
  encode_special: texts.map((t) => tok.encode(t, { add_special_tokens: true }).ids),
  decode: (input.decode ?? []).map((ids) => (ids.length ? tok.decode(ids, { skip_special_tokens: false }) : "")),
};
if (alt === "llama-js") {
  const { LlamaTokenizer } = await import("llama-tokenizer-js");
  const llama = new LlamaTokenizer();
  result.alt = texts.map((t) => llama.encode(t, false, true));
} else if (alt === "gpt3-encoder") {
  const { createRequire } = await import("node:module");
  const gpt = createRequire(import.meta.url)("gpt-3-encoder");
  result.alt = texts.map((t) => gpt.encode(t));
}
process.stdout.write(JSON.stringify(result));
