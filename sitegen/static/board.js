/* A Feed Apart: the meet-ups board, kept up to date from the live stream.
 *
 * The page renders the board (templates/_board.html): <ol class="board"> of
 *   <li class="meetup" data-start data-end data-by="organizers|attendees" data-uri>
 * The page's own stream client (live.js, wall.js) hands it the changes it receives:
 *   var board = AfaBoard.create(ol, {tag: "nwmeetup", tz: "Europe/Amsterdam", links: true});
 *   board.change(kind, change);   // post, edit, retract, boost
 * It shows only today's and tonight's meet-ups (a board day runs 06:00 to 06:00 local time)
 * that have not ended, organizers' first, then attendees', each in time order. A post with the
 * tag becomes an attendee's meet-up (its time: the first time of day its text names, "tomorrow"
 * moves it a day, a time more than an hour before the post is the next day's; else the post's
 * time; two hours long), a reply to it or a boost of it adds its author to who is going.
 * Same rules as core/meetups.py. Everything goes in with textContent; URLs only if http(s).
 */
(function () {
  "use strict";
  var el = window.AfaDom.el, safeUrl = window.AfaDom.safeUrl;  // static/dom.js

  var TIME_24 = /(^|[^\d:.])([01]?\d|2[0-3])[:.h]([0-5]\d)(?![\d:])\s*(am|pm)?/i;
  var TIME_12 = /(^|[^\d:.])(1[0-2]|0?[1-9])\s*(am|pm)\b/i;
  var TOMORROW = /\btomorrow\b/i;
  var HOUR = 3600 * 1000, DAY_STARTS = 6 * HOUR, LENGTH = 2 * HOUR, MOST = 40, AVATARS = 12;



  function Clock(tz) {
    var parts = new Intl.DateTimeFormat("en-GB", {
      timeZone: tz || undefined, hourCycle: "h23", year: "numeric", month: "2-digit",
      day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"
    });
    this.hm = new Intl.DateTimeFormat("en-GB", { timeZone: tz || undefined, hour: "2-digit",
                                                  minute: "2-digit", hourCycle: "h23" });
    this.fields = function (t) {
      var out = {};
      parts.formatToParts(new Date(t)).forEach(function (p) { out[p.type] = parseInt(p.value, 10); });
      return out;
    };
  }
  Clock.prototype.offset = function (t) {  // the zone's offset from UTC at t, in ms
    var f = this.fields(t);
    return Date.UTC(f.year, f.month - 1, f.day, f.hour % 24, f.minute, f.second) - Math.floor(t / 1000) * 1000;
  };
  Clock.prototype.at = function (y, m, d, hour, minute) {  // a local wall time as UTC ms
    var guess = Date.UTC(y, m - 1, d, hour, minute);
    var first = guess - this.offset(guess);
    return guess - this.offset(first);
  };
  Clock.prototype.day = function (t) {  // "YYYY-MM-DD" of the board day t is in
    var f = this.fields(t - DAY_STARTS);
    return f.year + "-" + (f.month < 10 ? "0" : "") + f.month + "-" + (f.day < 10 ? "0" : "") + f.day;
  };

  function clockIn(text) {
    var a = TIME_24.exec(text), b = TIME_12.exec(text), hour, minute, half;
    if (!a && !b) return null;
    if (a && (!b || a.index + a[1].length <= b.index + b[1].length)) {
      hour = parseInt(a[2], 10); minute = parseInt(a[3], 10); half = (a[4] || "").toLowerCase();
    } else {
      hour = parseInt(b[2], 10); minute = 0; half = b[3].toLowerCase();
    }
    if (half === "pm" && hour < 12) hour += 12;
    else if (half === "am" && hour === 12) hour = 0;
    return [hour, minute];
  }

  function proposalTime(clock, text, posted) {
    var found = clockIn(text || "");
    if (!found) return [posted, posted + LENGTH];
    var f = clock.fields(posted), tomorrow = TOMORROW.test(text);
    var base = new Date(Date.UTC(f.year, f.month - 1, f.day + (tomorrow ? 1 : 0)));
    var start = clock.at(base.getUTCFullYear(), base.getUTCMonth() + 1, base.getUTCDate(), found[0], found[1]);
    if (!tomorrow && start < posted - HOUR) {
      base = new Date(base.getTime() + 24 * HOUR);
      start = clock.at(base.getUTCFullYear(), base.getUTCMonth() + 1, base.getUTCDate(), found[0], found[1]);
    }
    return [start, start + LENGTH];
  }

  function Board(list, options) {
    this.list = list;
    this.tag = (options.tag || "").toLowerCase();
    this.links = options.links !== false;
    this.clock = new Clock(options.tz);
    this.empty = options.empty || null;
    this.refresh();
  }

  Board.prototype.entries = function () {
    return Array.prototype.slice.call(this.list.querySelectorAll("li.meetup"));
  };

  Board.prototype.find = function (uri) {
    if (!uri) return null;
    var entries = this.entries();
    for (var i = 0; i < entries.length; i++) {
      if (entries[i].getAttribute("data-uri") === uri) return entries[i];
    }
    return null;
  };

  Board.prototype.change = function (kind, change) {
    if (!change || !change.uri) return;
    if (kind === "retract") this.retract(change.uri);
    else if (kind === "boost" && change.by) this.going(this.find(change.uri), change.by, "");
    else if ((kind === "post" || kind === "edit") && change.item) this.post(change.item);
    else return;
    this.refresh();
  };

  Board.prototype.post = function (item) {
    var parent = item.reply_to && this.find(item.reply_to);
    if (parent) { this.going(parent, item.author || {}, item.uri); return; }
    var tags = item.tags || [];
    if (!this.tag || tags.indexOf(this.tag) < 0) return;
    var posted = Date.parse(item.created_at);
    if (isNaN(posted)) return;
    var when = proposalTime(this.clock, item.text || "", posted);
    var title = (item.text || "").replace(new RegExp("(^|[^\\w])#" + this.tag + "\\b", "ig"), "$1")
      .replace(/\s+/g, " ").trim().replace(/(?:\s*#[\w]+)+\s*$/, "").slice(0, 160) || "Meet-up";
    var old = this.find(item.uri), entry = this.render(item, title, when);
    if (old) {
      var going = old.querySelector("ul.going");
      if (going) entry.querySelector("ul.going").replaceWith(going);
      entry.querySelector(".going-count").textContent = old.querySelector(".going-count").textContent;
      old.parentNode.removeChild(old);
    }
    this.insert(entry);
  };

  Board.prototype.render = function (item, title, when) {
    var author = item.author || {};
    var li = el("li", "meetup by-attendees");
    li.setAttribute("data-start", new Date(when[0]).toISOString());
    li.setAttribute("data-end", new Date(when[1]).toISOString());
    li.setAttribute("data-by", "attendees");
    li.setAttribute("data-uri", item.uri);
    if (author.id) li.setAttribute("data-author", String(author.id));
    var time = el("p", "meetup-when");
    time.appendChild(this.timeEl(when[0]));
    time.appendChild(document.createTextNode("–"));
    time.appendChild(this.timeEl(when[1]));
    li.appendChild(time);
    var head = el("p", "meetup-title"), original = safeUrl(item.url);
    if (this.links && original) {
      var a = el("a", "", title);
      a.href = original; a.rel = "nofollow ugc noopener";
      head.appendChild(a);
    } else {
      head.textContent = title;
    }
    li.appendChild(head);
    li.appendChild(el("p", "meetup-by", "Proposed by " + (author.name || author.handle || "someone")));
    var box = el("div", "meetup-going");
    box.appendChild(el("span", "going-count", "0 going"));
    box.appendChild(document.createTextNode(" "));
    var going = el("ul", "going");
    going.setAttribute("aria-label", "Going");
    box.appendChild(going);
    li.appendChild(box);
    return li;
  };

  Board.prototype.timeEl = function (t) {
    var node = el("time", "", this.clock.hm.format(new Date(t)));
    node.setAttribute("datetime", new Date(t).toISOString());
    return node;
  };

  Board.prototype.going = function (entry, person, via) {
    if (!entry || entry.getAttribute("data-by") !== "attendees") return;
    var id = String(person.id || "");
    var list = entry.querySelector("ul.going"), count = entry.querySelector(".going-count");
    if (!id || !list || entry.getAttribute("data-author") === id) return;
    var items = list.querySelectorAll("li[data-id]");
    for (var i = 0; i < items.length; i++) if (items[i].getAttribute("data-id") === id) return;
    var total = (parseInt(count.textContent, 10) || 0) + 1;
    count.textContent = total + " going";
    if (items.length >= AVATARS) return;
    var li = el("li");
    li.setAttribute("data-id", id);
    if (via) li.setAttribute("data-via", via);
    var name = person.name || person.handle || "someone", avatar = safeUrl(person.avatar);
    if (avatar) {
      var img = el("img");
      img.src = avatar; img.alt = name; img.title = name; img.width = 32; img.height = 32;
      li.appendChild(img);
    } else {
      var initial = el("span", "initial", name.slice(0, 1));
      initial.setAttribute("aria-hidden", "true");
      li.appendChild(initial);
      li.appendChild(el("span", "visually-hidden", name));
    }
    list.appendChild(li);
  };

  Board.prototype.retract = function (uri) {
    var entry = this.find(uri);
    if (entry) { entry.parentNode.removeChild(entry); return; }
    var vias = this.list.querySelectorAll("li[data-via]");  // a reply that counted as going
    for (var i = 0; i < vias.length; i++) {
      if (vias[i].getAttribute("data-via") !== uri) continue;
      var count = vias[i].closest(".meetup").querySelector(".going-count");
      count.textContent = Math.max((parseInt(count.textContent, 10) || 1) - 1, 0) + " going";
      vias[i].parentNode.removeChild(vias[i]);
    }
  };

  function order(li) {
    return [li.getAttribute("data-by") === "organizers" ? 0 : 1, li.getAttribute("data-start")];
  }

  Board.prototype.insert = function (entry) {
    var key = order(entry), entries = this.entries();
    for (var i = 0; i < entries.length; i++) {
      var other = order(entries[i]);
      if (other[0] > key[0] || (other[0] === key[0] && other[1] > key[1])) {
        this.list.insertBefore(entry, entries[i]);
        return;
      }
    }
    this.list.appendChild(entry);
  };

  /* Show today's and tonight's meet-ups that have not ended; drop attendees' meet-ups that
   * ended long ago (the DOM stays bounded on a wall that runs for days). */
  Board.prototype.refresh = function () {
    var now = Date.now(), today = this.clock.day(now), shown = 0, entries = this.entries();
    for (var i = 0; i < entries.length; i++) {
      var li = entries[i], start = Date.parse(li.getAttribute("data-start")),
          end = Date.parse(li.getAttribute("data-end"));
      var on = this.clock.day(start) === today && end > now;
      li.hidden = !on;
      if (on) shown += 1;
      if (li.getAttribute("data-by") === "attendees" && (end < now - 24 * HOUR || entries.length - i > MOST && !on)) {
        li.parentNode.removeChild(li);
      }
    }
    this.list.setAttribute("data-shown", String(shown));
    if (this.empty) this.empty.hidden = shown > 0;
  };

  window.AfaBoard = {
    create: function (list, options) { return list ? new Board(list, options || {}) : null; },
    proposalTime: function (tz, text, posted) { return proposalTime(new Clock(tz), text, posted); }
  };
})();
