// The task-stream page: `tasks` events pushed by the server bring the new
// records and the worker table (the lanes); one SVG lane per worker thread.
// The window slides with the server's clock between events. Needs
// common.js.
"use strict";
(function () {
  var REDRAW_MS = 500;
  // Seconds shown: 20, or the page's ?window=N.
  var asked = /[?&]window=(\d+)/.exec(window.location.search);
  var WINDOW_S = asked ? Math.max(1, parseInt(asked[1], 10)) : 20;
  var MAX_RECORDS = 20000;
  var records = [];
  var total = 0;
  var skipped = 0;
  var workers = [];
  // Server clock minus the browser's, in seconds (from the last event).
  var skew = 0;
  var NS = dask.NS;

  var byId = dask.byId, hue = dask.hue;

  function lanesOf(workers) {
    var lanes = [];
    var index = {};
    workers.forEach(function (w) {
      for (var t = 0; t < w.nthreads; t++) {
        index[w.address + "#" + t] = lanes.length;
        lanes.push(w.address + " #" + t);
      }
    });
    records.forEach(function (r) {
      var id = r.worker + "#" + r.thread;
      if (!index.hasOwnProperty(id)) {
        index[id] = lanes.length;
        lanes.push(r.worker + " #" + r.thread);
      }
    });
    return { names: lanes, index: index };
  }

  function draw(now, workers) {
    var lanes = lanesOf(workers);
    var left = 170, width = 960, rowH = 16;
    var height = Math.max(lanes.names.length, 1) * rowH + 20;
    var t0 = now - WINDOW_S;
    var scale = (width - left) / WINDOW_S;
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    lanes.names.forEach(function (name, i) {
      var text = document.createElementNS(NS, "text");
      text.setAttribute("x", 2);
      text.setAttribute("y", i * rowH + rowH - 4);
      text.setAttribute("font-size", "10");
      text.textContent = name;
      svg.appendChild(text);
    });
    var shown = 0;
    var byPrefix = {};
    records.forEach(function (r) {
      if (r.stop < t0) { return; }
      shown += 1;
      var p = byPrefix[r.prefix] || (byPrefix[r.prefix] = { n: 0, secs: 0 });
      p.n += 1;
      p.secs += r.stop - r.start;
      var row = lanes.index[r.worker + "#" + r.thread];
      var rect = document.createElementNS(NS, "rect");
      rect.setAttribute("class", "task");
      rect.setAttribute("x", (left + Math.max(0, r.start - t0) * scale).toFixed(2));
      rect.setAttribute("y", row * rowH + 2);
      rect.setAttribute("width", Math.max(1, (r.stop - Math.max(r.start, t0)) * scale).toFixed(2));
      rect.setAttribute("height", rowH - 4);
      rect.setAttribute("fill", r.ok ? "hsl(" + hue(r.prefix) + ",60%,50%)" : "#d33");
      var title = document.createElementNS(NS, "title");
      title.textContent = r.key + " on " + r.worker + " #" + r.thread + " (" +
        ((r.stop - r.start) * 1000).toFixed(2) + " ms)" + (r.ok ? "" : " FAILED");
      rect.appendChild(title);
      svg.appendChild(rect);
    });
    for (var s = 0; s <= WINDOW_S; s += WINDOW_S / 4) {
      var tick = document.createElementNS(NS, "text");
      tick.setAttribute("x", (left + s * scale).toFixed(1));
      tick.setAttribute("y", height - 4);
      tick.setAttribute("font-size", "10");
      tick.setAttribute("text-anchor", "middle");
      tick.textContent = (s - WINDOW_S).toFixed(WINDOW_S < 4 ? 1 : 0) + " s";
      svg.appendChild(tick);
    }
    var div = byId("lanes");
    div.textContent = "";
    div.appendChild(svg);
    byId("stream-shown").textContent = String(shown);
    byId("stream-total").textContent = String(total);
    var body = byId("prefixes").tBodies[0];
    body.textContent = "";
    Object.keys(byPrefix).sort().forEach(function (name) {
      var tr = document.createElement("tr");
      tr.dataset.prefix = name;
      [name, byPrefix[name].n, (1000 * byPrefix[name].secs / byPrefix[name].n).toFixed(3)]
        .forEach(function (v) {
          var td = document.createElement("td");
          td.textContent = String(v);
          tr.appendChild(td);
        });
      body.appendChild(tr);
    });
  }

  function serverNow() { return Date.now() / 1000 + skew; }

  function onTasks(page) {
    skew = page.now - Date.now() / 1000;
    total = page.next;
    skipped += page.skipped;
    byId("stream-skipped").textContent = skipped > 0
      ? "(" + skipped + " not drawn: too many to follow live)" : "";
    workers = page.workers;
    records = records.concat(page.records);
    var cutoff = page.now - WINDOW_S;
    records = records.filter(function (r) { return r.stop >= cutoff; });
    if (records.length > MAX_RECORDS) { records = records.slice(records.length - MAX_RECORDS); }
    if (!page.enabled) { byId("connection").textContent = "the scheduler records no task stream"; }
    draw(serverNow(), workers);
  }

  byId("stream-window").textContent = String(WINDOW_S);
  dask.connect(["tasks"], { "tasks": onTasks });
  // Slide the window between events (a local redraw, no request).
  setInterval(function () { draw(serverNow(), workers); }, REDRAW_MS);
})();
