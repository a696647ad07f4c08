// Live pages: the event stream, rows patched in place, the waterfall (see dashboard.js).
"use strict";

(function (C) {
  var $ = C.$;
  var $$ = C.$$;
  var now = C.now;
  var secondsText = C.secondsText;
  var morph = C.morph;
  var enhance = C.enhance;
  var announce = C.announce;
  var batcher = C.batcher;
  var fetchDocument = C.fetchDocument;
  var mergeParts = C.mergeParts;
  var LABELS = C.LABELS;

  // --- time axes: bars are drawn in milliseconds from the axis' start --------------------------

  // The waterfall (a run tree) and a flow's steps are boards of the same kind: a table whose
  // rows hold SVG bars, `data-t0` and `data-span` on it, its tick labels in `axisId`. Open
  // segments grow every second; the axis grows by a tenth at a time, so the thousand bars of a
  // big tree are rescaled now and then rather than every second.
  function board(tableId, axisId) {
    return {
      table: null,
      base: 0, // the axis' length the server drew (closed segments end by then)
      span: 0, // the axis' length drawn
      init: function () {
        this.table = document.getElementById(tableId);
        if (this.table) { this.base = Number(this.table.getAttribute("data-span")) || 1; this.draw(true); }
      },
      grow: function (span) { if (span > this.base) { this.base = span; } },
      // after the server sent the whole table again (a fragment merged in): its axis is the
      // server's, which is longer now or, once a sleep's wake time moved, shorter
      merged: function () {
        var table = document.getElementById(tableId);
        if (!table) { return; }
        if (table !== this.table) { this.table = table; this.span = 0; }
        this.base = Number(table.getAttribute("data-span")) || 1;
        this.draw(true);
      },
      draw: function (rescale) {
        var table = this.table;
        if (!table || !document.body.contains(table)) { return; }
        var t0 = Number(table.getAttribute("data-t0"));
        var open = $$("rect[data-open]", table);
        var elapsed = now() - t0;
        open.forEach(function (rect) {
          rect.setAttribute("width", String(Math.max(elapsed - Number(rect.getAttribute("data-open")), 0)));
        });
        var wanted = Math.max(this.base, open.length ? elapsed : 0, 1);
        if (wanted > this.span || (!open.length && this.span !== wanted)) {
          this.span = open.length ? wanted * 1.1 : wanted; // nothing runs: the axis ends with the last bar
          rescale = true;
        }
        if (!rescale) { return; }
        var box = "0 0 " + Math.round(this.span) + " 10";
        $$("svg[viewBox]", table.tBodies[0]).forEach(function (svg) {
          if (svg.getAttribute("viewBox") !== box) { svg.setAttribute("viewBox", box); }
        });
        var span = this.span;
        $$("#" + axisId + " > span").forEach(function (label, index) {
          label.textContent = secondsText(span * index / 4000);
        });
      }
    };
  }

  var waterfall = board("wf-table", "wf-axis");
  var steps = board("steps-table", "steps-axis");

  // a run of the tree: its row replaced, or put under its parent (after the parent's subtree)
  waterfall.upsert = function (row) {
    var body = this.table && this.table.tBodies[0];
    if (!body) { return; }
    var id = row.getAttribute("data-run-id");
    var existing = body.querySelector('tr[data-run-id="' + id + '"]');
    if (existing) { morph(existing, row); return; }
    var fresh = document.importNode(row, true);
    var parent = body.querySelector('tr[data-run-id="' + row.getAttribute("data-parent-id") + '"]');
    if (!parent) { body.appendChild(fresh); return; }
    var depth = Number(parent.getAttribute("data-depth"));
    var after = parent.nextElementSibling;
    while (after && Number(after.getAttribute("data-depth")) > depth) { after = after.nextElementSibling; }
    body.insertBefore(fresh, after);
  };

  // --- live pages -----------------------------------------------------------------------------

  // "2026-11-25 21:18:08 UTC", as the server writes times
  function utcText(ms) { return new Date(ms).toISOString().replace("T", " ").slice(0, 19) + " UTC"; }

  function badge(status, waiting, wakesAt) {
    var el = document.createElement("span");
    el.className = "status status-" + status;
    el.setAttribute("data-status", status);
    el.textContent = LABELS[status] || status;
    if (wakesAt) {
      var wakes = document.createElement("span");
      var at = document.createElement("time");
      wakes.className = "muted wakes";
      at.setAttribute("datetime", new Date(wakesAt).toISOString());
      at.textContent = utcText(wakesAt);
      wakes.append("— wakes at ", at);
      el.append(" ", wakes);
    }
    if (waiting && status === "running") {
      var note = document.createElement("span");
      note.className = "muted";
      note.textContent = "(waiting on children)";
      el.append(" ", note);
    }
    return el;
  }

  // What an event alone can update: the status and the duration of every place showing the run.
  function patchRun(holder, change) {
    var old = holder.querySelector(".status[data-status]");
    // a flow run asleep is pending to the engine, paused to the reader
    var status = change.wakesAt ? "paused" : change.status;
    var note = change.wakesAt ? String(change.wakesAt) : (change.waiting && change.status === "running") ? "waiting" : "";
    if (old && (old.getAttribute("data-status") !== status || (old.getAttribute("data-note") || "") !== note)) {
      var fresh = badge(status, change.waiting, change.wakesAt);
      if (note) { fresh.setAttribute("data-note", note); }
      old.replaceWith(fresh);
    }
    var since = holder.querySelector(".duration");
    if (since && change.startedAt) {
      since.setAttribute("data-since", String(change.startedAt));
      if (change.completedAt) {
        since.setAttribute("data-until", String(change.completedAt));
        since.textContent = secondsText((change.completedAt - change.startedAt) / 1000);
      }
    }
    var attempts = holder.querySelector("[data-attempts]");
    if (attempts && attempts.textContent !== String(change.attempts)) { attempts.textContent = String(change.attempts); }
    var box = holder.querySelector('input[type="checkbox"][name="run"]');
    if (box && LABELS[change.status] && (change.status === "succeeded" || change.status === "failed" || change.status === "canceled")) {
      box.disabled = true;
      box.checked = false;
    }
  }

  var MAX_ROWS = 200;

  function runsPage(region) {
    var body = document.getElementById("run-rows");
    var firstPage = region.getAttribute("data-first-page") === "true";
    var rowsUrl = region.getAttribute("data-rows");
    var rows = batcher(300, function (ids) {
      var url = rowsUrl + (ids ? "&only=" + ids.join(",") : "");
      return fetchDocument(url).then(function (doc) {
        var fresh = $$("#run-rows > tr", doc);
        if (!ids) { morph(body, doc.getElementById("run-rows")); return; }
        if (!fresh.length) { return; }
        // what the reader looks at stays where it is: the focused row, else the first one in view
        var anchor = (document.activeElement && body.contains(document.activeElement) && document.activeElement.closest("tr")) ||
          $$("tr[data-run-id]", body).filter(function (r) { return r.getBoundingClientRect().bottom > 0; })[0];
        var before = anchor ? anchor.getBoundingClientRect().top : 0;
        fresh.forEach(function (row) {
          var id = row.getAttribute("data-run-id");
          if (body.querySelector('tr[data-run-id="' + id + '"]')) { return; }
          var next = $$("tr[data-run-id]", body).filter(function (r) { return r.getAttribute("data-run-id") < id; })[0] || null;
          var added = document.importNode(row, true);
          body.insertBefore(added, next);
          enhance(added);
        });
        var empty = document.getElementById("no-runs");
        if (empty) { empty.remove(); }
        // at the top of the page new runs push the list down; further down the reader stays put
        if (anchor && window.scrollY > 0) { window.scrollBy(0, anchor.getBoundingClientRect().top - before); }
        trimRows(body);
        announce(fresh.length + " new run" + (fresh.length === 1 ? "" : "s"));
      });
    });
    return {
      run: function (change) {
        var row = body.querySelector('tr[data-run-id="' + change.id + '"]');
        if (row) { patchRun(row, change); } else if (firstPage) { rows.add(change.id); }
      },
      stale: function () { rows.all(); }
    };
  }

  function trimRows(body) {
    var all = $$("tr[data-run-id]", body);
    var older = $('a[rel="next"]');
    for (var index = all.length - 1; index >= MAX_ROWS; index--) {
      var row = all[index];
      if (row.contains(document.activeElement) || (row.querySelector("input:checked"))) { break; }
      row.remove();
    }
    if (older && all.length > MAX_ROWS) {
      var last = $$("tr[data-run-id]", body).pop();
      var url = new URL(older.href);
      url.searchParams.set("cursor", last.getAttribute("data-run-id"));
      older.href = url.pathname + url.search;
    }
  }

  function runPage(region) {
    var runId = region.getAttribute("data-run-id");
    var fragment = region.getAttribute("data-fragment");
    // a big tree costs the server more to read: its rows are asked for less often
    var rows = document.querySelectorAll("#wf-rows > tr").length;
    var parts = batcher(rows > 200 ? 1000 : 250, function (ids) {
      var url = fragment + (ids ? "&only=" + ids.join(",") : "");
      return fetchDocument(url).then(function (doc) {
        mergeParts(doc);
        var info = doc.getElementById("fragment");
        if (info) { waterfall.grow(Number(info.getAttribute("data-span"))); }
        $$("#wf-rows > tr", doc).forEach(function (row) { waterfall.upsert(row); });
        $$("#tree-items > li", doc).forEach(upsertTreeItem);
        waterfall.draw(true);
        steps.merged();
        document.dispatchEvent(new CustomEvent("conveyor:refreshed"));
      });
    });
    return {
      run: function (change) {
        $$('[data-run-id="' + change.id + '"]', region).forEach(function (holder) {
          if (holder.tagName === "TR" || holder.tagName === "LI") { patchRun(holder.tagName === "LI" ? holder.querySelector(".node") || holder : holder, change); }
        });
        if (change.id === runId) {
          var status = document.getElementById("run-status");
          if (status) { patchRun(status.parentNode.parentNode, change); }
        }
        parts.add(change.id);
      },
      stale: function () { parts.all(); }
    };
  }

  function upsertTreeItem(item) {
    var tree = document.getElementById("run-tree");
    if (!tree) { return; }
    var id = item.getAttribute("data-run-id");
    var existing = tree.querySelector('li[data-run-id="' + id + '"]');
    var node = item.querySelector(".node");
    if (existing) {
      var shown = existing.querySelector(":scope > .node");
      if (shown && node) { morph(shown, node); }
      return;
    }
    var parent = tree.querySelector('li[data-run-id="' + item.getAttribute("data-parent-id") + '"]');
    var list = parent ? parent.querySelector(":scope > ul") : tree;
    if (parent && !list) { list = document.createElement("ul"); parent.appendChild(list); }
    var fresh = document.importNode(item, true);
    fresh.removeAttribute("data-parent-id");
    list.appendChild(fresh);
  }

  // Pages whose live part is one fragment fetched again (at most once a second) on changes.
  function fragmentPage(region) {
    var only = region.getAttribute("data-on");
    var parts = batcher(1000, function () {
      return fetchDocument(region.getAttribute("data-fragment")).then(mergeParts);
    });
    return {
      run: function (change) {
        if (only !== "terminal" || change.status === "succeeded" || change.status === "failed" || change.status === "canceled") { parts.all(); }
      },
      stale: function () { parts.all(); }
    };
  }

  function listen(region) {
    var url = region.getAttribute("data-events");
    if (!url || !window.EventSource) { return; }
    var kind = region.getAttribute("data-live");
    var page = kind === "runs" ? runsPage(region) : kind === "run" ? runPage(region) : fragmentPage(region);
    var since = region.getAttribute("data-cursor");
    var source = new EventSource(url + (url.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(since || ""));
    source.addEventListener("run", function (event) { page.run(JSON.parse(event.data)); });
    source.addEventListener("stale", function () { page.stale(); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  C.onTick(function () { waterfall.draw(); steps.draw(); });
  C.onStart(function () {
    waterfall.init();
    steps.init();
    $$("[data-live][data-events]").forEach(listen);
  });
})(window.Conveyor);
