/* A Feed Apart: the live page's EventSource client.
 *
 * The page already lists the newest posts (it works without JavaScript). This script reads
 *   <main data-stream="…/live/EVENT/stream" data-after="SEQ" data-tz="Area/City" data-max="N">
 * opens EventSource(stream + "?after=" + after) and handles the SSE events
 *   post    {"seq", "kind", "uri", "item": {uri, url, created_at, author{name,handle,url,avatar},
 *            html, spoiler, sensitive, media[{kind,url,preview_url,alt}], edited_at, ...}}
 *   edit    same shape; replaces the post with that uri in place
 *   retract {"seq", "kind": "retract", "uri"}; removes the post with that uri
 *   pin     {"seq", "kind": "pin", "uri", "item"}: shown in #live-pinned until unpinned (a
 *           pinned post that is retracted leaves, and comes back pinned if shown again)
 *   unpin   {"seq", "kind": "unpin", "uri"}
 *   boost   {"seq", "kind": "boost", "uri", "by"}: for the meet-ups board (board.js), which
 *           gets every change
 *   reset   this page is older than the live tail; reload it once (a rebuilt page is newer),
 *           and if the reloaded page is no newer (a stale cached copy, a rebuild not done yet),
 *           go on from the oldest change the tail still holds (the reset's id) instead
 * Posts are deduplicated by seq and by uri and kept newest first. Nothing is inserted as raw
 * HTML: post HTML (already sanitised by the collector) is parsed into an inert document and
 * rebuilt element by element through an allowlist; every other text goes in with textContent.
 *
 * Around the list: #live-status shows the connection state; #live-announce tells screen
 * readers politely how many posts arrived (at most every few seconds); #live-new is the
 * "N new posts" button shown while the reader has scrolled away from the top; #live-now lists
 * every talk with data-start/data-end and shows only those happening now.
 */
