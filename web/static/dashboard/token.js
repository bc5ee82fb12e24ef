// token.js: owns the server's --token in this tab: kept in sessionStorage (gone with the tab),
// asked for once, in the page's token dialog, when the server says it needs one; every caller
// that needs it meanwhile waits for the same answer.

const KEY = "runcast.token";
let asking = null;

export function storedToken() {
  return sessionStorage.getItem(KEY);
}

// Escape does not close the dialog: the dashboard can do nothing without the token.
function stayOpen(event) {
  event.preventDefault();
}

function ask(reason) {
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  document.getElementById("token-reason").textContent = reason;
  input.value = "";
  return new Promise((resolve) => {
    form.addEventListener("submit", function submitted(event) {
      event.preventDefault();
      const token = input.value.trim();
      if (token === "") return;
      form.removeEventListener("submit", submitted);
      dialog.removeEventListener("cancel", stayOpen);
      sessionStorage.setItem(KEY, token);
      dialog.close();
      resolve(token);
    });
    dialog.addEventListener("cancel", stayOpen);
    dialog.showModal();
    input.focus();
  });
}

// Forget the stored token (the server refused it, or none was stored) and ask for one.
export function askForToken(reason) {
  sessionStorage.removeItem(KEY);
  asking ??= ask(reason).finally(() => {
    asking = null;
  });
  return asking;
}
