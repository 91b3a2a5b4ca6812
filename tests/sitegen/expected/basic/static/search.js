/* An event's search page: Pagefind's indexes (one per block of posts, see sitegen/search.py)
   merged in the browser, one result per post linking to its anchor. The query and the filters
   live in the URL (?q=word&talk=…), so a search can be shared and a ?q= link opens with its
   results. Results are built with DOM calls: only text and Pagefind's <mark> reach the page. */
(function () {
  "use strict";
  var root = document.getElementById("search");
  if (!root) return;
  var form = root.querySelector("form");
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-results");
  var more = document.getElementById("search-more");
  var FILTERS = ["talk", "day", "room", "source", "photos"];
  var PAGE = 20;
  var bundles = (root.getAttribute("data-bundles") || "").split(" ").filter(Boolean).map(function (b) {
    return new URL(b, document.baseURI).href;
  });
  var eventRoot = new URL(root.getAttribute("data-event-root") || "../", document.baseURI);
  var pagefind = null;
  var results = [];
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
    results = [];
    shown = 0;
    if (!want.query && !Object.keys(want.filters).length) { say(""); return; }
    var found = await pagefind.search(want.query || null, { filters: want.filters });
    if (mine !== run) return;  // a newer search started meanwhile
    results = found.results;
    await showMore(mine);
    if (mine !== run) return;
    say(results.length === 0 ? "No post matches." :
        results.length === 1 ? "1 post matches." : results.length + " posts match.");
  }

  async function showMore(mine) {
    var next = results.slice(shown, shown + PAGE);
    shown += next.length;
    var datas = await Promise.all(next.map(function (r) { return r.data(); }));
    if (mine !== run) return;
    datas.forEach(function (data) { list.appendChild(result(data)); });
    more.hidden = shown >= results.length;
  }

  function result(data) {
    var meta = data.meta || {};
    var item = document.createElement("li");
    var article = document.createElement("article");
    article.className = "result";
    var head = document.createElement("p");
    head.className = "result-head";
    var link = document.createElement("a");
    link.href = new URL(meta.at || "", eventRoot).href;
    link.textContent = meta.title || "A post";
    head.appendChild(link);
    if (meta.handle) head.appendChild(span("handle", " " + meta.handle));
    var when = document.createElement("time");
    if (meta.time) when.setAttribute("datetime", meta.time);
    when.textContent = " · " + (meta.when || "");
    head.appendChild(when);
    article.appendChild(head);
    var where = document.createElement("p");
    where.className = "result-where";
    where.textContent = (meta.where || "") + (meta.source ? " · " + meta.source : "");
    article.appendChild(where);
    var excerpt = document.createElement("p");
    excerpt.className = "result-excerpt";
    marked(data.excerpt || "", excerpt);
    article.appendChild(excerpt);
    item.appendChild(article);
    return item;
  }

  function span(cls, text) {
    var el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
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
