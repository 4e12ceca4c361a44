// The console's only script: copy buttons, forms sent once however often
// they are submitted, and danger forms whose submit button stays disabled
// until the confirmation is typed. The server checks the confirmation too;
// this only saves a round trip.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      const text = source.textContent.trim();
      // The clipboard may be refused or never answer (no permission): then
      // the text is selected for the operator to copy.
      const written = navigator.clipboard
        ? Promise.race([
            navigator.clipboard.writeText(text),
            new Promise((_, reject) => setTimeout(reject, 1000)),
          ])
        : Promise.reject(new Error("no clipboard"));
      written.then(
        () => { button.textContent = "Copied"; },
        () => {
          const range = document.createRange();
          range.selectNodeContents(source);
          const selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          button.textContent = "Selected: press Ctrl+C";
        },
      );
    });
  }
  // A form is sent once: a double click (or Enter pressed twice) sent it
  // twice, and the second answer replaced the first — a new webhook secret,
  // shown only once, lost behind "a rotation is already under way".
  for (const form of document.querySelectorAll("form[method=post]")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.sent) {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "true";
    });
  }
  // A page the browser restores from its back-forward cache may be sent
  // again.
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return;
    for (const form of document.querySelectorAll("form[data-sent]")) delete form.dataset.sent;
  });
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    const input = form.querySelector("input[name=confirm]");
    const submit = form.querySelector("button[type=submit]");
    if (!input || !submit) continue;
    const update = () => { submit.disabled = input.value.trim() !== form.dataset.confirm; };
    input.addEventListener("input", update);
    update();
  }
});
