// The playground's page: draws the channel, threads, modal and Home tab as the chosen person sees them,
// and tells the playground's server what that person did (it signs and sends it to the bot as Slack would).
// Everything the bot wrote is put in the page as text nodes, never as HTML.
"use strict";

const COMMAND = "/data-request";
const EMOJI = {
  hourglass_flowing_sand: "⏳", white_check_mark: "✅", x: "❌", no_entry: "⛔", arrow_down: "⬇️", lock: "🔒",
  alarm_clock: "⏰", rotating_light: "🚨", tada: "🎉", raised_hand: "✋", pause_button: "⏸️", wastebasket: "🗑️",
  no_entry_sign: "🚫", arrows_counterclockwise: "🔄", warning: "⚠️", email: "📧", inbox_tray: "📥",
  outbox_tray: "📤", mag: "🔍", hourglass: "⌛", calendar: "📅", bust_in_silhouette: "👤", heavy_check_mark: "✔️",
  information_source: "ℹ️", memo: "📝", package: "📦", clock3: "🕒", wave: "👋", eyes: "👀", key: "🔑",
  shield: "🛡️", page_facing_up: "📄", question: "❓", exclamation: "❗", link: "🔗", house: "🏠", bell: "🔔",
};

const state = { user: localStorage.getItem("playground-person") || "U0ALICE", page: "channel", thread: null,
  data: null, version: -1, poll: 0, modalKey: "" };
const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

// ------------------------------------------------------------------ talking to the playground's server

async function send(what, body) {
  const answer = await fetch("/playground/api/" + what, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: state.user, ...body }),
  });
  if (!answer.ok) toast(await answer.text());
}

async function poll() {
  const mine = ++state.poll;
  for (;;) {
    try {
      const answer = await fetch(`/playground/api/state?user=${encodeURIComponent(state.user)}&after=${state.version}`);
      if (mine !== state.poll) return;
      if (!answer.ok) throw new Error(await answer.text());
      const data = await answer.json();
      state.version = data.version;
      state.data = data;
      render();
    } catch (error) {
      if (mine !== state.poll) return;
      await new Promise((done) => setTimeout(done, 1000));
    }
  }
}

function toast(text) {
  let box = $("toast");
  if (!box) { box = el("div"); box.id = "toast"; document.body.append(box); }
  box.textContent = text;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.remove(), 4000);
}

// ------------------------------------------------------------------ mrkdwn

