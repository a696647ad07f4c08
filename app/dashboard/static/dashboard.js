// The dashboard's script, in three files loaded in order (no build step): this one (helpers the
// others share, small enhancements, start-up), live.js (the event stream, the waterfall, rows
// patched in place) and logs.js (logs followed, searched, stamped). Every page reads fine
// without any of them. With them:
// - one event stream per page (Server-Sent Events) patches what changed in place: rows get their
//   new status and times from the event itself; rows the page does not have yet, and the parts
//   of a run page, come as small HTML fragments merged into the page node by node (focus,
//   scroll, ticked checkboxes and open details are kept);
// - durations of unfinished things count up every second, and the waterfall stretches with them;
// - logs are followed, searched and downloaded; ids copied; a theme chosen; keys do common things.
"use strict";

window.Conveyor = (function () {
  var LABELS = { pending: "Pending", running: "Running", succeeded: "Succeeded", failed: "Failed", canceled: "Canceled", paused: "Paused" };
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
    $$(".duration[data-since]:not([data-until])", root).forEach(function (el) {
      var since = Number(el.getAttribute("data-since"));
      if (since) { el.textContent = secondsText((now() - since) / 1000); }
    });
  }

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

  var starters = [];
  var tickers = [tickDurations.bind(null, document)];

  setInterval(function () { tickers.forEach(function (tick) { tick(); }); }, 1000);

  document.addEventListener("DOMContentLoaded", function () {
    var served = Number(document.body.getAttribute("data-now"));
    if (served) { skew = served - Date.now(); }
    enhance(document);
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
    starters.forEach(function (start) { start(); });
  });

  return {
    LABELS: LABELS,
    now: now,
    $: $,
    $$: $$,
    announce: announce,
    secondsText: secondsText,
    morph: morph,
    enhance: enhance,
    fetchDocument: fetchDocument,
    mergeParts: mergeParts,
    batcher: batcher,
    // what live.js and logs.js do once the page is there, and every second
    onStart: function (start) { starters.push(start); },
    onTick: function (tick) { tickers.push(tick); }
  };
})();
