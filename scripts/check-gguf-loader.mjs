// Reads a GGUF with @huggingface/gguf (the parser of the Hugging Face Hub, independent of onecard) and checks
// it against `onecard inspect --json` of the same file: every metadata key with its value, every tensor with
// its type, shape and offset, the tensor data inside the file. Usage: node check-gguf-loader.mjs FILE.gguf
// INSPECT.json (run from a folder where `npm install @huggingface/gguf` was done).
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { gguf, GGMLQuantizationType, GGUFValueType } from "@huggingface/gguf";

const [file, inspectJson] = process.argv.slice(2);
const want = JSON.parse(readFileSync(inspectJson, "utf8"));
const got = await gguf(resolve(file), { allowLocalFile: true, typedMetadata: true, computeParametersCount: true });
const problems = [];
const same = (a, b) =>
  typeof a === "number" && typeof b === "number" ? a === b || Math.abs(a - b) <= 1e-7 * Math.abs(b) : a === b;
const plain = (v) => (typeof v === "bigint" ? Number(v) : v);

// Metadata: the same keys, the same scalar values, arrays of the same element type, length and elements.
const skip = new Set(["version", "tensor_count", "kv_count"]);  // the header fields, not key-value pairs
const keys = Object.keys(got.metadata).filter((k) => !skip.has(k));
for (const k of Object.keys(want.metadata)) if (!(k in got.metadata)) problems.push(`metadata ${k}: missing`);
for (const k of keys) {
  if (!(k in want.metadata)) { problems.push(`metadata ${k}: not in onecard's listing`); continue; }
  const w = want.metadata[k], g = got.typedMetadata[k];
  if (Array.isArray(g.value)) {
    const type = GGUFValueType[g.subType].toLowerCase();
    if (w.type !== `array of ${type}` || w.count !== g.value.length)
      problems.push(`metadata ${k}: ${type}[${g.value.length}], onecard says ${w.type} [${w.count}]`);
    else if (!w.head.every((x, i) => same(plain(g.value[i]), x))) problems.push(`metadata ${k}: elements differ`);
  } else if (!same(plain(g.value), w)) {
    problems.push(`metadata ${k}: ${g.value}, onecard says ${w}`);
  }
}

// Tensors: the same list in the same order with the same type, shape and offset, and their data in the file.
const size = BigInt(statSync(file).size);
if (got.tensorInfos.length !== want.tensors.length)
  problems.push(`${got.tensorInfos.length} tensors, onecard says ${want.tensors.length}`);
got.tensorInfos.forEach((t, i) => {
  const w = want.tensors[i] ?? {};
  const type = GGMLQuantizationType[t.dtype];
  const shape = t.shape.map(Number);
  if (t.name !== w.name || type !== w.type || JSON.stringify(shape) !== JSON.stringify(w.shape) ||
      Number(t.offset) !== w.offset)
    problems.push(`tensor ${i} ${t.name} ${type} [${shape}] @${t.offset}, onecard says ${JSON.stringify(w)}`);
  if (BigInt(got.tensorDataOffset) + t.offset + BigInt(w.bytes ?? 0) > size)
    problems.push(`tensor ${t.name}: its data ends past the end of the file`);
});
if (Number(got.tensorDataOffset) !== want.data_offset)
  problems.push(`data offset ${got.tensorDataOffset}, onecard says ${want.data_offset}`);

const types = {};
for (const t of got.tensorInfos) types[GGMLQuantizationType[t.dtype]] = (types[GGMLQuantizationType[t.dtype]] ?? 0) + 1;
console.log(`${file}: GGUF v${got.metadata.version}, ${keys.length} metadata keys, ${got.tensorInfos.length} ` +
            `tensors (${Object.entries(types).map(([k, v]) => `${v} ${k}`).join(", ")}), ` +
            `${got.parameterCount} parameters, architecture ${got.metadata["general.architecture"]}: ` +
            (problems.length ? `${problems.length} problems` : "agrees with onecard inspect"));
for (const p of problems) console.log(`  ${p}`);
process.exit(problems.length ? 1 : 0);
