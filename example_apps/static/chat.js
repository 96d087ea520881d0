// The chat page of the example apps: each answer streams in (Server-Sent Events read from a
// fetch), and the stream's final "feedback" event hands the widget its trace id and token.
// Settings come from the form: action (the chat URL), data-rating (show 1-5 stars), and a
// Django CSRF field when there is one. No inline script: the page runs under a strict CSP.
"use strict";

const form = document.getElementById("ask");
const log = document.getElementById("log");
const input = form.elements.message;

function element(tag, className, text) {
  const el = document.createElement(tag);
  el.className = className;
  if (text) el.textContent = text; // answers and messages are text, never HTML
  return el;
}

// Split a buffer into complete SSE events; returns [events, rest].
function parseEvents(buffer) {
  const blocks = buffer.replace(/\r\n?/g, "\n").split("\n\n");
  const rest = blocks.pop();
  const events = blocks.map((block) => {
    const event = { name: "message", data: [] };
    for (const line of block.split("\n")) {
      const [field, ...value] = line.split(":");
      const text = value.join(":").replace(/^ /, "");
      if (field === "event") event.name = text;
      else if (field === "data") event.data.push(text);
    }
    return { name: event.name, data: event.data.join("\n") };
  });
  return [events, rest];
}

async function ask(message) {
  const turn = element("article", "turn");
  const bot = element("div", "bot");
  const answer = element("span", "answer");
  if (form.dataset.rating !== undefined) bot.setAttribute("data-feedback-rating", "");
  bot.append(answer);
  turn.append(element("p", "you", message), bot);
  log.append(turn);
  const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
  const csrf = form.elements.csrfmiddlewaretoken;
  if (csrf) headers["X-CSRFToken"] = csrf.value;
  const response = await fetch(form.action, {
    method: "POST",
    headers,
    credentials: "same-origin",
    body: JSON.stringify({ message, stream: true }),
  });
  if (!response.ok || !response.body) {
    bot.append(element("p", "error", `The chat answered ${response.status}.`));
    return;
  }
  const words = [];
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    let events;
    [events, buffer] = parseEvents(buffer + value);
    for (const event of events) {
      if (event.name === "feedback") {
        // the widget renders under the finished answer
        FeedbackWidget.fromEvent(bot, event.data);
      } else {
        words.push(event.data);
        answer.textContent = words.join(" ");
      }
    }
  }
  bot.dataset.done = "true";
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const message = input.value.trim();
  if (!message) return;
  input.value = "";
  ask(message).catch((error) => {
    log.append(element("p", "error", `The chat failed: ${error.message}`));
  });
});
