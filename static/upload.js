// Progressive enhancement for the upload page: drag and drop, a preview, a size check
// before sending, a busy state, and a search of the supported documents. It works the same without it.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // The supported documents, filtered as people type (the page shows a search box when there are many).
  document.addEventListener("DOMContentLoaded", function () {
    var search = document.getElementById("type-search");
    if (!search) return;
    var items = Array.prototype.slice.call(document.querySelectorAll("#document-types li"));
    var noMatch = document.querySelector(".supported .no-match");
    search.addEventListener("input", function () {
      var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      items.forEach(function (item) {
        var text = item.textContent.toLowerCase();
        item.hidden = !words.every(function (word) { return text.indexOf(word) >= 0; });
        if (!item.hidden) shown += 1;
      });
      noMatch.hidden = shown > 0;
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.querySelector(".upload-form");
    if (!form) return;
    var input = form.querySelector('input[type="file"]');
    var zone = form.querySelector(".dropzone");
    var preview = form.querySelector(".preview");
    var clientError = form.querySelector(".client-error");
    var button = form.querySelector('button[type="submit"]');
    var buttonText = button.textContent;
    var maxBytes = parseInt(form.dataset.maxBytes, 10);
    var previewUrl = null;

    function showError(message) {
      clientError.textContent = message;
      clientError.hidden = !message;
      input.setAttribute("aria-invalid", message ? "true" : "false");
    }

    function tooLarge(file) {
      return maxBytes && file.size > maxBytes;
    }

    function showChosenFile() {
      var file = input.files && input.files[0];
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = null;
      preview.hidden = true;
      showError("");
      if (!file) return;
      if (tooLarge(file)) {
        showError("The file is larger than " + Math.round(maxBytes / 1048576) + " MB; choose a smaller photo.");
        return;
      }
      if (/^image\/(jpeg|png|webp|gif|bmp)$/.test(file.type)) {
        previewUrl = URL.createObjectURL(file);
        preview.src = previewUrl;
        preview.hidden = false;
      }
    }

    function setBusy(busy) {
      button.disabled = busy;
      form.setAttribute("aria-busy", busy ? "true" : "false");
      if (busy) {
        button.innerHTML = '<span class="spinner" aria-hidden="true"></span>Identifying…';
      } else {
        button.textContent = buttonText;
      }
    }

    input.addEventListener("change", showChosenFile);

    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("is-dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.remove("is-dragging");
      });
    });
    zone.addEventListener("drop", function (event) {
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      showChosenFile();
    });

    form.addEventListener("submit", function (event) {
      var file = input.files && input.files[0];  // the browser has checked one was chosen
      if (file && tooLarge(file)) {
        event.preventDefault();
        input.focus();
        return;
      }
      setBusy(true);
    });

    // Coming back to this page from the browser's history must not leave it busy.
    window.addEventListener("pageshow", function () { setBusy(false); });
  });
})();
