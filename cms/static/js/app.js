// Light progressive enhancement; every page works without it.
(function () {
  "use strict";

  // "/" focuses the search box from anywhere except while typing.
  function isTyping(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  // In an empty search box (e.g. the dashboard's, focused on load) "/" is the hotkey, not text.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var active = document.activeElement;
    if (active && active.type === "search" && active.value === "") { event.preventDefault(); return; }
    if (!isTyping(active)) {
      var box = document.querySelector("[data-hotkey='/']");
      if (box) { event.preventDefault(); box.focus(); box.select(); }
    }
  });

  // Result lists marked data-keynav: ArrowDown/ArrowUp (or j/k) move, Enter opens.
  document.addEventListener("DOMContentLoaded", function () {
    var list = document.querySelector("[data-keynav]");
    if (!list) { return; }
    var rows = Array.prototype.slice.call(list.querySelectorAll("[data-href]"));
    var index = -1;
    function select(i) {
      if (!rows.length) { return; }
      if (index >= 0) { rows[index].classList.remove("is-selected"); }
      index = Math.max(0, Math.min(rows.length - 1, i));
      rows[index].classList.add("is-selected");
      rows[index].scrollIntoView({ block: "nearest" });
    }
    rows.forEach(function (row, i) {
      row.addEventListener("click", function (event) {
        // A link, or a control of a form in the row (the flags list's kill switch), acts itself.
        if (event.target.closest("a, form, button, input, select, textarea, label")) { return; }
        window.location = row.getAttribute("data-href");
      });
      row.style.cursor = "pointer";
    });
    document.addEventListener("keydown", function (event) {
      var typing = isTyping(document.activeElement);
      if (event.key === "ArrowDown" || (!typing && event.key === "j")) {
        event.preventDefault(); if (typing) { document.activeElement.blur(); } select(index + 1);
      } else if (event.key === "ArrowUp" || (!typing && event.key === "k")) {
        event.preventDefault(); select(index - 1);
      } else if (event.key === "Enter" && !typing && index >= 0) {
        window.location = rows[index].getAttribute("data-href");
      }
    });
  });

  // Forms with data-confirm ask before submitting (dangerous admin actions).
  // The form is checked first: a missing reason is said before the dialog, not after it.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form.getAttribute("data-confirm");
    if (!message) { return; }
    form.querySelectorAll("[data-required-when]").forEach(function (el) {
      var rule = el.getAttribute("data-required-when").split("=");
      var chosen = form.querySelector("[name='" + rule[0] + "']:checked");
      el.required = !!chosen && chosen.value === rule[1];
    });
    if (!form.checkValidity()) { event.preventDefault(); form.reportValidity(); return; }
    if (!window.confirm(message)) { event.preventDefault(); }
  });

  // "Add row" buttons clone the last row of a repeating fieldset and renumber its fields.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-add-row]");
    if (!button) { return; }
    event.preventDefault();
    var container = document.getElementById(button.getAttribute("data-add-row"));
    var rows = container.querySelectorAll("[data-row]");
    var last = rows[rows.length - 1];
    var clone = last.cloneNode(true);
    var next = rows.length;
    clone.querySelectorAll("input, select, label").forEach(function (el) {
      ["name", "id", "for"].forEach(function (attr) {
        var value = el.getAttribute(attr);
        if (value) { el.setAttribute(attr, value.replace(/-\d+-/, "-" + next + "-")); }
      });
      if (el.tagName === "INPUT") { el.value = ""; }
      if (el.tagName === "SELECT") { el.selectedIndex = 0; }
    });
    clone.querySelectorAll("small.error").forEach(function (el) { el.remove(); });
    container.appendChild(clone);
  });
  // Terminal output reads like a terminal: the newest lines are in view.
  function scrollTerminals(root) {
    root.querySelectorAll(".pb-terminal").forEach(function (pre) { pre.scrollTop = pre.scrollHeight; });
  }
  document.addEventListener("DOMContentLoaded", function () { scrollTerminals(document); });

  // Show a panel's new HTML in its body and keep its header's state in step.
  function fillPanel(body, html) {
    body.innerHTML = html;
    var panel = body.closest(".plugin-panel");
    var failed = body.querySelector(".plugin-fallback") !== null;
    if (panel) { panel.classList.toggle("is-failing", failed); panel.removeAttribute("aria-busy"); }
    var dot = panel && panel.querySelector(".plugin-dot");
    if (dot) { dot.className = "plugin-dot " + (failed ? "bad" : "ok"); }
    scrollTerminals(body);
  }

  // A panel that needed more than the page's budget arrives afterwards: the page shows its
  // placeholder, and its content is fetched here (with the action's whole deadline).
  function loadDeferred(root) {
    if (!window.fetch) { return; }
    root.querySelectorAll("[data-panel-src]").forEach(function (holder) {
      var body = holder.closest("[data-panel-body]");
      if (!body) { return; }
      fetch(holder.getAttribute("data-panel-src"), { credentials: "same-origin",
                                                      headers: { "X-Partial": "1", "Accept": "text/html" } })
        .then(function (response) { return response.text(); })
        .then(function (html) { fillPanel(body, html); })
        .catch(function () {
          holder.textContent = holder.getAttribute("data-failed-text") || "Could not load this panel.";
        });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { loadDeferred(document); });

  // One state everywhere: after an action in one panel of a plugin, its other panels on the
  // page (the softphone's top-bar call and its client-page panel) are fetched again.
  function refreshSiblings(panel) {
    if (!panel || !window.fetch) { return; }
    var id = panel.getAttribute("data-plugin");
    document.querySelectorAll(".plugin-panel[data-panel-url]").forEach(function (other) {
      if (other === panel || other.getAttribute("data-plugin") !== id) { return; }
      var body = other.querySelector("[data-panel-body]");
      fetch(other.getAttribute("data-panel-url"), { credentials: "same-origin",
                                                   headers: { "X-Partial": "1", "Accept": "text/html" } })
        .then(function (response) { return response.text(); })
        .then(function (html) { if (body) { fillPanel(body, html); other.setAttribute("data-refreshed", "1"); } })
        .catch(function () {});
    });
  }

  // Plugin forms update their own panel in place (the server answers the panel's HTML, made
  // from the plugin's UI blocks and escaped by the server). Without script they post normally.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-plugin-form") || !window.fetch) { return; }
    var body = form.closest("[data-panel-body]");
    if (!body) { return; }
    event.preventDefault();
    var data = new FormData(form);
    if (event.submitter && event.submitter.name) { data.append(event.submitter.name, event.submitter.value); }
    form.setAttribute("aria-busy", "true");
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin",
                         headers: { "X-Partial": "1", "Accept": "text/html" } })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        fillPanel(body, html);
        var focus = body.querySelector("input:not([type=hidden]), textarea, select");
        if (focus) { focus.focus(); }
        refreshSiblings(body.closest(".plugin-panel"));
      })
      .catch(function () { form.removeAttribute("aria-busy"); form.submit(); });
  });
})();

