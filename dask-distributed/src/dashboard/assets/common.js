// What every dashboard page shares: DOM helpers, colours, and the live
// connection (server-sent events from /api/events; the browser reconnects
// by itself). No dependencies.
"use strict";
window.dask = (function () {
  var NS = "http://www.w3.org/2000/svg";

  function byId(id) { return document.getElementById(id); }

  function setText(id, value) { byId(id).textContent = String(value); }

  function cell(row, value, cls) {
    var td = document.createElement("td");
    td.textContent = String(value);
    if (cls) { td.className = cls; }
    row.appendChild(td);
    return td;
  }

  function svg(tag, attrs) {
    var el = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    return el;
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

  // Subscribes to `topics` (an array of status, graph, tasks); `handlers`
  // maps event names to functions of the parsed JSON. #connection shows the
  // link's state; its data-updates counts the events handled.
  function connect(topics, handlers) {
    var conn = byId("connection");
    var updates = 0;
    var source = new EventSource("/api/events?topics=" + topics.join(","));
    source.onopen = function () {
      conn.className = "";
      conn.textContent = "live";
    };
    source.onerror = function () {
      conn.className = "down";
      conn.textContent = source.readyState === EventSource.CLOSED
        ? "disconnected (reload the page to retry)"
        : "scheduler unreachable, reconnecting…";
    };
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (ev) {
        handlers[name](JSON.parse(ev.data));
        updates += 1;
        conn.dataset.updates = String(updates);
      });
    });
    source.addEventListener("closed", function () {
      conn.className = "down";
      conn.textContent = "the scheduler stopped";
    });
    return source;
  }

  window.addEventListener("error", function (ev) {
    byId("errors").textContent += "error: " + ev.message + "\n";
  });

  return { NS: NS, byId: byId, setText: setText, cell: cell, svg: svg, hue: hue,
           bytes: bytes, connect: connect };
})();