(function () {
  "use strict";
  var el = window.AfaDom.el, safeUrl = window.AfaDom.safeUrl;  // static/dom.js
  var copyPostHtml = window.AfaDom.copyPostHtml;

  var main = document.querySelector("main[data-stream]");
  var list = document.getElementById("live-posts");
  var status = document.getElementById("live-status");
  showTalksNow(document.getElementById("live-now"));
  if (!main || !list || !status || !window.EventSource || !window.DOMParser) return;
  var announcer = document.getElementById("live-announce");
  var newButton = document.getElementById("live-new");
  var pinnedList = document.getElementById("live-pinned");
  var pinnedUris = {};
  var board = window.AfaBoard && window.AfaBoard.create(document.getElementById("board-list"), {
    tag: main.getAttribute("data-meetup-tag"), tz: main.getAttribute("data-tz")
  });

  var stream = main.getAttribute("data-stream");
  var after = parseInt(main.getAttribute("data-after"), 10) || 0;
  var pageAfter = after;  // the static page's own cursor, to tell a rebuilt page from the same one
  var maxPosts = parseInt(main.getAttribute("data-max"), 10) || 200;
  var timeFormat = new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    timeZone: main.getAttribute("data-tz") || undefined
  });
  var REL = window.AfaDom.REL;
  var source = null;
  var retryDelay = 1000;
  var liveText = "Live: new posts appear at the top.";
  var state = "";

  // ---- connection state, announced politely -------------------------------------------------

  function setState(name, text) {
    if (name === state) return;
    state = name;
    status.setAttribute("data-state", name);
    status.textContent = text;
  }

  function streamUrl() {
    return stream + (stream.indexOf("?") < 0 ? "?" : "&") + "after=" + after;
  }

  function connect() {
    setState("connecting", "Connecting to the live stream…");
    source = new EventSource(streamUrl());
    source.onopen = function () {
      retryDelay = 1000;
      setState("live", liveText);
    };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an HTTP error, say): reconnect ourselves from the last seq seen.
        source.close();
        setState("offline", "Connection lost. Retrying in " + Math.round(retryDelay / 1000) + " s…");
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      } else {
        setState("reconnecting", "Connection lost. Reconnecting…");
      }
    };
    source.addEventListener("post", function (e) { handle(e, upsert); });
    source.addEventListener("edit", function (e) { handle(e, upsert); });
    source.addEventListener("retract", function (e) { handle(e, retract); });
    source.addEventListener("pin", function (e) { handle(e, pin); });
    source.addEventListener("unpin", function (e) { handle(e, unpin); });
    source.addEventListener("boost", function (e) { handle(e, function () {}); });
    source.addEventListener("reset", reset);
  }

  function reset(message) {
    // Reloading a page that comes back just as old would bring the same reset again, forever:
    // remember which page cursor was reloaded (per tab), and reload for each cursor once.
    var key = "afa-live-reset:" + window.location.pathname;
    var reloaded = null;
    try {
      reloaded = window.sessionStorage.getItem(key);
      if (reloaded !== String(pageAfter)) {
        window.sessionStorage.setItem(key, String(pageAfter));
        window.location.reload();
        return;
      }
    } catch (err) { /* no storage (a private mode, say): never reload, go on below */ }
    var oldest = parseInt(message.lastEventId, 10);
    if (oldest > after) after = oldest;
    liveText = "Live: new posts appear at the top. Some earlier ones are not shown here " +
      "yet: the archive will have them.";
    source.close();
    connect();
  }

  function handle(message, apply) {
    var change;
    try { change = JSON.parse(message.data); } catch (err) { return; }
    var seq = parseInt(change && change.seq, 10);
    // The stream comes in seq order and resumes after the last seq seen; the page's own posts
    // are at or below its cursor. So anything at or below `after` is a replay: one number
    // dedupes, however long the page stays open.
    if (!seq || seq <= after || !change.uri) return;
    after = seq;
    apply(change, seq);
    if (board) board.change(message.type, change);
  }

  // ---- the list ---------------------------------------------------------------------------

  function findPost(uri) {
    var posts = list.querySelectorAll("article.post[data-uri]");
    for (var i = 0; i < posts.length; i++) {
      if (posts[i].getAttribute("data-uri") === uri) return posts[i];
    }
    return null;
  }

  function upsert(change, seq) {
    if (!change.item) return;
    if (pinnedUris[change.uri]) { pin(change, seq); return; }
    var existing = findPost(change.uri);  // dedupe by uri: the newer change wins
    if (existing) {
      if ((parseInt(existing.getAttribute("data-seq"), 10) || 0) >= seq) return;
      existing.parentNode.replaceChild(renderPost(change.item, seq), existing);
      return;
    }
    var li = document.createElement("li");
    li.appendChild(renderPost(change.item, seq));
    insertByTime(li, change.item.created_at || "");
    while (list.children.length > maxPosts) list.removeChild(list.lastElementChild);
    arrived();
  }

  // ---- telling the reader: "N new posts" when scrolled away, polite announcements ----------

  var unseen = 0, unannounced = 0, announceTimer = 0;

  function awayFromTop() {
    return list.getBoundingClientRect().top < -2;  // the newest post's top is out of view
  }

  function arrived() {
    unannounced += 1;
    if (!announceTimer) announceTimer = setTimeout(announce, 2000);
    if (!newButton || !awayFromTop()) return;
    unseen += 1;
    newButton.textContent = unseen === 1 ? "1 new post" : unseen + " new posts";
    newButton.hidden = false;
  }

  function announce() {
    announceTimer = 0;
    if (announcer) announcer.textContent = unannounced === 1 ? "1 new post" : unannounced + " new posts";
    unannounced = 0;
  }

  function seenAll() {
    unseen = 0;
    if (newButton) newButton.hidden = true;
  }

  if (newButton) {
    newButton.addEventListener("click", function () {
      var margin = 3 * newButton.offsetHeight;
      seenAll();
      window.scrollBy(0, list.getBoundingClientRect().top - margin);
      var first = list.querySelector("article.post a, article.post");
      if (first && first.focus) first.focus({ preventScroll: true });
    });
    window.addEventListener("scroll", function () { if (unseen && !awayFromTop()) seenAll(); },
                            { passive: true });
  }

  function insertByTime(li, createdAt) {
    var items = list.children;
    for (var i = 0; i < items.length; i++) {
      var time = items[i].querySelector(".post-head time");
      if (!time || time.getAttribute("datetime") < createdAt) {
        list.insertBefore(li, items[i]);
        return;
      }
    }
    list.appendChild(li);
  }

  function retract(change) {
    var existing = findPost(change.uri);
    if (existing && existing.parentNode) {
      var li = existing.parentNode;
      li.parentNode.removeChild(li);
    }
    var shown = findPinned(change.uri);  // still pinned: a post change brings it back
    if (shown) shown.parentNode.parentNode.removeChild(shown.parentNode);
    showPinned();
  }

  // ---- pinned posts, on top until unpinned ----------------------------------------------------

  function findPinned(uri) {
    var posts = pinnedList ? pinnedList.querySelectorAll("article.post[data-uri]") : [];
    for (var i = 0; i < posts.length; i++) {
      if (posts[i].getAttribute("data-uri") === uri) return posts[i];
    }
    return null;
  }

  function showPinned() {
    if (pinnedList) pinnedList.parentNode.hidden = !pinnedList.children.length;
  }

  function pin(change, seq) {
    if (!pinnedList || !change.item) return;
    pinnedUris[change.uri] = true;
    var node = renderPost(change.item, seq), old = findPinned(change.uri);
    if (old) {
      old.parentNode.replaceChild(node, old);
    } else {
      var listed = findPost(change.uri);  // not twice on the page
      if (listed) listed.parentNode.parentNode.removeChild(listed.parentNode);
      var li = document.createElement("li");
      li.appendChild(node);
      pinnedList.insertBefore(li, pinnedList.firstChild);
    }
    showPinned();
  }

  function unpin(change) {
    delete pinnedUris[change.uri];
    var old = findPinned(change.uri);
    if (old) old.parentNode.parentNode.removeChild(old.parentNode);
    showPinned();
  }

  // ---- one post, built with DOM APIs (mirrors templates/_post.html) --------------------------



  function link(href, className, text) {
    var a = el("a", className, text);
    a.href = href;
    a.rel = REL;
    return a;
  }

  function timeEl(iso) {
    var t = el("time");
    t.setAttribute("datetime", iso || "");
    var date = new Date(iso);
    t.textContent = isNaN(date) ? "" : timeFormat.format(date);
    return t;
  }

  function renderPost(item, seq) {
    var author = item.author || {};
    var article = el("article", "post");
    article.setAttribute("data-seq", String(seq));
    article.setAttribute("data-uri", String(item.uri || ""));

    var head = el("header", "post-head");
    var avatar = safeUrl(author.avatar);
    if (avatar) {
      var img = el("img", "avatar");
      img.src = avatar; img.alt = ""; img.loading = "lazy"; img.width = 40; img.height = 40;
      head.appendChild(img);
    }
    var who = el("span", "who");
    var name = author.name || author.handle || "";
    var profile = safeUrl(author.url);
    who.appendChild(profile ? link(profile, "name", name) : el("span", "name", name));
    if (author.handle) { who.appendChild(document.createTextNode(" ")); who.appendChild(el("span", "handle", author.handle)); }
    head.appendChild(who);
    head.appendChild(timeEl(item.created_at));
    article.appendChild(head);

    if (item.reply_to || item.quote_of) {
      var context = el("p", "context");
      if (item.reply_to) appendContext(context, "Reply to ", item.reply_to);
      if (item.quote_of) appendContext(context, " Quoting ", item.quote_of);
      article.appendChild(context);
    }
    if (item.spoiler) {
      var details = el("details", "cw");
      details.appendChild(el("summary", "", item.spoiler));
      appendBody(details, item);
      article.appendChild(details);
    } else {
      appendBody(article, item);
    }

    var foot = el("footer", "post-foot");
    foot.appendChild(el("span", "source", item.source || ""));
    if (item.edited_at) {
      var edited = el("span", "edited", "edited ");
      edited.appendChild(timeEl(item.edited_at));
      foot.appendChild(document.createTextNode(" "));
      foot.appendChild(edited);
    }
    var original = safeUrl(item.url);
    if (original) { foot.appendChild(document.createTextNode(" ")); foot.appendChild(link(original, "original", "View original")); }
    article.appendChild(foot);
    return article;
  }

  function appendContext(parent, label, target) {
    parent.appendChild(document.createTextNode(label));
    var href = safeUrl(target);
    parent.appendChild(href ? link(href, "", "a post") : document.createTextNode("a post"));
  }

  function appendBody(parent, item) {
    var content = el("div", "content");
    if (item.lang) content.lang = item.lang;
    copyPostHtml(item.html, content, true);
    parent.appendChild(content);
    var media = item.media || [];
    if (!media.length) return;
    var box = el("div", "media");
    var author = item.author || {};
    var by = author.name || author.handle || "";
    media.forEach(function (m) { appendMedia(box, m || {}, by); });
    if (!box.firstChild) return;
    if (item.sensitive) {
      var details = el("details", "sensitive");
      details.appendChild(el("summary", "", "Sensitive media"));
      details.appendChild(box);
      parent.appendChild(details);
    } else {
      parent.appendChild(box);
    }
  }

  function appendMedia(box, m, by) {
    var url = safeUrl(m.url);
    if (!url) return;
    if (m.kind === "image") {
      var img = el("img");
      img.src = safeUrl(m.preview_url) || url; img.alt = m.alt || ("Photo by " + by); img.loading = "lazy";
      var a = link(url, "", "");
      a.appendChild(img);
      box.appendChild(a);
    } else if (m.kind === "video" || m.kind === "gifv") {
      var video = el("video");
      video.controls = true; video.preload = "none"; video.src = url;
      var poster = safeUrl(m.preview_url);
      if (poster) video.poster = poster;
      video.setAttribute("aria-label", m.alt || "video");
      box.appendChild(video);
    } else {
      box.appendChild(link(url, "", m.alt || m.kind || "media"));
    }
  }

  // ---- the talk happening now (the schedule is on the page, times in UTC) -------------------

  function showTalksNow(box) {
    if (!box) return;
    function update() {
      var now = Date.now(), any = false;
      var talks = box.querySelectorAll("li[data-start][data-end]");
      for (var i = 0; i < talks.length; i++) {
        var on = Date.parse(talks[i].getAttribute("data-start")) <= now &&
                 now < Date.parse(talks[i].getAttribute("data-end"));
        talks[i].hidden = !on;
        if (on) talks[i].setAttribute("aria-current", "time"); else talks[i].removeAttribute("aria-current");
        any = any || on;
      }
      box.hidden = !any;
    }
    update();
    setInterval(update, 30000);
  }

  var pins = pinnedList ? pinnedList.querySelectorAll("article.post[data-uri]") : [];
  for (var p = 0; p < pins.length; p++) pinnedUris[pins[p].getAttribute("data-uri")] = true;
  connect();
})();