// Live status under the CSP: an element with data-poll="URL" shows the "text" of the JSON at
// URL, fetched every second until it answers "done" (at most a minute): the flag pages'
// "applied on N of M workers". An element with data-refresh="ms" is replaced every ms by the
// same element of a fresh copy of the page (the health page), without a full reload, and not
// while the tab is hidden.
(function () {
  function poll(el, left) {
    if (el.getAttribute("data-poll-done") === "true" || left <= 0) return;
    setTimeout(function () {
      fetch(el.getAttribute("data-poll"), {headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body) return;
          el.textContent = body.text;
          el.setAttribute("data-poll-done", body.done ? "true" : "false");
          poll(el, left - 1);
        })
        .catch(function () { poll(el, left - 1); });
    }, 1000);
  }
  function refresh(el) {
    var every = parseInt(el.getAttribute("data-refresh"), 10) || 5000;
    setInterval(function () {
      if (document.hidden) return;
      fetch(window.location.href, {credentials: "same-origin", headers: {"X-Refresh": "1"}})
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(el.id);
          if (fresh) { el.innerHTML = fresh.innerHTML; el.setAttribute("data-refreshed", String(Date.now())); }
        })
        .catch(function () {});
    }, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-poll]").forEach(function (el) { poll(el, 60); });
    document.querySelectorAll("[data-refresh][id]").forEach(refresh);
  });
})();

// The top bar's menu button (narrow screens): opens and closes the menu, says which it is.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-menu-toggle]");
  if (!button) { return; }
  var bar = button.closest(".topbar");
  var open = !bar.classList.contains("menu-open");
  bar.classList.toggle("menu-open", open);
  button.setAttribute("aria-expanded", open ? "true" : "false");
});

