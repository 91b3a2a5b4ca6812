/* A Feed Apart: the venue wall's client (templates/wall.html).
 *
 * Reads <main id="wall" data-stream data-after data-tz data-meetup-tag data-per-column
 * data-pace data-idle> and opens EventSource(stream + "?after=" + after), as live.js does:
 *   post, edit      a post (edit: in place wherever it is shown or queued)
 *   retract         gone at once: from the columns, the queue, the pinned posts, the board
 *   pin, unpin      pinned posts stay on top until unpinned; a pinned post that is retracted
 *                   (hidden) leaves, and comes back pinned if it is shown again
 *   boost           the meet-ups board counts the booster as going (board.js)
 *   reset           reload the page once per page cursor, as live.js does
 * Pacing: a new post is shown at once if the wall showed none for `pace` ms; otherwise it
 * waits in a queue (at most QUEUE posts: the oldest waiting are dropped when posts come much
 * faster than people read) shown one per `pace` ms. After `idle` ms without a post the wall
 * shows its best recent posts and photos (the page's <template id="wall-best">) in turn.
 * Unattended all day: it reconnects by itself (EventSource, then backing off to 30 s), keeps at
 * most per-column posts in each column and a bounded queue, board and pool, remembers no
 * per-post state beyond them (changes are deduplicated by the stream's increasing seq), and
 * reloads itself every few hours. Nothing is inserted as HTML: post HTML (sanitised by the
 * collector) is parsed into an inert document and rebuilt through an allowlist, links unwrapped.
 * Query overrides: ?theme=light, ?pace=MS, ?idle=MS. For screens and tests to read, <main>
 * carries data-seen (the last change handled) and data-queued (posts waiting).
 */
