/* Switchboard chat widget loader: a launcher button and a panel (an iframe
   of /embed on the Switchboard server) added to the host page. The launcher
   lives in a shadow root and is styled inline, so the host's CSS does not
   reach it; the chat runs in the iframe, so it cannot touch the host page.
   Embed with <script src="https://support.example/widget.js" async></script>
   and optional data-position="left|right", data-accent="#rrggbb",
   data-open="true", data-lang="fr" (the language of the chat's texts). */
(function () {
  "use strict";
  var CONFIG = /*CONFIG*/{};
  if (window.__switchboardWidget) return;
  var script = document.currentScript;
  if (!script) {
    var all = document.querySelectorAll("script[src]");
    for (var i = all.length - 1; i >= 0 && !script; i--) if (/\/widget\.js(\?|$)/.test(all[i].src)) script = all[i];
  }
  if (!script) return;
  window.__switchboardWidget = true;
  var data = script.dataset || {};
  var origin = new URL(script.src, location.href).origin;
  var left = (data.position || CONFIG.position) === "left";
  var accent = /^#[0-9a-fA-F]{3,6}$/.test(data.accent || "") ? data.accent : CONFIG.accent;
  // Black or white on the accent, whichever contrasts more (WCAG relative
  // luminance; the same rule as the server's web::embed::on_accent).
  function onAccent(hex) {
    var h = hex.slice(1);
    if (h.length === 3) h = h[0] + h[0] + h[1] + h[1] + h[2] + h[2];
    if (h.length !== 6) return "#fff";
    var l = [0, 2, 4].map(function (i) {
      var c = parseInt(h.slice(i, i + 2), 16) / 255;
      return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    var y = 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
    return 1.05 / (y + 0.05) >= (y + 0.05) / 0.05 ? "#fff" : "#000";
  }

  function css(el, styles) { for (var k in styles) el.style.setProperty(k, styles[k]); return el; }

  var host = document.createElement("div");
  host.id = "switchboard-widget";
  css(host, { all: "initial", position: "fixed", bottom: "0", "z-index": "2147483000" });
  host.style.setProperty(left ? "left" : "right", "0");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

  var button = document.createElement("button");
  button.type = "button";
  button.textContent = CONFIG.launcher;
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "switchboard-panel");
  css(button, {
    all: "initial", position: "fixed", bottom: "20px", padding: "12px 18px", "border-radius": "24px",
    background: accent, color: onAccent(accent), font: "600 15px/1.2 system-ui, sans-serif", cursor: "pointer",
    "box-shadow": "0 4px 14px rgba(0,0,0,.25)"
  });
  button.style.setProperty(left ? "left" : "right", "20px");

  var panel = null;
  function place() {
    if (!panel) return;
    var small = window.matchMedia("(max-width: 480px)").matches;
    css(panel, small
      ? { left: "0", right: "0", top: "0", bottom: "0", width: "100vw", height: "100%", "border-radius": "0" }
      : { top: "auto", bottom: "84px", width: "380px", height: "min(600px, calc(100vh - 110px))", "border-radius": "12px" });
    if (!small) { panel.style.setProperty(left ? "left" : "right", "20px"); panel.style.setProperty(left ? "right" : "left", "auto"); }
  }
  function open(on) {
    if (on && !panel) {
      panel = document.createElement("iframe");
      panel.id = "switchboard-panel";
      panel.title = CONFIG.title;
      panel.src = origin + "/embed" + (data.lang ? "?lang=" + encodeURIComponent(data.lang) : "");
      // Focus moves into the chat once it has loaded (keyboard users).
      panel.addEventListener("load", function () { if (button.getAttribute("aria-expanded") === "true") panel.focus(); });
      css(panel, { all: "initial", position: "fixed", border: "0", background: "#fff", "box-shadow": "0 8px 30px rgba(0,0,0,.3)" });
      place();
      root.append(panel);
    }
    if (panel) panel.style.setProperty("display", on ? "block" : "none");
    button.setAttribute("aria-expanded", on ? "true" : "false");
    var small = window.matchMedia("(max-width: 480px)").matches;
    button.style.setProperty("display", on && small ? "none" : "block");
    if (on && panel) panel.focus();
  }
  button.addEventListener("click", function () { open(button.getAttribute("aria-expanded") !== "true"); });
  window.addEventListener("resize", place);
  window.addEventListener("message", function (e) {
    if (panel && e.source === panel.contentWindow && e.origin === origin && e.data && e.data.type === "switchboard:close") {
      open(false);
      button.focus();
    }
  });
  root.append(button);
  (document.body || document.documentElement).append(host);
  if (data.open === "true") open(true);
})();
