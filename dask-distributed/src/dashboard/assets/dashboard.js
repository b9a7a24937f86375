// The dashboard page: polls /api/status and redraws. No dependencies.
"use strict";
(function () {
  var POLL_MS = 500;
  var polls = 0;

  function byId(id) { return document.getElementById(id); }

  function setText(id, value) { byId(id).textContent = String(value); }

  function cell(row, value, cls) {
    var td = document.createElement("td");
    td.textContent = String(value);
    if (cls) { td.className = cls; }
    row.appendChild(td);
    return td;
  }

  function hue(name) {
    var h = 0;
    for (var i = 0; i < name.length; i++) { h = (h * 31 + name.charCodeAt(i)) % 360; }
    return h;
  }

  function bytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"];
    var u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
    return (u === 0 ? n : n.toFixed(1)) + " " + units[u];
  }

  function bar(done, erred, total) {
    var outer = document.createElement("div");
    outer.className = "bar";
    var pct = function (n) { return total > 0 ? (100 * n / total) + "%" : "0%"; };
    var d = document.createElement("div");
    d.className = "done";
    d.style.width = pct(done);
    var e = document.createElement("div");
    e.className = "erred";
    e.style.left = pct(done);
    e.style.width = pct(erred);
    outer.appendChild(d);
    outer.appendChild(e);
    return outer;
  }

  function renderGroups(groups) {
    var body = byId("groups").tBodies[0];
    body.textContent = "";
    groups.forEach(function (g) {
      var c = g.counts;
      var tr = document.createElement("tr");
      tr.dataset.group = g.name;
      cell(tr, g.name);
      cell(tr, "", "bar-cell").appendChild(bar(g.done, c.erred, g.total));
      cell(tr, g.done + " / " + g.total, "group-progress");
      cell(tr, c.waiting + c.no_worker + c.queued);
      cell(tr, c.processing);
      cell(tr, c.memory);
      cell(tr, c.erred);
      cell(tr, c.released);
      body.appendChild(tr);
    });
  }

  function renderWorkers(workers) {
    var body = byId("workers").tBodies[0];
    body.textContent = "";
    workers.forEach(function (w) {
      var tr = document.createElement("tr");
      tr.dataset.address = w.address;
      cell(tr, w.id);
      cell(tr, w.address, "address");
      cell(tr, w.nthreads);
      cell(tr, w.in_flight);
      cell(tr, bytes(w.memory_bytes));
      cell(tr, w.tasks_done);
      body.appendChild(tr);
    });
  }

  function renderStream(stream, workers) {
    var NS = "http://www.w3.org/2000/svg";
    var div = byId("stream");
    div.textContent = "";
    var rows = {};
    workers.forEach(function (w, i) { rows[w.id] = i; });
    var nrows = Math.max(workers.length, 1);
    var width = 900, rowH = 18, height = nrows * rowH + 4;
    var svg = document.createElementNS(NS, "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    if (stream.length > 0) {
      var t0 = stream[0].start_s, t1 = t0;
      stream.forEach(function (s) { t0 = Math.min(t0, s.start_s); t1 = Math.max(t1, s.end_s); });
      var span = Math.max(t1 - t0, 1e-6);
      stream.forEach(function (s) {
        var row = rows.hasOwnProperty(s.worker) ? rows[s.worker] : nrows - 1;
        var r = document.createElementNS(NS, "rect");
        r.setAttribute("x", (width * (s.start_s - t0) / span).toFixed(2));
        r.setAttribute("y", 2 + row * rowH);
        r.setAttribute("width", Math.max(1, width * (s.end_s - s.start_s) / span).toFixed(2));
        r.setAttribute("height", rowH - 4);
        r.setAttribute("fill", s.erred ? "#d33" : "hsl(" + hue(s.group) + ",60%,50%)");
        var title = document.createElementNS(NS, "title");
        title.textContent = s.key + " on worker " + s.worker + " (" +
          ((s.end_s - s.start_s) * 1000).toFixed(2) + " ms)";
        r.appendChild(title);
        svg.appendChild(r);
      });
    }
    div.appendChild(svg);
    var p = document.createElement("p");
    p.id = "stream-count";
    p.textContent = stream.length + " recent tasks";
    div.appendChild(p);
  }

  function render(s) {
    setText("tasks-done", s.tasks_done);
    setText("tasks-total", s.tasks_seen);
    setText("tasks-processing", s.tasks.processing);
    setText("tasks-erred", s.tasks.erred);
    setText("n-workers", s.workers.length);
    renderGroups(s.groups);
    renderWorkers(s.workers);
    renderStream(s.stream, s.workers);
  }

  function poll() {
    var conn = byId("connection");
    fetch("/api/status", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (s) {
        render(s);
        polls += 1;
        conn.dataset.polls = String(polls);
        conn.className = "";
        conn.textContent = "live (uptime " + s.uptime_s.toFixed(1) + " s)";
      })
      .catch(function (e) {
        conn.className = "down";
        conn.textContent = "scheduler unreachable: " + e.message;
      })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  window.addEventListener("error", function (ev) {
    byId("errors").textContent += "error: " + ev.message + "\n";
  });
  poll();
})();
