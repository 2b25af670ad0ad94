// Decodes Sparkplug B payloads with the npm sparkplug-payload package (an
// implementation independent of linegate's): one base64 payload per line on
// stdin, one JSON object per line on stdout, in order. 64-bit integers
// (Long) print as decimal strings, bytes as base64. A payload that does not
// decode prints {"error": "..."}.
"use strict";
const readline = require("readline");
const sparkplug = require("sparkplug-payload").get("spBv1.0");

function plain(v) {
  if (v === null || v === undefined) return v;
  if (typeof v === "object" && typeof v.low === "number" && typeof v.high === "number" && typeof v.unsigned === "boolean") {
    return v.toString();
  }
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = plain(v[k]);
    return o;
  }
  return v;
}

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  line = line.trim();
  if (line === "") return;
  let out;
  try {
    out = plain(sparkplug.decodePayload(Buffer.from(line, "base64")));
  } catch (e) {
    out = { error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
});
