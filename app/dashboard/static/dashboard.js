// Progressive enhancement: every page reads fine without this file. With it, live regions
// refresh on run changes (Server-Sent Events), logs tail while an attempt runs, and forms
// marked data-confirm ask first.
"use strict";

(function () {
  function refreshRegions(region) {
    return fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("refresh answered " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live]").forEach(function (old) {
          var replacement = fresh.getElementById(old.id);
          if (replacement) { old.replaceWith(document.importNode(replacement, true)); }
        });
        document.dispatchEvent(new CustomEvent("conveyor:refreshed"));
      });
  }

  function watch(region) {
    var url = region.getAttribute("data-events");
    if (!url || !window.EventSource) { return; }
    var timer = null;
    var busy = false;
    var again = false;
    function schedule() {
      if (timer) { return; }
      timer = setTimeout(function run() {
        timer = null;
        if (busy) { again = true; return; }
        busy = true;
        refreshRegions().catch(function () {}).then(function () {
          busy = false;
          if (again) { again = false; schedule(); }
        });
      }, 250);
    }
    var source = new EventSource(url);
    // Changes between rendering the page and subscribing would be missed otherwise, and so
    // would those during a reconnect: refresh once each time the stream (re)opens.
    var opened = false;
    source.addEventListener("open", function () {
      if (opened || document.getElementById(region.id).getAttribute("data-terminal") !== "true") { schedule(); }
      opened = true;
    });
    source.addEventListener("run", function (event) {
      var change = JSON.parse(event.data);
      var current = document.getElementById(region.id);
      if (!current) { return; }
      var mode = current.getAttribute("data-refresh");
      var shown = current.querySelector('[data-run-id="' + change.id + '"]') || current.getAttribute("data-run-id") === change.id;
      if (mode === "any" || shown) { schedule(); }
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function followLog(pre) {
    var runId = pre.getAttribute("data-run-id");
    var following = null;
    var state = document.getElementById("log-state");
    function latestAttempt() {
      var live = document.getElementById("run-live");
      return live ? live.getAttribute("data-latest-attempt") : "";
    }
    function terminal() {
      var live = document.getElementById("run-live");
      return live && live.getAttribute("data-terminal") === "true";
    }
    function start(attempt) {
      following = attempt;
      var first = pre.getAttribute("data-attempt") === attempt;
      var url = "/dashboard/runs/" + encodeURIComponent(runId) + "/log?attempt=" + encodeURIComponent(attempt);
      fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (!response.ok || !response.body) { return; }
        if (first) { pre.textContent = ""; } else { pre.textContent += "\n— attempt " + attempt + " —\n"; }
        pre.setAttribute("data-attempt", attempt);
        if (state) { state.textContent = "Live: following attempt " + attempt + "."; }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) {
              if (state) { state.textContent = "Attempt " + attempt + " ended."; }
              return;
            }
            var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
            pre.textContent += decoder.decode(chunk.value, { stream: true });
            if (atBottom) { pre.scrollTop = pre.scrollHeight; }
            return pump();
          });
        }
        return pump();
      }).catch(function () {});
    }
    function maybeStart() {
      var latest = latestAttempt();
      if (latest !== "" && latest !== following) { start(latest); }
    }
    document.addEventListener("conveyor:refreshed", function () { if (!terminal() || following === null) { maybeStart(); } });
    maybeStart();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live][data-events]").forEach(watch);
    var log = document.getElementById("log");
    if (log && log.getAttribute("data-follow") === "true") { followLog(log); }
  });
})();
