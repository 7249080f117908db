// The log-in / sign-up screen. Calls `onDone()` once the tokens are stored.

import { $ } from "./dom.js";

const MODES = {
  login: {
    title: "Welcome back", subtitle: "Log in to pick up where you left off.",
    submit: "Log in", switchText: "New here?", switchButton: "Create an account",
    passwordAutocomplete: "current-password",
  },
  signup: {
    title: "Create your account", subtitle: "It takes ten seconds. No email is ever sent.",
    submit: "Sign up", switchText: "Already have an account?", switchButton: "Log in",
    passwordAutocomplete: "new-password",
  },
};

export function showAuth(api, onDone) {
  const root = $("#auth");
  const form = $("#auth-form");
  const error = $("#auth-error");
  let mode = "login";

  function setMode(next) {
    mode = next;
    const text = MODES[mode];
    $("#auth-title").textContent = text.title;
    $("#auth-subtitle").textContent = text.subtitle;
    $("#auth-submit").textContent = text.submit;
    $("#auth-switch-text").textContent = text.switchText;
    $("#auth-switch").textContent = text.switchButton;
    $("#auth-password").autocomplete = text.passwordAutocomplete;
    $("#email-field").hidden = mode !== "signup";
    $("#auth-email").required = mode === "signup";
    error.hidden = true;
  }

  $("#auth-switch").onclick = () => {
    setMode(mode === "login" ? "signup" : "login");
    $("#auth-username").focus();
  };

  form.onsubmit = async (event) => {
    event.preventDefault();
    const username = $("#auth-username").value.trim();
    const password = $("#auth-password").value;
    const email = $("#auth-email").value.trim();
    const submit = $("#auth-submit");
    error.hidden = true;
    submit.disabled = true;
    try {
      if (mode === "signup") await api.signup(username, email, password);
      else await api.login(username, password);
      root.hidden = true;
      form.reset();
      onDone();
    } catch (failure) {
      error.textContent = failure.status === 401
        ? "That username and password do not match."
        : failure.status === 429
          ? "Too many attempts. Wait a little and try again."
          : failure.message;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  };

  setMode("login");
  $("#chat").hidden = true;
  root.hidden = false;
  $("#auth-username").focus();
}