// A card whose content scrolls sideways (a wide table on a phone) can be scrolled from the
// keyboard: it takes focus when, and only when, it overflows.
(function () {
  function mark() {
    document.querySelectorAll(".card, .table-scroll").forEach(function (el) {
      if (el.scrollWidth > el.clientWidth + 1) {
        if (!el.hasAttribute("tabindex")) { el.setAttribute("tabindex", "0"); el.setAttribute("data-scrolls", ""); }
      } else if (el.hasAttribute("data-scrolls")) {
        el.removeAttribute("tabindex"); el.removeAttribute("data-scrolls");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", mark);
  window.addEventListener("resize", mark);
  // Timer blocks (a call in progress) tick every second from the seconds the server rendered,
  // so the clock needs no call to the plugin and does not depend on the browser's clock.
  function clockText(s) {
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
    function two(v) { return (v < 10 ? "0" : "") + v; }
    return h ? h + ":" + two(m) + ":" + two(sec) : two(m) + ":" + two(sec);
  }
  // "Undo send" bars count down their window; then the mail has left and the button goes.
  // Undo is posted in place (the panel stays); without script the form posts and comes back.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("[data-undo-mail]");
    if (!form) { return; }
    event.preventDefault();
    form.setAttribute("aria-busy", "true");
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
                         headers: { "X-Partial": "1" } })
      .then(function (r) { return r.text().then(function (t) { return { status: r.status, text: t }; }); })
      .then(function (r) {
        form.removeAttribute("aria-busy");
        var said = new DOMParser().parseFromString(r.text, "text/html").body.textContent.trim();
        if (r.status !== 200 && r.status !== 409) {  // an expired session, say: the form stays
          var message = "Could not undo (" + r.status + "): try again.";
          form.querySelector("[role=status]").textContent = message;
          form.querySelector("[aria-hidden=true]").textContent = message;
          return;
        }
        var bar = document.createElement("p");
        bar.className = "undo-bar"; bar.setAttribute("role", "status");
        bar.textContent = r.status === 200 ? said : "Too late to undo: the mail has already gone to the relay.";
        form.replaceWith(bar);
      })
      .catch(function () { form.removeAttribute("aria-busy"); });
  });
  window.setInterval(function () {
    var now = Date.now();
    document.querySelectorAll("[data-undo-mail]").forEach(function (form) {
      if (!form.dataset.undoSeen) { form.dataset.undoSeen = String(now); }
      var left = parseInt(form.dataset.seconds, 10) - Math.floor((now - parseInt(form.dataset.undoSeen, 10)) / 1000);
      var count = form.querySelector("[data-countdown]");
      if (left > 0) { if (count) { count.textContent = String(left); } return; }
      var done = document.createElement("p");
      done.className = "undo-bar muted"; done.setAttribute("role", "status");
      done.textContent = form.dataset.after;
      form.replaceWith(done);
    });
    document.querySelectorAll("time[data-timer]").forEach(function (el) {
      if (!el.dataset.timerSeen) { el.dataset.timerSeen = String(now); }
      var shown = parseInt(el.dataset.timer, 10) + Math.floor((now - parseInt(el.dataset.timerSeen, 10)) / 1000);
      el.textContent = clockText(Math.max(0, shown));
    });
  }, 1000);
  // The client page's dock (wide panels: the terminal). Alt+T or its button opens and closes
  // it; closed, its panels stay in the page as they were, and the choice is kept across pages.
  document.addEventListener("DOMContentLoaded", function () {
    var dock = document.querySelector("[data-dock]");
    if (!dock) { return; }
    var toggle = dock.querySelector("[data-dock-toggle]");
    var body = document.getElementById(toggle.getAttribute("aria-controls"));
    function set(open, focus) {
      var inside = body.contains(document.activeElement) || document.activeElement === toggle;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      body.hidden = !open;
      try { window.localStorage.setItem("cms.dock", open ? "open" : "closed"); } catch (e) { /* private mode */ }
      if (!focus) { return; }
      var field = open && body.querySelector("input:not([type=hidden]), textarea, select");
      if (field) { field.focus(); } else if (inside) { toggle.focus(); }  // focus never lost in a closed dock
    }
    var stored = null;
    try { stored = window.localStorage.getItem("cms.dock"); } catch (e) { /* private mode */ }
    set(stored !== "closed", false);
    toggle.addEventListener("click", function () { set(body.hidden, true); });
    document.addEventListener("keydown", function (event) {
      if (!event.altKey || event.ctrlKey || event.metaKey || event.code !== "KeyT") { return; }
      if (event.repeat || event.isComposing) { return; }  // a held key toggles once
      // Typing elsewhere (the search box, a note): Alt+T is that field's (Option+T on a Mac).
      var active = document.activeElement;
      var typing = active && (active.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
      if (typing && !body.contains(active)) { return; }
      event.preventDefault();
      set(body.hidden, true);
    });
  });
})();
