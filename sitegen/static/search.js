/* An event's search page: Pagefind's indexes (one per block of posts, see sitegen/search.py)
   merged in the browser, one result per post linking to its anchor. Pagefind finds pages of
   posts that share their filters; each post is a sub-result under its own heading, and the
   sub-results are what the page lists. The query and the filters live in the URL
   (?q=word&talk=…), so a search can be shared and a ?q= link opens with its results. Results
   are built with DOM calls: only text and Pagefind's <mark> reach the page. */
(function () {
  "use strict";
  var root = document.getElementById("search");
  if (!root) return;
  var form = root.querySelector("form");
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-results");
  var more = document.getElementById("search-more");
  var FILTERS = ["talk", "day", "room", "source", "photos"];
  var PAGE = 20;  // posts shown at a time
  var COUNT_ALL = 50;  // up to this many pages of results are read whole, for an exact count
  var bundles = (root.getAttribute("data-bundles") || "").split(" ").filter(Boolean).map(function (b) {
    return new URL(b, document.baseURI).href;
  });
  var eventRoot = new URL(root.getAttribute("data-event-root") || "../", document.baseURI);
  var pagefind = null;
  var pending = [];  // result pages not read yet
  var posts = [];  // [page data, sub-result] read so far
  var shown = 0;
  var run = 0;
  var timer = null;

  function say(text) { status.textContent = text; }

  async function start() {
    if (!bundles.length) return;
    say("Loading the search index…");
    pagefind = await import(bundles[0] + "pagefind.js");
    await pagefind.options({ excerptLength: 30 });
    await pagefind.init();
    for (var i = 1; i < bundles.length; i++) await pagefind.mergeIndex(bundles[i]);
    fillFilters(await pagefind.filters());
    var params = new URLSearchParams(location.search);
    form.elements.q.value = params.get("q") || "";
    FILTERS.forEach(function (name) { choose(form.elements[name], params.get(name) || ""); });
    root.setAttribute("data-ready", "");
    say("");
    await search();
  }

  function fillFilters(found) {
    FILTERS.forEach(function (name) {
      var select = form.elements[name];
      Object.keys(found[name] || {}).sort().forEach(function (value) {
        var option = document.createElement("option");
        option.value = value;
        option.textContent = value + " (" + found[name][value] + ")";
        select.appendChild(option);
      });
    });
  }

  function choose(select, value) {
    if (value && !Array.prototype.some.call(select.options, function (o) { return o.value === value; })) {
      var option = document.createElement("option");
      option.value = value;
      option.textContent = value;
      select.appendChild(option);
    }
    select.value = value;
  }

  function wanted() {
    var query = form.elements.q.value.trim();
    var filters = {};
    var params = new URLSearchParams();
    if (query) params.set("q", query);
    FILTERS.forEach(function (name) {
      var value = form.elements[name].value;
      if (value) { filters[name] = value; params.set(name, value); }
    });
    return { query: query, filters: filters, params: params };
  }

  async function search() {
    if (!pagefind) return;
    var want = wanted();
    var mine = ++run;
    var address = want.params.toString();
    history.replaceState(null, "", address ? "?" + address : location.pathname);
    list.textContent = "";
    more.hidden = true;
    pending = [];
    posts = [];
    shown = 0;
    if (!want.query) { say(Object.keys(want.filters).length ? "Type the words to find." : ""); return; }
    var found = await pagefind.search(want.query, { filters: want.filters });
    if (mine !== run) return;  // a newer search started meanwhile
    pending = found.results.slice();
    if (pending.length <= COUNT_ALL) await read(mine, Infinity);
    await showMore(mine);
  }

  /* Read result pages until `enough` posts are known or none is left. */
  async function read(mine, enough) {
    while (posts.length < enough && pending.length) {
      var datas = await Promise.all(pending.splice(0, 10).map(function (r) { return r.data(); }));
      if (mine !== run) return;
      datas.forEach(function (data) {
        (data.sub_results || []).forEach(function (sub) {
          if (sub.anchor && sub.anchor.id) posts.push([data, sub]);
        });
      });
    }
  }

  async function showMore(mine) {
    await read(mine, shown + PAGE);
    if (mine !== run) return;
    posts.slice(shown, shown + PAGE).forEach(function (found) {
      list.appendChild(result(found[0], found[1]));
    });
    shown = Math.min(posts.length, shown + PAGE);
    more.hidden = shown >= posts.length && !pending.length;
    if (pending.length) say("More than " + posts.length + " posts match.");
    else say(posts.length === 0 ? "No post matches." :
             posts.length === 1 ? "1 post matches." : posts.length + " posts match.");
  }

  function result(page, sub) {
    var meta = page.meta || {};
    var item = document.createElement("li");
    var article = document.createElement("article");
    article.className = "result";
    var head = document.createElement("p");
    head.className = "result-head";
    var link = document.createElement("a");
    link.href = new URL((meta.at || "") + "#" + sub.anchor.id, eventRoot).href;
    link.textContent = sub.title || "A post";
    head.appendChild(link);
    article.appendChild(head);
    var where = document.createElement("p");
    where.className = "result-where";
    where.textContent = (meta.where || "") + (meta.source ? " · " + meta.source : "");
    article.appendChild(where);
    var excerpt = document.createElement("p");
    excerpt.className = "result-excerpt";
    marked(sub.excerpt || "", excerpt);
    article.appendChild(excerpt);
    item.appendChild(article);
    return item;
  }

  /* Pagefind's excerpt as text, with its <mark>s kept and nothing else. */
  function marked(html, into) {
    var parsed = new DOMParser().parseFromString("<p>" + html + "</p>", "text/html").body;
    parsed.querySelectorAll("p").forEach(function (p) {
      p.childNodes.forEach(function (node) {
        if (node.nodeType === Node.TEXT_NODE) {
          into.appendChild(document.createTextNode(node.textContent));
        } else if (node.nodeName === "MARK") {
          var mark = document.createElement("mark");
          mark.textContent = node.textContent;
          into.appendChild(mark);
        } else {
          into.appendChild(document.createTextNode(node.textContent || ""));
        }
      });
    });
  }

  form.addEventListener("submit", function (event) { event.preventDefault(); search(); });
  form.elements.q.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, 300);
  });
  FILTERS.forEach(function (name) { form.elements[name].addEventListener("change", search); });
  more.addEventListener("click", function () { showMore(run); });
  start().catch(function (error) { say("Search could not start: " + error.message); });
})();
