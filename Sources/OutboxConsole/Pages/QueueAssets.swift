/// The queue page's own static files: its stylesheet and the small script that keeps it live.
enum QueueAssets {
    static let stylesheet = ConsoleAsset(name: "queue.css", contentType: "text/css; charset=utf-8", body: """
        .queue-live-bar { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; }
        .queue-alerts { list-style: none; padding: 0; display: grid; gap: .4rem; }
        .queue-badges { list-style: none; display: flex; flex-wrap: wrap; gap: .5rem; padding: 0; }
        .queue-resume { display: flex; flex-wrap: wrap; gap: .4rem; }
        .queue-resume input[type=text] { min-width: 8rem; }
        label.inline { display: inline; font-weight: 400; }
        """)

    /// Fetches `/queue/live` every `data-refresh-seconds` and swaps it into `#queue-live`. It waits
    /// while focus is inside that region (a resume form being filled in) or the tab is hidden, and
    /// the Pause button stops it. A response that is not the fragment (the session ended and the
    /// request was sent to sign-in) reloads the page instead. No inline code: the CSP allows it.
    static let script = ConsoleAsset(name: "queue-live.js", contentType: "text/javascript; charset=utf-8", body: """
        (function () {
          "use strict";
          var region = document.getElementById("queue-live");
          var toggle = document.getElementById("queue-live-toggle");
          var status = document.getElementById("queue-live-status");
          if (!region || !toggle || !status || !window.fetch) { return; }
          var every = (Number(region.getAttribute("data-refresh-seconds")) || 5) * 1000;
          var stopped = false;
          toggle.hidden = false;
          toggle.addEventListener("click", function () {
            stopped = !stopped;
            toggle.setAttribute("aria-pressed", stopped ? "true" : "false");
            toggle.textContent = stopped ? "Resume live updates" : "Pause live updates";
            status.textContent = stopped ? "Live updates paused." : "Live updates on.";
            if (!stopped) { update(); }
          });
          function busy() {
            var active = document.activeElement;
            return active && active !== document.body && region.contains(active);
          }
          function update() {
            if (stopped || document.hidden || busy()) { return; }
            fetch(region.getAttribute("data-src"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
              .then(function (response) {
                if (response.headers.get("X-Console-Fragment") !== "queue") { window.location.reload(); return null; }
                if (!response.ok) { throw new Error("HTTP " + response.status); }
                return response.text();
              })
              .then(function (html) {
                if (html === null || stopped || busy()) { return; }
                region.innerHTML = html;
                region.setAttribute("data-updated", String(Date.now()));
                status.textContent = "Live: updated " + new Date().toISOString().slice(11, 19) + " UTC.";
              })
              .catch(function () { status.textContent = "Live update failed; trying again."; });
          }
          status.textContent = "Live: updates every " + every / 1000 + " s.";
          window.setInterval(update, every);
        })();
        """)
}
