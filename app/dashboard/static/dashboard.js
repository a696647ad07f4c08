// Progressive enhancement: every page reads fine without this file. With it:
// - one event stream per page (Server-Sent Events) patches what changed in place: rows get their
//   new status and times from the event itself; rows the page does not have yet, and the parts
//   of a run page, come as small HTML fragments merged into the page node by node (focus,
//   scroll, ticked checkboxes and open details are kept);
// - durations of unfinished things count up every second, and the waterfall stretches with them;
// - logs are followed, searched and downloaded; ids copied; a theme chosen; keys do common things.
"use strict";

(function () {
  var LABELS = { pending: "Pending", running: "Running", succeeded: "Succeeded", failed: "Failed", canceled: "Canceled" };
  var skew = 0; // server clock minus ours, so durations agree with the server's times

  function now() { return Date.now() + skew; }
  function $(selector, root) { return (root || document).querySelector(selector); }
  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function announce(text) {
    var box = document.getElementById("announce");
    if (box) { box.textContent = ""; setTimeout(function () { box.textContent = text; }, 30); }
  }

  // --- durations ------------------------------------------------------------------------------

  function secondsText(seconds) {
    seconds = Math.max(seconds, 0);
    if (seconds < 10) { return seconds.toFixed(2) + " s"; }
    if (seconds < 60) { return Math.round(seconds) + " s"; }
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) { return minutes + " min " + Math.floor(seconds % 60) + " s"; }
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function tickDurations(root) {
    $$("[data-since]:not([data-until])", root).forEach(function (el) {
      var since = Number(el.getAttribute("data-since"));
      if (since) { el.textContent = secondsText((now() - since) / 1000); }
    });
  }

  // --- the waterfall: bars are drawn in milliseconds from the root's creation -----------------

  // Open segments grow every second; the axis grows by a tenth at a time, so the thousand bars
  // of a big tree are rescaled now and then rather than every second.
  var waterfall = {
    table: null,
    base: 0, // the axis' length the server drew (closed segments end by then)
    span: 0, // the axis' length drawn
    init: function () {
      this.table = document.getElementById("wf-table");
      if (this.table) { this.base = Number(this.table.getAttribute("data-span")) || 1; this.draw(true); }
    },
    grow: function (span) { if (span > this.base) { this.base = span; } },
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
        this.span = open.length ? wanted * 1.1 : wanted; // nothing runs: the axis ends with the tree
        rescale = true;
      }
      if (!rescale) { return; }
      var box = "0 0 " + Math.round(this.span) + " 10";
      $$("svg[viewBox]", table.tBodies[0]).forEach(function (svg) {
        if (svg.getAttribute("viewBox") !== box) { svg.setAttribute("viewBox", box); }
      });
      var span = this.span;
      $$("#wf-axis > span").forEach(function (label, index) {
        label.textContent = secondsText(span * index / 4000);
      });
    },
    upsert: function (row) {
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
    }
  };

  setInterval(function () { tickDurations(document); waterfall.draw(); }, 1000);

  // --- merging server HTML into the page ------------------------------------------------------

  function keyOf(node) {
    if (node.nodeType !== 1) { return ""; }
    return node.id || node.getAttribute("data-key") || node.getAttribute("data-run-id") || "";
  }

  var KEEP = { DETAILS: ["open"], INPUT: ["value", "checked"], SELECT: ["value"], TEXTAREA: ["value"] };

  function syncAttributes(from, to) {
    var keep = KEEP[from.nodeName] || [];
    Array.prototype.slice.call(to.attributes).forEach(function (attr) {
      if (keep.indexOf(attr.name) < 0 && from.getAttribute(attr.name) !== attr.value) {
        from.setAttribute(attr.name, attr.value);
      }
    });
    Array.prototype.slice.call(from.attributes).forEach(function (attr) {
      if (keep.indexOf(attr.name) < 0 && !to.hasAttribute(attr.name)) { from.removeAttribute(attr.name); }
    });
  }

  // Makes `from` look like `to`, keeping every node that can stay (so focus and scroll do).
  function morph(from, to) {
    if (from.nodeType !== to.nodeType || from.nodeName !== to.nodeName || keyOf(from) !== keyOf(to)) {
      var fresh = document.importNode(to, true);
      from.replaceWith(fresh);
      enhance(fresh);
      return;
    }
    if (from.nodeType !== 1) {
      if (from.nodeValue !== to.nodeValue) { from.nodeValue = to.nodeValue; }
      return;
    }
    syncAttributes(from, to);
    var byKey = {};
    Array.prototype.forEach.call(from.childNodes, function (node) {
      var key = keyOf(node);
      if (key) { byKey[key] = node; }
    });
    var cursor = from.firstChild;
    Array.prototype.slice.call(to.childNodes).forEach(function (wanted) {
      var key = keyOf(wanted);
      var match = key ? byKey[key] || null : (cursor && !keyOf(cursor) ? cursor : null);
      if (!match) {
        var added = document.importNode(wanted, true);
        from.insertBefore(added, cursor);
        if (added.nodeType === 1) { enhance(added); }
        return;
      }
      delete byKey[key];
      if (match === cursor) { cursor = cursor.nextSibling; } else { from.insertBefore(match, cursor); }
      morph(match, wanted);
    });
    while (cursor) {
      var next = cursor.nextSibling;
      from.removeChild(cursor);
      cursor = next;
    }
    enhance(from);
  }

  function fetchDocument(url) {
    return fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(url + " answered " + response.status); }
        return response.text();
      })
      .then(function (html) { return new DOMParser().parseFromString(html, "text/html"); });
  }

  // Every `[data-part]` of the fragment replaces the page's element with the same id.
  function mergeParts(doc) {
    $$("[data-part][id]", doc).forEach(function (part) {
      var current = document.getElementById(part.id);
      if (current) { morph(current, part); }
    });
  }

  // One request at a time; what arrives meanwhile waits for the next one.
  function batcher(delay, send) {
    var ids = {};
    var everything = false;
    var timer = null;
    var busy = false;
    function flush() {
      timer = null;
      if (busy) { return; }
      var chosen = everything ? null : Object.keys(ids);
      ids = {};
      everything = false;
      busy = true;
      Promise.resolve(send(chosen)).catch(function () {}).then(function () {
        busy = false;
        if (Object.keys(ids).length || everything) { schedule(); }
      });
    }
    function schedule() { if (!timer) { timer = setTimeout(flush, delay); } }
    return {
      add: function (id) { ids[id] = true; schedule(); },
      all: function () { everything = true; schedule(); }
    };
  }

  // --- live pages -----------------------------------------------------------------------------

  function badge(status, waiting) {
    var el = document.createElement("span");
    el.className = "status status-" + status;
    el.setAttribute("data-status", status);
    el.textContent = LABELS[status] || status;
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
    if (old && (old.getAttribute("data-status") !== change.status || !!old.querySelector(".muted") !== (change.waiting && change.status === "running"))) {
      old.replaceWith(badge(change.status, change.waiting));
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
    var since = region.getAttribute("data-since");
    var source = new EventSource(url + (url.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(since || ""));
    source.addEventListener("run", function (event) { page.run(JSON.parse(event.data)); });
    source.addEventListener("stale", function () { page.stale(); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // --- logs -----------------------------------------------------------------------------------

  function clockText(ms) {
    var at = new Date(ms);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    var millis = String(at.getUTCMilliseconds());
    return two(at.getUTCHours()) + ":" + two(at.getUTCMinutes()) + ":" + two(at.getUTCSeconds()) + "." + "000".slice(millis.length) + millis;
  }

  // A log as lines, each with the time the platform saw it (the server's stamps for what the
  // page was drawn with; for lines followed live, when they reached the page).
  function logView(pre, stampLive) {
    var search = document.getElementById("log-search");
    var follow = document.getElementById("log-follow");
    var times = document.getElementById("log-times");
    var matches = document.getElementById("log-matches");
    var lines = [];
    var stamped = pre.querySelectorAll(".ln");
    if (stamped.length) {
      Array.prototype.forEach.call(stamped, function (ln) {
        var ts = ln.querySelector(".ts");
        lines.push({ t: ts ? ts.textContent : "", title: ts ? ts.getAttribute("title") : "", text: ln.lastChild && ln.lastChild !== ts ? ln.lastChild.textContent : "" });
      });
    } else if (pre.textContent) {
      pre.textContent.split(/(?<=\n)/).forEach(function (text) { lines.push({ t: "", title: "", text: text }); });
    }
    var query = "";

    function lineNode(line) {
      var node = document.createElement("span");
      node.className = "ln";
      var ts = document.createElement("span");
      ts.className = "ts";
      ts.textContent = line.t;
      if (line.title) { ts.title = line.title; }
      node.appendChild(ts);
      var needle = query.toLowerCase();
      if (!needle) { node.append(line.text); return node; }
      var lower = line.text.toLowerCase();
      var from = 0;
      var at = lower.indexOf(needle);
      while (at >= 0) {
        node.append(line.text.slice(from, at));
        var mark = document.createElement("mark");
        mark.textContent = line.text.slice(at, at + needle.length);
        node.appendChild(mark);
        from = at + needle.length;
        at = lower.indexOf(needle, from);
      }
      node.append(line.text.slice(from));
      return node;
    }
    function shown(line) { return !query || line.text.toLowerCase().indexOf(query.toLowerCase()) >= 0; }
    function render() {
      var all = document.createDocumentFragment();
      var count = 0;
      lines.forEach(function (line) {
        if (shown(line)) { count += 1; all.appendChild(lineNode(line)); }
      });
      pre.textContent = "";
      pre.appendChild(all);
      if (matches) { matches.textContent = query ? count + " of " + lines.length + " lines match" : ""; }
    }
    if (search) {
      search.hidden = false;
      var timer = null;
      search.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () { query = search.value; render(); }, 120);
      });
    }
    if (follow) { follow.parentNode.hidden = false; }
    if (times) {
      times.parentNode.hidden = false;
      times.addEventListener("change", function () { pre.classList.toggle("no-times", !times.checked); });
    }
    return {
      reset: function () { lines = []; render(); },
      append: function (chunk) {
        var stamp = stampLive ? clockText(now()) : "";
        var parts = chunk.split(/(?<=\n)/);
        var last = lines[lines.length - 1];
        var node = pre.lastElementChild;
        if (last && !/\n$/.test(last.text) && parts.length) {
          last.text += parts.shift();  // the rest of a line begun in the last chunk
          if (node && shown(last)) { node.replaceWith(lineNode(last)); } else if (shown(last)) { render(); }
        }
        parts.forEach(function (text) {
          if (!text) { return; }
          var line = { t: stamp, title: "", text: text };
          lines.push(line);
          if (shown(line)) { pre.appendChild(lineNode(line)); }
        });
        if (query && matches) { matches.textContent = $$(".ln", pre).length + " of " + lines.length + " lines match"; }
        if (!follow || follow.checked) { pre.scrollTop = pre.scrollHeight; }
      }
    };
  }

  function stream(url, onStart, onChunk, onEnd) {
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok || !response.body) { return; }
      onStart(response);
      var reader = response.body.getReader();
      var decoder = new TextDecoder();
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) { onEnd(); return; }
          onChunk(decoder.decode(chunk.value, { stream: true }));
          return pump();
        });
      }
      return pump();
    }).catch(function () {});
  }

  function followRunLog(pre, view) {
    var runId = pre.getAttribute("data-run-id");
    var following = null;
    var state = document.getElementById("log-state");
    function head() { return document.getElementById("run-head"); }
    function latestAttempt() { return head() ? head().getAttribute("data-latest-attempt") : ""; }
    function terminal() { return head() && head().getAttribute("data-terminal") === "true"; }
    function start(attempt) {
      following = attempt;
      // the attempt the page was drawn with goes on from what it shows; a later one from its start
      var first = pre.getAttribute("data-attempt") === attempt;
      var offset = first ? pre.getAttribute("data-offset") || "0" : "0";
      var url = "/dashboard/runs/" + encodeURIComponent(runId) + "/log?attempt=" + encodeURIComponent(attempt) + "&offset=" + encodeURIComponent(offset);
      stream(url, function () {
        if (!first) { view.append("\n— attempt " + attempt + " —\n"); }
        pre.classList.remove("log-empty");
        pre.setAttribute("data-attempt", attempt);
        if (state) { state.textContent = "Live: following attempt " + attempt + "."; }
      }, function (text) { view.append(text); }, function () {
        if (state) { state.textContent = "Attempt " + attempt + " ended."; }
      });
    }
    function maybeStart() {
      var latest = latestAttempt();
      if (latest !== "" && latest !== following) { start(latest); }
    }
    document.addEventListener("conveyor:refreshed", function () { if (!terminal() || following === null) { maybeStart(); } });
    maybeStart();
  }

  function followBuild(region) {
    var pre = document.getElementById("log");
    if (!pre || pre.getAttribute("data-follow") !== "true") { return; }
    var view = logView(pre, false); // a build's log has its own times in its step lines
    var state = document.getElementById("log-state");
    var id = region.getAttribute("data-build-id");
    stream("/dashboard/builds/" + encodeURIComponent(id) + "/log", function () {
      view.reset();
      pre.classList.remove("log-empty");
    }, function (text) { view.append(text); }, function () {
      fetchDocument(region.getAttribute("data-fragment")).then(mergeParts).then(function () {
        var status = $("[data-build-status]");
        if (state) { state.textContent = "The build ended: " + (status ? status.textContent : "") + "."; }
      }).catch(function () {});
    });
  }

  // --- small things ---------------------------------------------------------------------------

  function copy(button) {
    var value = button.getAttribute("data-copy");
    var done = function () {
      button.classList.add("copied");
      announce("Copied " + value);
      setTimeout(function () { button.classList.remove("copied"); }, 1200);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(done, function () {});
      return;
    }
    var field = document.createElement("textarea");
    field.value = value;
    field.setAttribute("readonly", "");
    field.className = "visually-hidden";
    document.body.appendChild(field);
    field.select();
    try { document.execCommand("copy"); done(); } catch (error) { /* nothing to copy with */ }
    field.remove();
  }

  // What the script adds to server HTML (also to fragments merged in later).
  function enhance(root) {
    if (!root.querySelectorAll) { return; }
    $$("button.copy[hidden]", root).forEach(function (button) { button.hidden = false; });
    if (root.matches && root.matches("button.copy[hidden]")) { root.hidden = false; }
  }

  // The choice is a cookie, so the server draws the next page in it (no flash of the other one).
  function setTheme(theme) {
    document.documentElement.setAttribute("data-theme", theme);
    document.cookie = "conveyor_theme=" + theme + "; path=/; max-age=31536000; samesite=lax";
    showTheme(theme);
  }

  function showTheme(theme) {
    var toggle = document.getElementById("theme-toggle");
    if (toggle) {
      toggle.setAttribute("aria-pressed", theme === "dark" ? "true" : "false");
      toggle.setAttribute("title", theme === "dark" ? "Light mode" : "Dark mode");
    }
  }

  function currentTheme() {
    var chosen = document.documentElement.getAttribute("data-theme");
    if (chosen) { return chosen; }
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  // j / k: next and previous run (of the list, or of the waterfall); x: select it; /: go to a run.
  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    if (event.key === "/") {
      var go = document.getElementById("go-id");
      if (go) { event.preventDefault(); go.focus(); }
      return;
    }
    var links = $$("#run-rows a.run-link, #wf-rows th a");
    if (!links.length) { return; }
    var at = links.indexOf(document.activeElement);
    var row = document.activeElement && document.activeElement.closest ? document.activeElement.closest("tr") : null;
    if (event.key === "j" || event.key === "k") {
      event.preventDefault();
      var next = event.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
      links[at < 0 ? 0 : next].focus();
    } else if (event.key === "x" && row) {
      var box = row.querySelector('input[type="checkbox"][name="run"]');
      if (box && !box.disabled) { event.preventDefault(); box.checked = !box.checked; box.dispatchEvent(new Event("change", { bubbles: true })); }
    }
  }

  function bulk() {
    var form = document.getElementById("bulk");
    if (!form) { return; }
    var all = document.getElementById("select-all");
    var count = document.getElementById("selected-count");
    function boxes() { return $$('#run-rows input[name="run"]:not(:disabled)'); }
    function update() {
      var chosen = boxes().filter(function (box) { return box.checked; }).length;
      if (count) { count.textContent = chosen ? chosen + " selected" : ""; }
    }
    if (all) {
      all.parentNode.hidden = false;
      all.addEventListener("change", function () {
        boxes().forEach(function (box) { box.checked = all.checked; });
        update();
      });
    }
    document.addEventListener("change", function (event) {
      if (event.target && event.target.name === "run") { update(); }
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button.copy");
    if (button) { copy(button); }
  });

  document.addEventListener("keydown", onKey);

  document.addEventListener("DOMContentLoaded", function () {
    var served = Number(document.body.getAttribute("data-now"));
    if (served) { skew = served - Date.now(); }
    enhance(document);
    waterfall.init();
    tickDurations(document);
    bulk();
    var toggle = document.getElementById("theme-toggle");
    if (toggle) {
      toggle.hidden = false;
      showTheme(currentTheme());
      toggle.addEventListener("click", function () { setTheme(currentTheme() === "dark" ? "light" : "dark"); });
    }
    // a status chip applies at once
    $$("#filters .chips input").forEach(function (chip) {
      chip.addEventListener("change", function () { chip.form.requestSubmit ? chip.form.requestSubmit() : chip.form.submit(); });
    });
    $$("[data-live][data-events]").forEach(listen);
    var build = document.querySelector('[data-live="build"]');
    if (build) { followBuild(build); }
    var log = document.getElementById("log");
    if (log && !build) {
      var view = logView(log, true);
      if (log.getAttribute("data-follow") === "true") { followRunLog(log, view); }
    }
  });
})();
