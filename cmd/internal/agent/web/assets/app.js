// linegate status page. Polls /status/live every second and draws it.
// Read-only: it only ever sends GET requests. Text from the agent (device
// errors, PLC strings) is set with textContent, never parsed as HTML.
"use strict";

(function () {
  const POLL_MS = 1000;
  const TIMEOUT_MS = 4000;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  let selected = fromHash(); // {device, tag} or null
  let tagKeys = "";          // the tag rows built, to rebuild only on change
  let devKeys = "";
  let lastOK = null;         // Date of the last good answer

  function fromHash() {
    const m = /^#chart=([^/]+)\/(.+)$/.exec(location.hash);
    return m ? { device: decodeURIComponent(m[1]), tag: decodeURIComponent(m[2]) } : null;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fmtValue(v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      if (a >= 1000) return v.toFixed(1);
      if (a >= 1) return String(Number(v.toFixed(3)));
      return String(Number(v.toPrecision(3)));
    }
    return String(v);
  }

  function fmtAge(ms) {
    if (ms === null || ms === undefined || isNaN(ms)) return "—";
    const s = Math.max(0, ms / 1000);
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 120) return Math.round(s) + " s";
    if (s < 7200) return Math.round(s / 60) + " min";
    if (s < 172800) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " d";
  }

  function fmtBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : n.toFixed(1)) + " " + units[i];
  }

  // age of an RFC 3339 time against the gateway's clock (the browser's may
  // be off: a laptop on the line network is not always synchronised).
  function age(now, ts) { return ts ? now - Date.parse(ts) : null; }

  // pill shows a status word; the node keeps the classes it was made with
  // (data-base), which the page and its test look it up by.
  function pill(node, text, kind) {
    node.textContent = text;
    node.className = (node.dataset.base ? node.dataset.base + " " : "") + "pill" + (kind ? " " + kind : "");
  }

  function based(node, base) {
    node.dataset.base = base;
    return node;
  }

  function kv(dl, rows) {
    dl.replaceChildren();
    for (const [k, v, cls] of rows) {
      if (cls === "err") {
        if (v) dl.append(el("dd", "err", v));
        continue;
      }
      dl.append(el("dt", "", k));
      const dd = el("dd", cls || "");
      if (v instanceof Node) dd.append(v); else dd.textContent = v;
      dl.append(dd);
    }
  }

  function renderHeader(doc, now) {
    const st = doc.status;
    $("gateway").textContent = st.gateway;
    $("version").textContent = /^[0-9]/.test(st.version || "") ? "v" + st.version : st.version || "";
    const down = (st.devices || []).filter((d) => !d.up).length;
    if (down > 0) pill($("overall"), down + (down === 1 ? " device down" : " devices down"), "bad");
    else if (!st.uplink.connected) pill($("overall"), "uplink disconnected", "warn");
    else pill($("overall"), "all OK", "good");
    $("updated").textContent = "updated " + new Date(now).toLocaleTimeString();
  }

  function renderDevices(doc, now) {
    const list = $("devices");
    const devs = doc.status.devices || [];
    const keys = devs.map((d) => d.name).join("\n");
    if (keys !== devKeys) {
      list.replaceChildren();
      for (const d of devs) {
        const li = el("li");
        li.dataset.device = d.name;
        li.append(el("span", "name", d.name), based(el("span", "state pill"), "state"), el("span", "meta"), el("span", "err"));
        list.append(li);
      }
      devKeys = keys;
    }
    devs.forEach((d, i) => {
      const li = list.children[i];
      li.dataset.up = d.up ? "true" : "false";
      const known = d.polls > 0;
      pill(li.querySelector(".state"), !known ? "WAITING" : d.up ? "UP" : "DOWN", !known ? "" : d.up ? "good" : "bad");
      li.querySelector(".meta").textContent = "last good read: " +
        (d.last_good_read ? fmtAge(age(now, d.last_good_read)) + " ago" : "never") +
        (d.overruns ? " · " + d.overruns + " overruns" : "");
      li.querySelector(".err").textContent = d.up ? "" : d.last_error || "";
    });
    if (devs.length === 0) list.replaceChildren(el("li", "muted", "no devices configured"));
  }

  function renderUplink(doc, now) {
    const u = doc.status.uplink;
    const state = el("span");
    pill(state, u.connected ? "CONNECTED" : "DISCONNECTED", u.connected ? "good" : "bad");
    kv($("uplink"), [
      ["state", state],
      ["broker", u.broker || "—"],
      ["in flight", String(u.inflight)],
      ["published", String(u.published)],
      ["reconnects", String(u.reconnects)],
      ["last publish", u.last_publish ? fmtAge(age(now, u.last_publish)) + " ago" : "never"],
      ["", u.connected ? "" : u.last_error, "err"],
    ]);
  }

  function renderBuffer(doc, now) {
    const b = doc.status.buffer;
    const frac = b.max_bytes > 0 ? b.file_bytes / b.max_bytes : 0;
    kv($("buffer"), [
      ["waiting", b.messages + (b.messages === 1 ? " message" : " messages")],
      ["oldest", b.oldest_created && b.messages > 0 ? fmtAge(age(now, b.oldest_created)) + " old" : "—"],
      ["file", fmtBytes(b.file_bytes) + " of " + fmtBytes(b.max_bytes) + " (" + (100 * frac).toFixed(frac < 0.1 ? 1 : 0) + "%)"],
      ["dropped", String(b.dropped), b.dropped > 0 ? "bad" : ""],
    ]);
    const bar = $("buffer-bar");
    bar.style.width = Math.min(100, 100 * frac).toFixed(1) + "%";
    bar.className = frac >= 0.9 ? "bad" : frac >= 0.6 ? "warn" : "";
  }

  function select(device, tag) {
    selected = { device, tag };
    history.replaceState(null, "", "#chart=" + encodeURIComponent(device) + "/" + encodeURIComponent(tag));
    for (const tr of $("tags").tBodies[0].rows) {
      tr.classList.toggle("selected", tr.dataset.device === device && tr.dataset.tag === tag);
    }
    poll(); // chart it now, not at the next tick
  }

  function renderTags(doc, now) {
    const tbody = $("tags").tBodies[0];
    const tags = doc.tags || [];
    const keys = tags.map((t) => t.device + "/" + t.tag).join("\n");
    if (keys !== tagKeys) {
      tbody.replaceChildren();
      let dev = null;
      for (const t of tags) {
        if (t.device !== dev) {
          dev = t.device;
          const g = el("tr", "group");
          g.dataset.group = dev;
          const td = el("td", "", dev);
          td.colSpan = 4;
          g.append(td);
          tbody.append(g);
        }
        const tr = el("tr", "tag");
        tr.dataset.device = t.device;
        tr.dataset.tag = t.tag;
        tr.dataset.key = t.device + "/" + t.tag;
        tr.tabIndex = 0;
        tr.setAttribute("role", "button");
        tr.title = "chart " + t.device + "/" + t.tag;
        const value = el("td", "value num");
        value.append(el("span", "v"), el("span", "unit"), el("span", "err"));
        const q = el("td");
        q.append(based(el("span", "q pill"), "q"));
        tr.append(el("td", "name", t.tag), value, q, el("td", "age num"));
        tr.addEventListener("click", () => select(t.device, t.tag));
        tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(t.device, t.tag); } });
        tbody.append(tr);
      }
      tagKeys = keys;
    }
    const up = {}, devErr = {};
    for (const d of doc.status.devices || []) { up[d.name] = d.up || d.polls === 0; devErr[d.name] = d.last_error || ""; }
    let i = 0;
    for (const tr of tbody.rows) {
      if (tr.classList.contains("group")) {
        tr.classList.toggle("down", up[tr.dataset.group] === false);
        tr.cells[0].textContent = tr.dataset.group + (up[tr.dataset.group] === false ? " — down" : "");
        continue;
      }
      const t = tags[i++];
      tr.querySelector(".v").textContent = fmtValue(t.value);
      tr.querySelector(".unit").textContent = t.unit || "";
      // A down device's error is shown once, with the device, not on
      // every tag.
      const shared = up[t.device] === false && t.error && devErr[t.device].includes(t.error);
      tr.querySelector(".err").textContent = t.quality !== "good" && !shared ? t.error || "" : "";
      tr.title = t.error ? t.error : "chart " + t.device + "/" + t.tag;
      pill(tr.querySelector(".q"), t.quality || "—", t.quality === "good" ? "good" : t.quality === "uncertain" ? "warn" : t.quality === "bad" ? "bad" : "");
      tr.querySelector(".age").textContent = fmtAge(age(now, t.ts));
      tr.classList.toggle("selected", !!selected && selected.device === t.device && selected.tag === t.tag);
    }
  }

  // renderChart draws the selected tag's last minutes as an SVG polyline.
  // A pause longer than a few samples (device down, bad readings) breaks
  // the line instead of bridging it.
  function renderChart(doc, now) {
    const box = $("chart");
    const h = doc.history;
    const tag = h && (doc.tags || []).find((t) => t.device === h.device && t.tag === h.tag);
    $("chart-title").textContent = h ? h.device + "/" + h.tag + (tag && tag.unit ? " [" + tag.unit + "]" : "") : "";
    box.replaceChildren();
    const legend = $("chart-legend");
    legend.replaceChildren();
    const pts = h ? h.points : [];
    if (pts.length < 2) {
      box.append(el("div", "empty", !h ? "Select a tag to see its last minutes." :
        "No numeric history for this tag yet."));
      return;
    }
    const t0 = pts[0][0], t1 = Math.max(now, pts[pts.length - 1][0]);
    let lo = Infinity, hi = -Infinity;
    for (const p of pts) { lo = Math.min(lo, p[1]); hi = Math.max(hi, p[1]); }
    const pad = hi === lo ? Math.max(1, Math.abs(hi) * 0.05) : (hi - lo) * 0.08;
    const y0 = lo - pad, y1 = hi + pad;
    const W = 1000, H = 300;
    const x = (t) => ((t - t0) / Math.max(1, t1 - t0)) * W;
    const y = (v) => H - ((v - y0) / (y1 - y0)) * H;
    const steps = [];
    for (let i = 1; i < pts.length; i++) steps.push(pts[i][0] - pts[i - 1][0]);
    steps.sort((a, b) => a - b);
    const gap = Math.max(5000, 3 * steps[Math.floor(steps.length / 2)]);
    // Non-numeric tags (states, switches) hold their value until the next.
    const stepped = tag && typeof tag.value !== "number";
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    svg.setAttribute("preserveAspectRatio", "none");
    let run = [];
    const flush = () => {
      if (run.length === 0) return;
      if (run.length === 1) run.push(run[0]);
      const pl = document.createElementNS(SVG, "polyline");
      pl.setAttribute("class", "trend");
      pl.setAttribute("vector-effect", "non-scaling-stroke");
      pl.setAttribute("points", run.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" "));
      svg.append(pl);
      run = [];
    };
    pts.forEach((p, i) => {
      if (i > 0 && p[0] - pts[i - 1][0] > gap) flush();
      else if (i > 0 && stepped) run.push([x(p[0]), y(pts[i - 1][1])]);
      run.push([x(p[0]), y(p[1])]);
    });
    flush();
    box.append(svg, el("span", "axis max", fmtValue(hi)), el("span", "axis min", fmtValue(lo)));
    legend.append(el("span", "", "last " + fmtAge(t1 - t0)),
      el("span", "", "min " + fmtValue(lo) + " · max " + fmtValue(hi)),
      el("span", "", "now " + fmtValue(pts[pts.length - 1][1])));
  }

  function banner(text) {
    const b = $("banner");
    b.textContent = text || "";
    b.hidden = !text;
    $("main").classList.toggle("stale", !!text);
  }

  let timer = null;
  let inflight = false;
  let again = false; // poll again at once: the selection changed mid-request
  async function poll() {
    if (inflight) { again = true; return; }
    inflight = true;
    again = false;
    clearTimeout(timer);
    const ctl = new AbortController();
    const abort = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    let fetched = false;
    try {
      let url = "/status/live";
      if (selected) url += "?device=" + encodeURIComponent(selected.device) + "&tag=" + encodeURIComponent(selected.tag);
      const resp = await fetch(url, { signal: ctl.signal, cache: "no-store" });
      if (resp.status === 401) {
        banner("Access denied: this agent needs its http token. Open /?token=<token> once in this browser.");
      } else if (!resp.ok) {
        throw new Error(resp.status + " " + resp.statusText);
      } else {
        const doc = await resp.json();
        fetched = true;
        const now = Date.parse(doc.now);
        if (!selected) {
          // Chart something from the start: the first numeric tag.
          const t = (doc.tags || []).find((t) => typeof t.value === "number");
          if (t) { selected = { device: t.device, tag: t.tag }; again = true; }
        }
        renderHeader(doc, now);
        renderDevices(doc, now);
        renderUplink(doc, now);
        renderBuffer(doc, now);
        renderTags(doc, now);
        renderChart(doc, now);
        // Other parts of the page (oee.js) draw from the same answer.
        document.dispatchEvent(new CustomEvent("linegate:live", { detail: doc }));
        lastOK = new Date();
        banner("");
      }
    } catch (e) {
      if (fetched) {
        // A bug of the page, not the agent: say so, and let the console
        // (and the page's test) see it.
        console.error(e);
        banner("The page failed to show the agent's answer: " + e.message);
        return;
      }
      banner("No answer from the agent" + (lastOK ? " since " + lastOK.toLocaleTimeString() : "") +
        " (" + (e && e.name === "AbortError" ? "timeout" : e.message) + "). The values below are not live; retrying.");
    } finally {
      clearTimeout(abort);
      inflight = false;
      clearTimeout(timer);
      timer = setTimeout(poll, again ? 0 : POLL_MS);
    }
  }

  window.addEventListener("hashchange", () => { const s = fromHash(); if (s) select(s.device, s.tag); });
  poll();
})();
