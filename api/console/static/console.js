// The console's only script (no framework, nothing from another host).
(function () {
  "use strict";

  // Trust graph: a click on a node or an edge (data-kind, data-id) shows its details.
  var graph = document.getElementById("graph");
  var panel = document.getElementById("details");
  if (graph && panel) {
    graph.addEventListener("click", function (event) {
      var target = event.target.closest("[data-kind]");
      if (!target) { return; }
      var url = graph.getAttribute("data-details") + "?kind=" + encodeURIComponent(target.getAttribute("data-kind")) +
        "&id=" + encodeURIComponent(target.getAttribute("data-id") || "");
      var previous = graph.querySelector(".selected");
      if (previous) { previous.classList.remove("selected"); }
      target.classList.add("selected");
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.text(); })
        .then(function (html) {
          // The server's own autoescaped fragment.
          panel.innerHTML = html;
        });
    });
  }

  // File inputs: read the file here and send it as base64 in a form field,
  // so the console's forms stay urlencoded (no multipart parser on the server).
  Array.prototype.forEach.call(document.querySelectorAll("input[type=file][data-into]"), function (input) {
    input.addEventListener("change", function () {
      var into = document.getElementById(input.getAttribute("data-into"));
      var file = input.files && input.files[0];
      if (!file) { into.value = ""; return; }
      var reader = new FileReader();
      reader.onload = function () {
        var bytes = new Uint8Array(reader.result), text = "";
        for (var i = 0; i < bytes.length; i += 0x8000) {
          text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
        }
        into.value = btoa(text);
        input.setAttribute("data-loaded", "true");
      };
      reader.readAsArrayBuffer(file);
    });
  });
})();
