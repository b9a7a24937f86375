// The status page: redrawn on every `status` event pushed by the server;
// the graph panel (graph.js) follows `graph` and `graph-states`. Needs
// common.js.
"use strict";
(function () {

  var byId = dask.byId, setText = dask.setText, cell = dask.cell, hue = dask.hue;
  var bytes = dask.bytes;

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
    setText("uptime", s.uptime_s.toFixed(1));
    renderGroups(s.groups);
    renderWorkers(s.workers);
    renderStream(s.stream, s.workers);
  }

  var graph = window.daskGraph(byId("graph"));
  dask.connect(["status", "graph"], {
    "status": render,
    "graph": graph.setGraph,
    "graph-states": graph.setStates
  });
})();
