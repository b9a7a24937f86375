// The graph panel: the current computation's tasks as an SVG, one circle
// per task in rows by dependency depth (roots on top), edges from each
// dependency, coloured by state (data-state; see dashboard.css). A `graph`
// event redraws; `graph-states` only recolours. Needs common.js.
"use strict";
window.daskGraph = function (container) {
  var DX = 16, DY = 60, PAD = 12, R = 5;
  var structure = null;
  var circles = [];
  var keys = [];
  var message = dask.byId("graph-message");

  // Depth of every node: 0 for a task without dependencies in the view,
  // else one more than its deepest dependency (iterative; a cycle, which a
  // valid graph never has, is cut).
  function depths(nodes) {
    var depth = new Array(nodes.length);
    for (var i = 0; i < nodes.length; i++) {
      if (depth[i] !== undefined) { continue; }
      var stack = [i];
      var onStack = {};
      onStack[i] = true;
      while (stack.length > 0) {
        var n = stack[stack.length - 1];
        var pending = nodes[n].deps.filter(function (d) {
          return depth[d] === undefined && !onStack[d];
        });
        if (pending.length > 0) {
          pending.forEach(function (d) { onStack[d] = true; stack.push(d); });
          continue;
        }
        var deepest = -1;
        nodes[n].deps.forEach(function (d) {
          if (depth[d] !== undefined) { deepest = Math.max(deepest, depth[d]); }
        });
        depth[n] = deepest + 1;
        delete onStack[n];
        stack.pop();
      }
    }
    return depth;
  }

  function paint(circle, key, state, forgotten) {
    circle.setAttribute("data-state", state);
    circle.setAttribute("data-forgotten", forgotten ? "1" : "0");
    circle.firstChild.textContent = key + ": " + state + (forgotten ? " (forgotten)" : "");
  }

  function setGraph(g) {
    structure = g.structure;
    container.textContent = "";
    circles = [];
    keys = [];
    if (g.too_big) {
      message.textContent = "The current computation has " + g.tasks +
        " tasks; the graph view draws computations of up to " + g.limit + " tasks.";
      return;
    }
    if (g.nodes.length === 0) {
      message.textContent = "No computation yet.";
      return;
    }
    message.textContent = g.nodes.length + " tasks";
    var depth = depths(g.nodes);
    var layers = [];
    depth.forEach(function (d, i) { (layers[d] = layers[d] || []).push(i); });
    // Places in a layer: roots in arrival order; deeper layers sorted by the
    // mean place of their dependencies (fewer crossings).
    var row = new Array(g.nodes.length);
    layers.forEach(function (layer) {
      var weight = function (i) {
        var ds = g.nodes[i].deps;
        if (ds.length === 0) { return i; }
        var sum = 0;
        ds.forEach(function (d) { sum += row[d]; });
        return sum / ds.length;
      };
      var w = {};
      layer.forEach(function (i) { w[i] = weight(i); });
      layer.sort(function (a, b) { return w[a] - w[b] || a - b; });
      layer.forEach(function (i, r) { row[i] = r; });
    });
    var widest = 0;
    layers.forEach(function (l) { widest = Math.max(widest, l.length); });
    var width = 2 * PAD + (widest - 1) * DX;
    var height = 2 * PAD + (layers.length - 1) * DY;
    var x = function (i) {
      // Each layer centred.
      var offset = (widest - layers[depth[i]].length) * DX / 2;
      return PAD + offset + row[i] * DX;
    };
    var y = function (i) { return PAD + depth[i] * DY; };
    var root = dask.svg("svg", {
      width: width, height: height, viewBox: "0 0 " + width + " " + height
    });
    var edges = dask.svg("g", { "class": "edges" });
    g.nodes.forEach(function (n, i) {
      n.deps.forEach(function (d) {
        edges.appendChild(dask.svg("line", {
          x1: x(d), y1: y(d), x2: x(i), y2: y(i), "class": "edge"
        }));
      });
    });
    root.appendChild(edges);
    g.nodes.forEach(function (n, i) {
      var c = dask.svg("circle", { cx: x(i), cy: y(i), r: R, "class": "node" });
      c.setAttribute("data-key", n.key);
      c.setAttribute("data-group", n.group);
      c.appendChild(dask.svg("title"));
      paint(c, n.key, n.state, n.forgotten);
      root.appendChild(c);
      circles.push(c);
      keys.push(n.key);
    });
    container.appendChild(root);
  }

  function setStates(s) {
    if (s.structure !== structure || s.states.length !== circles.length) { return; }
    var forgotten = {};
    s.forgotten.forEach(function (i) { forgotten[i] = true; });
    s.states.forEach(function (state, i) { paint(circles[i], keys[i], state, !!forgotten[i]); });
  }

  return { setGraph: setGraph, setStates: setStates };
};