const INLINE = /```([\s\S]+?)```|`([^`\n]+)`|<([^<>\n]+)>|(?<![\w*])\*(?!\s)([^*\n]+?)\*(?![\w*])|(?<![\w])_(?!\s)([^_\n]+?)_(?![\w])|(?<![\w~])~(?!\s)([^~\n]+?)~(?![\w~])|:([a-z0-9_+-]+):/g;

function unescape(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

function mrkdwn(text, parent) {
  const into = parent || document.createDocumentFragment();
  let at = 0;
  INLINE.lastIndex = 0;
  const pattern = new RegExp(INLINE.source, "g");
  for (let match; (match = pattern.exec(text)); ) {
    if (match.index > at) into.append(unescape(text.slice(at, match.index)));
    at = match.index + match[0].length;
    const [, pre, code, special, bold, italic, strike, emoji] = match;
    if (pre !== undefined) into.append(el("pre", null, unescape(pre)));
    else if (code !== undefined) into.append(el("code", null, unescape(code)));
    else if (special !== undefined) into.append(specialNode(special));
    else if (bold !== undefined) into.append(mrkdwn(bold, el("b")));
    else if (italic !== undefined) into.append(mrkdwn(italic, el("i")));
    else if (strike !== undefined) into.append(mrkdwn(strike, el("s")));
    else into.append(EMOJI[emoji] || match[0]);
  }
  if (at < text.length) into.append(unescape(text.slice(at)));
  return into;
}

function specialNode(inner) {
  const bar = inner.indexOf("|");
  const target = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? null : unescape(inner.slice(bar + 1));
  const people = (state.data && state.data.people) || {};
  if (target.startsWith("@U") || target.startsWith("@W")) {
    const id = target.slice(1);
    const name = id === (state.data && state.data.bot) ? "data-request" : people[id] || label || id;
    return el("span", "mention", "@" + name);
  }
  if (target.startsWith("#C")) return el("span", "mention", "#" + (label || "compliance"));
  if (target.startsWith("!date^")) return document.createTextNode(slackDate(target, label));
  if (target.startsWith("!")) return el("span", "mention", "@" + (label || target.slice(1).split("^")[0]));
  const permalink = /^https:\/\/slack\.local\/archives\/\w+\/p(\d+)(\d{6})$/.exec(target);
  if (permalink) {  // a link to a message of this channel (the loopback Slack's permalinks): open its thread here
    const link = el("a", null, label || "message");
    link.href = "#";
    link.addEventListener("click", (event) => {
      event.preventDefault();
      state.thread = `${permalink[1]}.${permalink[2]}`;
      openPage("channel");
    });
    return link;
  }
  if (/^(https?:|mailto:)/.test(target)) {
    const link = el("a", null, label || unescape(target));
    link.href = unescape(target);
    link.target = "_blank";
    link.rel = "noopener";
    return link;
  }
  return document.createTextNode(label || unescape(target));
}

function slackDate(target, fallback) {
  const [, stamp, format] = target.split("^");
  const when = new Date(Number(stamp) * 1000);
  if (Number.isNaN(when.getTime())) return fallback || "";
  const pad = (n) => String(n).padStart(2, "0");
  const tokens = {
    date_num: `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}`,
    date: when.toLocaleDateString(undefined, { month: "long", day: "numeric", year: "numeric" }),
    date_short: when.toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" }),
    date_long: when.toLocaleDateString(undefined, { weekday: "long", month: "long", day: "numeric", year: "numeric" }),
    time: `${pad(when.getHours())}:${pad(when.getMinutes())}`,
    time_secs: `${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}`,
  };
  tokens.date_pretty = tokens.date;
  tokens.date_short_pretty = tokens.date_short;
  tokens.date_long_pretty = tokens.date_long;
  return (format || "{date_num}").replace(/\{(\w+)\}/g, (all, name) => tokens[name] || all);
}

function textObject(object, into) {
  if (!object) return into;
  if (object.type === "mrkdwn") return mrkdwn(object.text || "", into);
  into.append(object.text || "");
  return into;
}

// ------------------------------------------------------------------ Block Kit

function blocks(list, where, ts) {
  const box = el("div", "blocks");
  for (const block of list) box.append(blockNode(block, where, ts));
  return box;
}

function blockNode(block, where, ts) {
  switch (block.type) {
    case "section": {
      const node = el("div", "block section");
      const main = el("div", "section-main");
      if (block.text) main.append(textObject(block.text, el("div")));
      if (block.fields) {
        const grid = el("div", "fields");
        for (const field of block.fields) grid.append(textObject(field, el("div")));
        main.append(grid);
      }
      node.append(main);
      if (block.accessory) node.append(element(block.accessory, block.block_id, where, ts));
      return node;
    }
    case "header": return textObject(block.text, el("div", "block header"));
    case "divider": return el("hr", "block divider");
    case "context": {
      const node = el("div", "block context");
      for (const item of block.elements || []) {
        node.append(item.type === "image" ? el("span", null, "🖼") : textObject(item, el("span")));
      }
      return node;
    }
    case "actions": {
      const node = el("div", "block actions");
      for (const item of block.elements || []) node.append(element(item, block.block_id, where, ts));
      return node;
    }
    case "input": return inputBlock(block);
    case "image": return el("div", "block unknown", "[image: " + (block.alt_text || "") + "]");
    case "rich_text": return el("div", "block", richText(block));
    default: return el("div", "block unknown", `[${block.type} block]`);
  }
}

function richText(block) {
  const parts = [];
  const walk = (item) => {
    if (item.text) parts.push(item.text);
    for (const child of item.elements || []) walk(child);
  };
  walk(block);
  return parts.join("");
}

function element(item, blockId, where, ts) {
  const act = (extra) => send("action", { where, ts,
    action: { action_id: item.action_id, block_id: blockId, type: item.type, ...extra } });
  if (item.type === "button") {
    const button = el("button", "button" + (item.style ? " " + item.style : ""), item.text ? item.text.text : "");
    button.type = "button";
    button.dataset.actionId = item.action_id || "";
    button.addEventListener("click", async () => {
      if (item.url) window.open(item.url, "_blank", "noopener");
      button.disabled = true;
      try { await act({ value: item.value, text: item.text }); } finally { button.disabled = false; }
    });
    return button;
  }
  if (item.type === "static_select" || item.type === "overflow") {
    const select = el("select", "block-select");
    const options = item.options || (item.option_groups || []).flatMap((group) => group.options);
    select.append(el("option", null, item.placeholder ? item.placeholder.text : "…"));
    options.forEach((option, index) => {
      const choice = el("option", null, option.text.text);
      choice.value = String(index);
      select.append(choice);
    });
    select.addEventListener("change", () => {
      const option = options[Number(select.value)];
      if (option) act({ selected_option: option });
    });
    return select;
  }
  return el("span", "unknown", `[${item.type}]`);
}

// ------------------------------------------------------------------ messages

function messageNode(message, threaded) {
  const node = el("div", "msg" + (message.visible_to ? " ephemeral" : ""));
  node.dataset.ts = message.ts;
  node.append(el("div", "avatar", "DR"));
  const body = el("div", "msg-body");
  const meta = el("div", "meta");
  meta.append(el("b", null, "data-request"), el("span", "badge", "APP"));
  const time = el("time", null, new Date(Number(message.ts) * 1000).toLocaleTimeString([], { hour: "2-digit",
    minute: "2-digit" }));
  meta.append(time);
  body.append(meta);
  if (message.visible_to) body.append(el("div", "only-you", "👁 Only visible to you"));
  if (message.blocks && message.blocks.length) body.append(blocks(message.blocks, "message", message.ts));
  else body.append(mrkdwn(message.text || "", el("div", "block")));
  if (!threaded && message.reply_count) {
    const link = el("button", "replies", message.reply_count === 1 ? "1 reply" : `${message.reply_count} replies`);
    link.type = "button";
    link.addEventListener("click", () => { state.thread = message.ts; render(); });
    body.append(link);
  }
  node.append(body);
  return node;
}

// Redraw a part of the page only when what it shows changed, so a click or a typed value is never lost to a poll.
const drawn = {};
function changed(part, value) {
  const key = JSON.stringify(value);
  if (drawn[part] === key) return false;
  drawn[part] = key;
  return true;
}

function fill(box, nodes, emptyText) {
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  box.replaceChildren(...nodes);
  if (!nodes.length && emptyText) box.append(el("div", "empty", emptyText));
  if (atBottom) box.scrollTop = box.scrollHeight;
}

function render() {
  const data = state.data;
  if (!data) return;
  const person = $("person");
  if (!person.options.length) {
    for (const [id, name] of Object.entries(data.people)) {
      const option = el("option", null, name);
      option.value = id;
      person.append(option);
    }
  }
  person.value = state.user;
  $("nav-channel").classList.toggle("active", state.page === "channel");
  $("nav-home").classList.toggle("active", state.page === "home");
  $("channel-view").hidden = state.page !== "channel";
  $("home-view").hidden = state.page !== "home";
  $("main-title").textContent = state.page === "home" ? "data-request" : "# compliance";
  $("main-sub").textContent = "you are " + data.people[state.user];

  const top = data.messages.filter((m) => !m.thread_ts || m.thread_ts === m.ts);
  if (changed("messages", [state.user, top])) {
    fill($("messages"), top.map((m) => messageNode(m, false)),
      "Nothing here yet. Type /data-request help, or /data-request jane.doe@example.com.");
  }

  const parent = state.thread && data.messages.find((m) => m.ts === state.thread);
  $("thread").hidden = !parent;
  const inThread = parent ? data.messages.filter((m) => m.thread_ts === parent.ts) : [];
  if (parent && changed("thread", [state.user, parent, inThread])) {
    const replies = data.messages.filter((m) => m.thread_ts === parent.ts && m.ts !== parent.ts);
    const count = replies.filter((m) => !m.visible_to).length;  // as Slack counts: ephemerals are not replies
    const divider = el("div", "thread-divider", count === 1 ? "1 reply" : `${count} replies`);
    fill($("thread-messages"), [messageNode(parent, true), divider, ...replies.map((m) => messageNode(m, true))]);
  }

  const home = $("home");
  if (changed("home", [state.user, data.home])) {
    if (data.home) home.replaceChildren(blocks(data.home.blocks || [], "home", ""));
    else home.replaceChildren(el("div", "empty", "Opening the Home tab…"));
  }
  renderModal(data.modal);
}

// ------------------------------------------------------------------ modals

function inputBlock(block) {
  const node = el("div", "input-block");
  node.dataset.blockId = block.block_id;
  const item = block.element || {};
  node.dataset.type = item.type;
  node.dataset.actionId = item.action_id;
  const label = el("label");
  textObject(block.label, label);
  if (block.optional) label.append(el("span", "optional", " (optional)"));
  node.append(label);
  let field;
  if (item.type === "plain_text_input" || item.type === "email_text_input" || item.type === "number_input"
      || item.type === "url_text_input") {
    field = el(item.multiline ? "textarea" : "input");
    if (!item.multiline) field.type = item.type === "number_input" ? "number" : "text";
    field.value = item.initial_value || "";
    if (item.placeholder) field.placeholder = item.placeholder.text;
    if (item.max_length) field.maxLength = item.max_length;
  } else if (item.type === "datepicker") {
    field = el("input");
    field.type = "date";
    field.value = item.initial_date || "";
  } else if (item.type === "static_select") {
    field = el("select");
    field.append(el("option", null, item.placeholder ? item.placeholder.text : "Choose…"));
    field.options[0].value = "";
    for (const option of item.options || []) {
      const choice = el("option", null, option.text.text);
      choice.value = option.value;
      field.append(choice);
    }
    if (item.initial_option) field.value = item.initial_option.value;
  } else if (item.type === "conversations_select" || item.type === "channels_select") {
    // The playground's one channel. A global shortcut has no current conversation, so
    // default_to_current_conversation leaves the select empty there, as in Slack.
    field = el("select");
    field.append(el("option", null, item.placeholder ? item.placeholder.text : "Select a channel"));
    field.options[0].value = "";
    for (const [id, name] of Object.entries(state.data.channels || {})) {
      const choice = el("option", null, "# " + name);
      choice.value = id;
      field.append(choice);
    }
    field.value = item.initial_conversation || item.initial_channel || "";
  } else if (item.type === "radio_buttons" || item.type === "checkboxes") {
    field = el("div");
    for (const option of item.options || []) {
      const choice = el("label", "choice");
      const box = el("input");
      box.type = item.type === "radio_buttons" ? "radio" : "checkbox";
      box.name = block.block_id;
      box.value = option.value;
      const initial = item.initial_option ? [item.initial_option] : item.initial_options || [];
      box.checked = initial.some((o) => o.value === option.value);
      choice.append(box, textObject(option.text, el("span")));
      field.append(choice);
    }
  } else {
    field = el("div", "unknown", `[${item.type}]`);
  }
  field.classList.add("field");
  node.append(field);
  if (block.hint) node.append(textObject(block.hint, el("div", "hint")));
  return node;
}

function fieldValue(node) {
  const item = node.querySelector(".field");
  const type = node.dataset.type;
  const find = (value) => {
    const view = state.data.modal.view;
    const block = view.blocks.find((b) => b.block_id === node.dataset.blockId);
    return (block.element.options || []).find((o) => o.value === value) || null;
  };
  if (type === "datepicker") return { type, selected_date: item.value || null };
  if (type === "static_select") return { type, selected_option: item.value ? find(item.value) : null };
  if (type === "conversations_select") return { type, selected_conversation: item.value || null };
  if (type === "channels_select") return { type, selected_channel: item.value || null };
  if (type === "radio_buttons") {
    const checked = item.querySelector("input:checked");
    return { type, selected_option: checked ? find(checked.value) : null };
  }
  if (type === "checkboxes") {
    return { type, selected_options: [...item.querySelectorAll("input:checked")].map((b) => find(b.value)) };
  }
  return { type, value: item.value === "" ? null : item.value };
}

function renderModal(modal) {
  const backdrop = $("modal-backdrop");
  const key = modal ? JSON.stringify(modal) : "";
  if (key === state.modalKey) return;
  state.modalKey = key;
  if (!modal) { backdrop.hidden = true; return; }
  const kept = {};
  for (const node of document.querySelectorAll("#modal-blocks .input-block")) {
    const field = node.querySelector(".field");
    if (field && "value" in field) kept[node.dataset.blockId] = field.value;
  }
  const view = modal.view;
  $("modal-title").textContent = view.title ? view.title.text : "";
  $("modal-submit").textContent = view.submit ? view.submit.text : "Submit";
  $("modal-submit").hidden = !view.submit && !(view.blocks || []).some((b) => b.type === "input");
  $("modal-close").textContent = view.close ? view.close.text : "Cancel";
  const box = $("modal-blocks");
  box.replaceChildren(...(view.blocks || []).map((b) => blockNode(b, "modal", "")));
  for (const node of box.querySelectorAll(".input-block")) {
    const field = node.querySelector(".field");
    if (node.dataset.blockId in kept && "value" in field) field.value = kept[node.dataset.blockId];
    const error = modal.errors[node.dataset.blockId];
    if (error) {
      node.classList.add("invalid");
      node.append(el("div", "field-error", error));
    }
  }
  const general = modal.errors[""];
  $("modal-error").hidden = !general;
  $("modal-error").textContent = general || "";
  backdrop.hidden = false;
}

async function submitModal(event) {
  event.preventDefault();
  const values = {};
  for (const node of document.querySelectorAll("#modal-blocks .input-block")) {
    values[node.dataset.blockId] = { [node.dataset.actionId]: fieldValue(node) };
  }
  await send("submit", { values });
}

// ------------------------------------------------------------------ the person's own actions

async function compose(event) {
  event.preventDefault();
  const input = $("composer-input");
  const typed = input.value.trim();
  if (!typed) return;
  const hint = $("composer-hint");
  if (!typed.startsWith(COMMAND)) {
    hint.hidden = false;
    hint.textContent = `Only slash commands reach the bot here: type ${COMMAND} help.`;
    return;
  }
  hint.hidden = true;
  input.value = "";
  await send("command", { command: COMMAND, text: typed.slice(COMMAND.length).trim() });
}

function switchPerson() {
  state.user = $("person").value;
  localStorage.setItem("playground-person", state.user);
  state.version = -1;
  state.modalKey = "";
  if (state.page === "home") send("home", {});
  poll();
}

function openPage(page) {
  state.page = page;
  if (page === "home") send("home", {});
  render();
}

function toggleShortcuts() {
  const menu = $("shortcut-menu");
  if (!menu.hidden) { menu.hidden = true; return; }
  const items = ((state.data && state.data.shortcuts) || []).map((shortcut) => {
    const item = el("button", null, shortcut.name);
    item.type = "button";
    item.addEventListener("click", () => {
      menu.hidden = true;
      send("shortcut", { callback_id: shortcut.callback_id });
    });
    return item;
  });
  menu.replaceChildren(el("div", "title", "Shortcuts: data-request"), ...items);
  menu.hidden = false;
}

$("composer").addEventListener("submit", compose);
$("composer-shortcut").addEventListener("click", toggleShortcuts);
$("person").addEventListener("change", switchPerson);
$("nav-channel").addEventListener("click", () => openPage("channel"));
$("nav-home").addEventListener("click", () => openPage("home"));
$("thread-close").addEventListener("click", () => { state.thread = null; render(); });
$("modal").addEventListener("submit", submitModal);
for (const id of ["modal-close", "modal-x"]) $(id).addEventListener("click", () => send("close", {}));
poll();
