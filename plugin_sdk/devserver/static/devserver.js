// cms-plugin dev: reload the page when a new build is ready; keep each call's dev panel under
// its plugin panel (a form post answers the panel body with the dev panel inside it).
(function () {
  "use strict";
  function moveDevPanels() {
    document.querySelectorAll("[data-panel-body] [data-dev-call]").forEach(function (box) {
      var wrap = box.closest(".dev-panel-wrap");
      var under = wrap && wrap.querySelector("[data-dev-under]");
      if (under) { under.innerHTML = ""; under.appendChild(box); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    moveDevPanels();
    new MutationObserver(moveDevPanels).observe(document.body, { childList: true, subtree: true });
    var url = document.body.getAttribute("data-dev-version-url");
    var seen = document.body.getAttribute("data-dev-version");
    if (!url || !window.fetch) { return; }
    setInterval(function () {
      fetch(url, { headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) { if (body && String(body.version) !== seen) { window.location.reload(); } })
        .catch(function () {});
    }, 500);
  });
})();
