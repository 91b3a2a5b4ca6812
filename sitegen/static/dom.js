/* What every script of the site shares: one element builder (text only, never HTML), the one
 * URL policy for anything a post or a profile hands us (http and https, nothing else), and the
 * one way a post's HTML reaches the page. Loaded before board.js, live.js and wall.js, which
 * take them from window.AfaDom. */
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

  var REL = "nofollow ugc noopener";
  var ALLOWED = { P: 1, BR: 1, A: 1, SPAN: 1, STRONG: 1, EM: 1, B: 1, I: 1, U: 1, S: 1, DEL: 1,
                  CODE: 1, PRE: 1, BLOCKQUOTE: 1, UL: 1, OL: 1, LI: 1 };
  var DROPPED = { SCRIPT: 1, STYLE: 1, IFRAME: 1, OBJECT: 1, EMBED: 1, NOSCRIPT: 1, TEMPLATE: 1,
                  SVG: 1, MATH: 1, TEXTAREA: 1, SELECT: 1, TITLE: 1, FRAME: 1, FRAMESET: 1 };

  /* A post's HTML (sanitised by the collector, but a second line costs little) into `to`: parsed
   * by DOMParser, which runs nothing; allowed elements rebuilt without any attribute but a link's
   * href (http(s) only, and only when `links`; otherwise links are unwrapped, as on the wall,
   * where nothing is clickable); unknown elements unwrapped; dangerous ones dropped with their
   * content; text copied as text. So no on* handler, style or javascript: URL survives. */
  function copyPostHtml(html, to, links) {
    copyAllowed(new DOMParser().parseFromString(String(html || ""), "text/html").body, to, links);
  }

  function copyAllowed(from, to, links) {
    for (var node = from.firstChild; node; node = node.nextSibling) {
      if (node.nodeType === 3) {
        to.appendChild(document.createTextNode(node.nodeValue));
      } else if (node.nodeType === 1) {
        var tag = node.tagName.toUpperCase();
        if (DROPPED[tag]) continue;
        if (!ALLOWED[tag] || (tag === "A" && !links)) { copyAllowed(node, to, links); continue; }
        var copy = document.createElement(tag.toLowerCase());
        if (tag === "A") {
          var href = safeUrl(node.getAttribute("href"));
          if (href) { copy.href = href; copy.rel = REL; }
        }
        copyAllowed(node, copy, links);
        to.appendChild(copy);
      }
    }
  }

  window.AfaDom = { el: el, safeUrl: safeUrl, copyPostHtml: copyPostHtml, REL: REL };
})();
