// What the server cannot see: the clipboard, and whether a Mac's user agent is an iPad.
// Progressive enhancement only: without this file the link stays selectable text and both
// platform choices stay offered.
"use strict";
(function () {
  const button = document.getElementById("copy-link");
  const link = document.getElementById("page-link");
  const done = document.getElementById("copy-done");
  if (button && link && done && navigator.clipboard) {
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(link.textContent.trim()).then(
        function () {
          done.textContent = button.dataset.done;
        },
        function () {
          // No clipboard permission: select the link so the phone's own Copy is one tap away.
          window.getSelection().selectAllChildren(link);
        }
      );
    });
  }
  // iPadOS Safari sends a Mac's user agent; touch tells them apart (Macs report 0 points).
  const ipad = document.querySelector("input[data-ipad]");
  if (ipad && navigator.maxTouchPoints > 1) {
    ipad.checked = true;
  }
})();