(function () {
  "use strict";
  var el = window.AfaDom.el, safeUrl = window.AfaDom.safeUrl;  // static/dom.js
  var copyPostHtml = window.AfaDom.copyPostHtml;

  var main = document.getElementById("wall");
  if (!main) return;
  var params = new URLSearchParams(window.location.search);
  if (params.get("theme") === "light" || params.get("theme") === "dark") {
    document.documentElement.setAttribute("data-theme", params.get("theme"));
  }
  function number(name, fallback) {
    var value = parseInt(params.get(name) || main.getAttribute("data-" + name), 10);
    return isNaN(value) || value < 0 ? fallback : value;
  }

  var QUEUE = 30, POOL = 24, PINNED = 3, RELOAD_MS = 6 * 3600 * 1000;
  var stream = main.getAttribute("data-stream");
  var after = parseInt(main.getAttribute("data-after"), 10) || 0;
  var pageAfter = after;
  var tz = main.getAttribute("data-tz") || undefined;
  var perColumn = number("per-column", 5), pace = number("pace", 6000), idle = number("idle", 45000);
  var columns = Array.prototype.slice.call(document.querySelectorAll("#wall-columns .wall-column"));
  var pinnedList = document.getElementById("wall-pinned");
  var status = document.getElementById("wall-status");
  var timeFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit",
                                                       hourCycle: "h23", timeZone: tz });
  var dayFormat = new Intl.DateTimeFormat("en-GB", { weekday: "short", day: "numeric", timeZone: tz });
  var board = window.AfaBoard && window.AfaBoard.create(document.getElementById("board-list"), {
    tag: main.getAttribute("data-meetup-tag"), tz: tz, links: false
  });

  var queue = [];            // [{uri, seq, item}] waiting to be shown, oldest first
  var pool = [];             // best posts to show again when nothing arrives (article nodes)
  var pinned = {};           // uri -> true: pinned, shown or (while hidden) not
  var next = 0, lastShown = 0, lastArrival = Date.now(), loaded = Date.now(), timer = 0;
  var source = null, retryDelay = 1000;

  // ---- the stream ---------------------------------------------------------------------------

  function setState(name, text) {
    status.setAttribute("data-state", name);
    status.textContent = text;
  }

  function connect() {
    source = new EventSource(stream + (stream.indexOf("?") < 0 ? "?" : "&") + "after=" + after);
    source.onopen = function () { retryDelay = 1000; setState("live", "Live"); };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        setState("offline", "Reconnecting…");
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      } else {
        setState("reconnecting", "Reconnecting…");
      }
    };
    ["post", "edit", "retract", "pin", "unpin", "boost"].forEach(function (kind) {
      source.addEventListener(kind, function (e) { handle(kind, e); });
    });
    source.addEventListener("reset", reset);
  }

  function reset(message) {
    var key = "afa-wall-reset:" + window.location.pathname;
    try {
      if (window.sessionStorage.getItem(key) !== String(pageAfter)) {
        window.sessionStorage.setItem(key, String(pageAfter));
        window.location.reload();
        return;
      }
    } catch (err) { /* no storage: go on from the oldest change kept */ }
    var oldest = parseInt(message.lastEventId, 10);
    if (oldest > after) after = oldest;
    source.close();
    connect();
  }

  function handle(kind, message) {
    var change;
    try { change = JSON.parse(message.data); } catch (err) { return; }
    var seq = parseInt(change && change.seq, 10);
    if (!seq || seq <= after || !change.uri) return;  // changes come in order: dedupe by seq
    after = seq;
    main.setAttribute("data-seen", String(seq));
    if (kind === "post" || kind === "edit") arrived(change, seq, kind);
    else if (kind === "retract") remove(change.uri, true);
    else if (kind === "pin" && change.item) pin(change.item, seq);
    else if (kind === "unpin") unpin(change.uri);
    if (board) board.change(kind, change);
    main.setAttribute("data-queued", String(queue.length));
  }

  // ---- posts: shown at a steady rhythm --------------------------------------------------------

  function arrived(change, seq, kind) {
    var uri = change.uri, item = change.item;
    if (!item) return;
    if (pinned[uri]) { pin(item, seq); if (kind === "post") return; }
    var shown = find(uri);
    if (shown) { replace(shown, card(item, seq)); return; }
    for (var i = 0; i < queue.length; i++) {
      if (queue[i].uri === uri) { queue[i] = { uri: uri, seq: seq, item: item }; return; }
    }
    if (kind === "edit") return;  // an edit of a post no longer on the wall
    lastArrival = Date.now();
    queue.push({ uri: uri, seq: seq, item: item });
    if (queue.length > QUEUE) queue.splice(0, queue.length - QUEUE);
    tick();
  }

  function tick() {
    var now = Date.now();
    if (now - lastShown < pace) { later(); return; }
    if (queue.length) {
      var first = queue.shift();
      main.setAttribute("data-queued", String(queue.length));
      show(card(first.item, first.seq));
      keepInPool(first.item, first.seq);
    } else if (now - lastArrival >= idle && pool.length) {
      var again = pool.shift();
      pool.push(again);
      var copy = again.cloneNode(true);
      copy.classList.add("again");
      show(copy);
    }
    later();
  }

  function later() {  // the next queued post, pace after the last one shown
    if (timer || !queue.length) return;
    timer = setTimeout(function () { timer = 0; tick(); }, Math.max(pace - (Date.now() - lastShown), 0));
  }

  function show(node) {
    var old = find(node.getAttribute("data-uri"));
    if (old) removeCard(old);
    var li = document.createElement("li");
    li.appendChild(node);
    var column = columns[next % columns.length];
    next = (next + 1) % columns.length;
    column.insertBefore(li, column.firstChild);
    while (column.children.length > perColumn) column.removeChild(column.lastElementChild);
    lastShown = Date.now();
  }

  function keepInPool(item, seq) {
    var good = (item.boosts || 0) + (item.likes || 0) > 0 || photosOf(item).length;
    if (!good) return;
    pool.push(card(item, seq));
    if (pool.length > POOL) pool.shift();
  }

  function find(uri) {
    var cards = document.querySelectorAll("#wall-columns article.card");
    for (var i = 0; i < cards.length; i++) if (cards[i].getAttribute("data-uri") === uri) return cards[i];
    return null;
  }

  function replace(old, node) {
    if (old.classList.contains("again")) node.classList.add("again");
    old.parentNode.replaceChild(node, old);
  }

  function removeCard(node) {
    var li = node.parentNode;
    if (li && li.parentNode) li.parentNode.removeChild(li);
  }

  function remove(uri, fromPool) {
    queue = queue.filter(function (q) { return q.uri !== uri; });
    var node;
    while ((node = find(uri))) removeCard(node);
    var pin = findPinned(uri);
    if (pin) removeCard(pin);
    if (fromPool) pool = pool.filter(function (n) { return n.getAttribute("data-uri") !== uri; });
  }

  // ---- pinned posts ------------------------------------------------------------------------

  function findPinned(uri) {
    var cards = pinnedList.querySelectorAll("article.card");
    for (var i = 0; i < cards.length; i++) if (cards[i].getAttribute("data-uri") === uri) return cards[i];
    return null;
  }

  function pin(item, seq) {
    pinned[item.uri] = true;
    var node = card(item, seq), old = findPinned(item.uri);
    if (old) { old.parentNode.replaceChild(node, old); return; }
    remove(item.uri, false);  // not twice on the screen
    var li = document.createElement("li");
    li.appendChild(node);
    pinnedList.insertBefore(li, pinnedList.firstChild);
    while (pinnedList.children.length > PINNED) pinnedList.removeChild(pinnedList.lastElementChild);
  }

  function unpin(uri) {
    delete pinned[uri];
    var node = findPinned(uri);
    if (node) removeCard(node);
  }

  // ---- one card, built with DOM APIs (mirrors the card macro of templates/wall.html) ----------



  function photosOf(item) {
    if (item.sensitive || item.spoiler) return [];
    return (item.media || []).filter(function (m) {
      return m && m.kind === "image" && safeUrl(m.url);
    }).slice(0, 2);
  }

  function card(item, seq) {
    var author = item.author || {}, photos = photosOf(item);
    var article = el("article", "card" + (photos.length ? " has-photo" : "") + (item.source === "note" ? " note" : ""));
    article.setAttribute("data-seq", String(seq));
    article.setAttribute("data-uri", String(item.uri || ""));
    article.setAttribute("data-created", String(item.created_at || ""));
    var head = el("header", "card-head"), avatar = safeUrl(author.avatar);
    if (avatar) {
      var img = el("img", "avatar");
      img.src = avatar; img.alt = ""; img.width = 64; img.height = 64;
      head.appendChild(img);
    }
    var who = el("p", "card-who");
    who.appendChild(el("span", "name", author.name || author.handle || ""));
    if (author.handle) { who.appendChild(document.createTextNode(" ")); who.appendChild(el("span", "handle", author.handle)); }
    head.appendChild(who);
    var time = el("time"), date = new Date(item.created_at);
    time.setAttribute("datetime", item.created_at || "");
    time.textContent = isNaN(date) ? "" : timeFormat.format(date);
    head.appendChild(time);
    article.appendChild(head);
    if (item.spoiler) {
      article.appendChild(el("p", "card-cw", "Content warning: " + item.spoiler));
    } else {
      var text = el("div", "card-text");
      if (item.lang) text.lang = item.lang;
      copyPostHtml(item.html, text, false);  // links unwrapped: nothing on a wall is clickable
      article.appendChild(text);
    }
    photos.forEach(function (m) {
      var photo = el("img", "photo");
      photo.src = safeUrl(m.preview_url) || safeUrl(m.url); photo.alt = m.alt || "";
      article.appendChild(photo);
    });
    return article;
  }

  // ---- the talk on now and the next one, per room, and the clock ---------------------------

  var talks = Array.prototype.map.call(
    document.querySelectorAll("#wall-schedule li[data-start]"), function (li) {
      return { start: Date.parse(li.getAttribute("data-start")), end: Date.parse(li.getAttribute("data-end")),
               room: li.getAttribute("data-room"), title: li.textContent,
               speakers: li.getAttribute("data-speakers") || "" };
    });
  var rooms = Array.prototype.slice.call(document.querySelectorAll("#wall-now .wall-room"));
  var clock = document.getElementById("wall-clock");

  function minutes(ms) {
    var m = Math.max(1, Math.ceil(ms / 60000));
    return m < 60 ? m + " min" : Math.floor(m / 60) + " h " + (m % 60 < 10 ? "0" : "") + (m % 60) + " min";
  }

  function setText(node, text) { if (node.textContent !== text) node.textContent = text; }

  function showSchedule() {
    var now = Date.now();
    if (clock) setText(clock, timeFormat.format(new Date(now)));
    rooms.forEach(function (box) {
      var room = box.getAttribute("data-room"), on = null, coming = null;
      for (var i = 0; i < talks.length; i++) {
        var t = talks[i];
        if (t.room !== room) continue;
        if (t.start <= now && now < t.end) on = t;
        else if (t.start > now && (!coming || t.start < coming.start)) coming = t;
      }
      var nowLine = box.querySelector(".now-line"), nextLine = box.querySelector(".next-line");
      setText(nowLine.querySelector(".title"), on ? on.title + (on.speakers ? " · " + on.speakers : "") : "Nothing on right now");
      setText(nowLine.querySelector(".left"), on ? minutes(on.end - now) + " left" : "");
      nowLine.setAttribute("data-on", on ? "1" : "0");
      var day = coming && dayFormat.format(new Date(coming.start));
      setText(nextLine.querySelector(".title"), coming
        ? (day !== dayFormat.format(new Date(now)) ? day + " " : "") +
          timeFormat.format(new Date(coming.start)) + " " + coming.title +
          (coming.start - now <= 3600000 ? " (in " + minutes(coming.start - now) + ")" : "")
        : "Nothing more today");
    });
  }

  function everySecond() {
    showSchedule();
    tick();
    if (Date.now() - loaded > RELOAD_MS && queue.length === 0 && status.getAttribute("data-state") === "live") {
      window.location.reload();  // a fresh page now and then: a rebuilt schedule, a clean slate
    }
  }

  // ---- start ----------------------------------------------------------------------------------

  var best = document.getElementById("wall-best");
  if (best && best.content) {
    Array.prototype.forEach.call(best.content.querySelectorAll("article.card"), function (node) {
      if (pool.length < POOL) pool.push(document.importNode(node, true));
    });
  }
  Array.prototype.forEach.call(pinnedList.querySelectorAll("article.card"), function (node) {
    pinned[node.getAttribute("data-uri")] = true;
  });
  showSchedule();
  setInterval(everySecond, 1000);
  setInterval(function () { if (board) board.refresh(); }, 30000);
  if (window.EventSource && window.DOMParser && stream) connect();
})();
