// Logs: followed while they grow, searched, downloaded, each line with its time (dashboard.js).
"use strict";

(function (C) {
  var $ = C.$;
  var $$ = C.$$;
  var now = C.now;
  var fetchDocument = C.fetchDocument;
  var mergeParts = C.mergeParts;

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
        if (!first) { view.append("\n— attempt #" + attempt + " —\n"); }
        pre.classList.remove("log-empty");
        pre.setAttribute("data-attempt", attempt);
        if (state) { state.textContent = "Live: following attempt #" + attempt + "."; }
      }, function (text) { view.append(text); }, function () {
        if (state) { state.textContent = "Attempt #" + attempt + " ended."; }
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

  C.onStart(function () {
    var build = document.querySelector('[data-live="build"]');
    if (build) { followBuild(build); }
    var log = document.getElementById("log");
    if (log && !build) {
      var view = logView(log, true);
      if (log.getAttribute("data-follow") === "true") { followRunLog(log, view); }
    }
  });
})(window.Conveyor);
