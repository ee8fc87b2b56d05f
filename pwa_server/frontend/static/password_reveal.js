// Progressive enhancement: the "show password" button beside a password field. Without this
// file the button stays hidden and the field stays a password field.
"use strict";
document.querySelectorAll("button.reveal[aria-controls]").forEach((button) => {
  const field = document.getElementById(button.getAttribute("aria-controls"));
  if (!(field instanceof HTMLInputElement)) return;
  button.addEventListener("click", () => {
    const show = field.type === "password";
    field.type = show ? "text" : "password";
    button.setAttribute("aria-pressed", String(show));
  });
  button.hidden = false;
});
