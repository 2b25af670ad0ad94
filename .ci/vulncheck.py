#!/usr/bin/env python3
"""Reads `govulncheck -format json` output. Fails (exit 1) when the code
calls a vulnerable function of a module; lists the called standard-library
findings, which only a newer Go toolchain fixes (README, Security)."""
import json
import sys

text = open(sys.argv[1]).read()
dec = json.JSONDecoder()
objs, i = [], 0
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    obj, i = dec.raw_decode(text, i)
    objs.append(obj)

summaries = {o["osv"]["id"]: o["osv"].get("summary", "") for o in objs if "osv" in o}
called = {}
for o in objs:
    f = o.get("finding")
    if not f or not f.get("trace") or not f["trace"][0].get("function"):
        continue  # imported or required, but not called
    top = f["trace"][0]
    called.setdefault(f["osv"], (top.get("module"), f.get("fixed_version", "")))

bad = 0
for osv, (module, fixed) in sorted(called.items()):
    where = "Go toolchain" if module == "stdlib" else module
    print(f"govulncheck: {osv} in {where} (fixed in {fixed or '?'}): {summaries.get(osv, '')}")
    if module != "stdlib":
        bad += 1
if not called:
    print("govulncheck: no vulnerable function is called")
elif bad == 0:
    print("govulncheck: only standard-library findings: build releases with a Go that has the fixes (README, Security)")
sys.exit(1 if bad else 0)
