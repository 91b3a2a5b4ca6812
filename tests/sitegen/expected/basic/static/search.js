/* Start Pagefind's UI on an event's search page. The index is static files beside the page. */
(function () {
  "use strict";
  var box = document.getElementById("search");
  if (!box || typeof PagefindUI === "undefined") return;
  new PagefindUI({ element: "#search", bundlePath: box.getAttribute("data-bundle"), showImages: false });
})();
