/** The demo's entry: the sign-in screen, then the chat (app.ts). */
import { App } from "./app";
import { h, replace } from "./dom";
import { userIdFor } from "./format";
import { clearSession, loadSession, NoDevTokens, saveSession, tokenProvider, type Session } from "./session";

const root = document.getElementById("root")!;
let app: App | null = null;

function showLogin(message = ""): void {
  const name = h("input", {
    id: "name",
    name: "name",
    autocomplete: "nickname",
    placeholder: "e.g. Alice",
    maxlength: 64,
    required: true,
    autofocus: true,
  });
  const error = h("div", { class: "error", role: "alert" }, message);
  const button = h("button", { class: "btn", type: "submit" }, "Start chatting");
  const form = h(
    "form",
    {
      onsubmit: async (ev: Event) => {
        ev.preventDefault();
        const display = name.value.trim();
        const userId = userIdFor(display);
        if (!userId) {
          error.textContent = "Use at least one letter or digit.";
          return;
        }
        button.disabled = true;
        error.textContent = "";
        const session: Session = { userId, name: display };
        try {
          await tokenProvider(session)(); // Fails here, with a clear message, when the server has no dev tokens.
          saveSession(session);
          void start(session);
        } catch (err) {
          error.textContent = err instanceof NoDevTokens ? err.message : `Could not sign in: ${(err as Error).message}`;
          button.disabled = false;
        }
      },
    },
    h("h1", {}, h("img", { src: "favicon.svg", alt: "" }), "edge-chat"),
    h("p", {}, "Real-time rooms and direct messages on Cloudflare Workers and Durable Objects."),
    h("label", { for: "name" }, "Your name"),
    name,
    h("p", { class: "hint" }, "Development sign-in: no password. The same name is the same account, in any tab."),
    error,
    button,
  );
  replace(root, h("div", { class: "login" }, form));
  name.focus();
}

async function start(session: Session): Promise<void> {
  app = new App(session, root, () => void signOut());
  try {
    await app.start();
  } catch (err) {
    console.error(err);
  }
}

async function signOut(): Promise<void> {
  clearSession();
  const current = app;
  app = null;
  history.replaceState(null, "", location.pathname);
  await current?.stop();
  showLogin();
}

const session = loadSession();
if (session) void start(session);
else showLogin();
