// Encodes Sparkplug B payloads with the npm sparkplug-payload package (an
// implementation independent of linegate's): one JSON payload object per
// line on stdin (as sparkplug-payload's encodePayload takes it: timestamp,
// seq, metrics with name or alias, type, value, timestamp), one base64
// payload per line on stdout, in order.
"use strict";
const readline = require("readline");
const sparkplug = require("sparkplug-payload").get("spBv1.0");

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  line = line.trim();
  if (line === "") return;
  const b = sparkplug.encodePayload(JSON.parse(line));
  process.stdout.write(Buffer.from(b).toString("base64") + "\n");
});
