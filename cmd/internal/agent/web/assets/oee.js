// linegate status page: the OEE card. Draws from the answer app.js polls
// (event "linegate:live"): per device the current shift's OEE and its three
// factors, and a bar chart of the last shifts. Text is set with
// textContent; the chart is inline SVG, nothing is fetched from elsewhere.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // pct shows a factor (0..1, or null before it is defined) in percent.
  function pct(v) {
    return typeof v === "number" && isFinite(v) ? (100 * v).toFixed(1) + " %" : "—";
  }

  // chart draws one bar per shift (oldest first, the current one last and
  // lighter): its height is the OEE, 0..100 %.
  function chart(shifts) {
    const W = 300, H = 90, top = 6, base = 72, n = Math.max(shifts.length, 1);
    const step = W / n, bw = Math.min(28, step * 0.7);
    const s = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "oee-chart", role: "img",
      "aria-label": "OEE of the last " + shifts.length + " shifts" });
    s.append(svg("line", { x1: 0, y1: base, x2: W, y2: base, class: "axis" }));
    s.append(svg("line", { x1: 0, y1: top, x2: W, y2: top, class: "full" }));
    shifts.forEach((f, i) => {
      const x = i * step + (step - bw) / 2;
      const v = typeof f.oee === "number" ? Math.max(0, Math.min(1, f.oee)) : null;
      const h = v === null ? 0 : v * (base - top);
      const cls = "bar" + (f.final ? "" : " current") + (f.uncertain ? " uncertain" : "") + (v === null ? " none" : "");
      const r = svg("rect", { x: x.toFixed(1), y: (base - Math.max(h, 1)).toFixed(1), width: bw.toFixed(1), height: Math.max(h, 1).toFixed(1), class: cls });
      r.append(svg("title", {}, "shift " + f.shift + " from " + f.shift_start + ": OEE " + pct(f.oee) +
        (f.uncertain ? " (uncertain: " + f.uncertain + ")" : "")));
      s.append(r);
      s.append(svg("text", { x: (x + bw / 2).toFixed(1), y: H - 4, class: "label" }, f.shift));
    });
    return s;
  }

  // render fills container with one block per device of list (the
  // status's "oee"); exported for the page's test.
  function render(list, container) {
    container.replaceChildren();
    for (const d of list || []) {
      const c = d.current || {};
      const box = el("div", "oee-dev");
      box.dataset.device = d.device;
      const head = el("div", "oee-head");
      head.append(el("span", "name", d.device), el("span", "muted", " shift " + (c.shift || "—")));
      if (c.uncertain) {
        const p = el("span", "pill warn", "uncertain");
        p.title = c.uncertain;
        head.append(p);
      }
      box.append(head);
      const figs = el("div", "oee-figs");
      for (const [key, label] of [["oee", "OEE"], ["availability", "Availability"], ["performance", "Performance"], ["quality", "Quality"]]) {
        const f = el("div", "fig" + (key === "oee" ? " main" : ""));
        const v = el("span", "v", pct(c[key]));
        v.dataset.f = key;
        f.append(el("span", "k", label), v);
        figs.append(f);
      }
      box.append(figs);
      const shifts = (d.last || []).concat(d.current ? [d.current] : []);
      box.append(chart(shifts));
      const why = el("div", "muted small inputs",
        "run " + Math.round(c.run_s || 0) + " s · unplanned stop " + Math.round(c.unplanned_stop_s || 0) +
        " s · planned stop " + Math.round(c.planned_stop_s || 0) + " s · unknown " + Math.round(c.unknown_s || 0) +
        " s · parts " + (c.total_count || 0) + " (good " + (c.good_count || 0) + ")");
      box.append(why);
      container.append(box);
    }
  }

  window.linegateOEE = { render: render };
  document.addEventListener("linegate:live", (ev) => {
    const list = (ev.detail && ev.detail.status && ev.detail.status.oee) || [];
    const card = document.getElementById("oee");
    card.hidden = list.length === 0;
    if (list.length > 0) render(list, document.getElementById("oee-list"));
  });
})();
