/* What every script of the site shares: one element builder (text only, never HTML) and the one
 * URL policy for anything a post or a profile hands us (http and https, nothing else). Loaded
 * before board.js, live.js and wall.js, which take both from window.AfaDom. */
(function () {
  "use strict";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function safeUrl(value) {
    if (!value || typeof value !== "string") return "";
    try {
      var url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : "";
    } catch (err) {
      return "";
    }
  }

  window.AfaDom = { el: el, safeUrl: safeUrl };
})();
