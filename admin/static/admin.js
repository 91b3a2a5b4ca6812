// Refresh the status section every few seconds; the page works without this.
(function () {
  "use strict";
  var box = document.getElementById("status");
  if (!box || !window.fetch) return;
  var url = box.getAttribute("data-refresh");
  function refresh() {
    if (document.hidden || box.contains(document.activeElement) && document.activeElement.tagName !== "BODY") return;
    fetch(url, { credentials: "same-origin", redirect: "manual" }).then(function (response) {
      if (response.type === "opaqueredirect" || response.status === 401) { window.location = "/signin"; return null; }
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (html !== null) box.innerHTML = html;  // our own server-rendered, escaped fragment
    }).catch(function () {});
  }
  setInterval(refresh, 5000);
})();
