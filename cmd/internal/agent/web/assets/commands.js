// The last commands from the MES per device (writes to the PLCs), from the
// answer app.js polls: it hands each one over in a "linegate:live" event.
// The card stays hidden until a command came.
(function () {
  "use strict";
  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    tr.append(td);
  }
  document.addEventListener("linegate:live", (ev) => {
    const doc = ev.detail;
    const card = document.getElementById("commands-card");
    const body = document.getElementById("commands").tBodies[0];
    const rows = [];
    for (const d of (doc.status && doc.status.devices) || []) {
      for (const c of d.commands || []) rows.push([d.name, c]);
    }
    card.hidden = rows.length === 0;
    rows.sort((a, b) => Date.parse(b[1].ts) - Date.parse(a[1].ts));
    body.replaceChildren();
    for (const [device, c] of rows) {
      const tr = document.createElement("tr");
      tr.dataset.result = c.result;
      cell(tr, new Date(c.ts).toLocaleTimeString());
      cell(tr, device + "/" + c.tag);
      cell(tr, c.value, "num");
      cell(tr, c.readback, "num");
      cell(tr, c.result.toUpperCase(), c.result === "ok" ? "good" : "bad");
      cell(tr, c.id);
      cell(tr, c.error, "err");
      body.append(tr);
    }
  });
})();
