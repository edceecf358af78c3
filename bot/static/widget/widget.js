/*! kefu chat bubble — add it to any page with one line:
 *    <script src="http://HOST:5005/widget.js" data-kefu-lang="auto"></script>
 *  data-kefu-lang: auto (the browser's language) | zh | zh-Hant (traditional characters; also zh-TW, zh-HK) | en.
 *  Styling: CSS variables, see widget.css.
 *  Page API: KefuWidget.open() / close() / toggle() / setLanguage("zh"|"zh-Hant"|"en"); any element with
 *  data-kefu-open (optionally data-kefu-message="text to prefill") opens the chat when clicked.
 *  Protocol: docs/widget.md. Every message is rendered with textContent: shop or shopper text is never HTML.
 */
(function () {
  "use strict";
  if (window.KefuWidget) return;

  var script = document.currentScript || document.querySelector('script[src$="/widget.js"]');
  if (!script) return;
  var BASE = new URL(script.src, location.href).origin;
  var WS_URL = BASE.replace(/^http/, "ws") + "/api/widget/ws";
  var KEY = "kefu:" + BASE + ":";
  var RETRY_MIN_MS = 1000, RETRY_MAX_MS = 30000, TYPING_HIDE_MS = 30000, TYPING_SEND_MS = 3000;

  // Every text the panel shows: [English, 简体中文, 繁體中文 (OpenCC s2tw of the simplified, as the bot's replies)].
  var TEXTS = {
    open: ["Open chat", "打开在线客服", "打開在線客服"],
    close: ["Minimise chat", "收起对话", "收起對話"],
    title: ["Customer service", "在线客服", "在線客服"],
    status_bot: ["Our assistant answers right away", "智能客服 · 即时回复", "智能客服 · 即時回覆"],
    status_waiting: ["Waiting for a person…", "正在为您转接人工客服…", "正在為您轉接人工客服…"],
    status_queue: ["You are number {n} in line", "您前面还有 {n} 位", "您前面還有 {n} 位"],
    status_agent: ["{name} · customer service", "{name} · 人工客服", "{name} · 人工客服"],
    status_nobody: ["Nobody is online right now — wait or leave a message", "暂时没有客服在线——可以等待，或给我们留言", "暫時沒有客服在線——可以等待，或給我們留言"],
    status_leave: ["Leave us a message", "请给我们留言", "請給我們留言"],
    status_ticket: ["Message received — we'll reply here", "已收到您的留言，我们会在这里回复您", "已收到您的留言，我們會在這裡回覆您"],
    status_closed: ["Our team is back {when}", "人工客服{when}恢复服务", "人工客服{when}恢復服務"],
    status_unavailable: ["Nobody is online — you can leave a message", "暂时没有客服在线，可以给我们留言", "暫時沒有客服在線，可以給我們留言"],
    status_offline: ["Reconnecting…", "正在重新连接…", "正在重新連接…"],
    reconnecting: ["Connection lost — reconnecting…", "网络已断开，正在重新连接…", "網絡已斷開，正在重新連接…"],
    human: ["Talk to a person", "转人工", "轉人工"],
    cancel: ["Stop waiting", "取消排队", "取消排隊"],
    input: ["Message", "消息", "消息"],
    placeholder: ["Type your question…", "请输入您的问题…", "請輸入您的問題…"],
    placeholder_leave: ["Leave a message for our team…", "请留言，客服上线后会回复您…", "請留言，客服上線後會回覆您…"],
    send: ["Send", "发送", "發送"],
    attach: ["Attach an image or PDF", "发送图片或 PDF", "發送圖片或 PDF"],
    greeting: ["Hi there! How can we help you today?", "您好！有什么可以帮您？", "您好！有什麼可以幫您？"],
    popular: ["Popular questions", "大家都在问", "大家都在問"],
    requested: ["Connecting you to a person…", "正在为您转接人工客服…", "正在為您轉接人工客服…"],
    queued: ["You are number {n} in line, about {m}.", "您当前排在第 {n} 位，预计等待 {m}。", "您當前排在第 {n} 位，預計等待 {m}。"],
    queued_nobody: ["Nobody is online right now — wait or leave a message. You are number {n} in line.",
                    "暂时没有客服在线——您可以继续等待（当前排在第 {n} 位），或给我们留言。",
                    "暫時沒有客服在線——您可以繼續等待（當前排在第 {n} 位），或給我們留言。"],
    leave: ["Leave a message", "留言", "留言"],
    left_to_write: ["You left the line to leave a message", "已退出排队，改为留言", "已退出排隊，改為留言"],
    minutes: ["{m} minutes", "{m} 分钟", "{m} 分鐘"],
    minute: ["1 minute", "1 分钟", "1 分鐘"],
    assigned: ["{name} has joined the conversation", "客服 {name} 已接入对话", "客服 {name} 已接入對話"],
    ended: ["Conversation ended", "对话已结束", "對話已結束"],
    cancelled: ["You're back with our assistant", "已返回智能客服", "已返回智能客服"],
    unavailable: ["Agents are offline — leave a message and we'll get back to you.", "人工客服暂时不在线，请留言，我们会尽快回复您。", "人工客服暫時不在線，請留言，我們會盡快回復您。"],
    unavailable_closed: ["We're closed right now — leave a message and we'll get back to you.", "现在不在人工服务时间，请留言，我们会尽快回复您。", "現在不在人工服務時間，請留言，我們會盡快回復您。"],
    next_open: ["We're back {when}.", "恢复服务时间：{when}。", "恢復服務時間：{when}。"],
    ticket: ["Message received (ticket {id}). We'll reply here.", "已收到您的留言（工单号 {id}），我们会在这里回复您。", "已收到您的留言（工單號 {id}），我們會在這裡回覆您。"],
    rate: ["How did we do?", "请为本次服务打分", "請為本次服務打分"],
    star: ["{n} star", "{n} 星", "{n} 星"],
    stars: ["{n} stars", "{n} 星", "{n} 星"],
    rated: ["Thanks for your feedback!", "感谢您的评价！", "感謝您的評價！"],
    sending: ["Sending…", "发送中…", "發送中…"],
    waiting_net: ["Will be sent when you're back online", "网络恢复后自动发送", "網絡恢復後自動發送"],
    failed: ["Not sent.", "发送失败。", "發送失敗。"],
    retry: ["Retry", "重试", "重試"],
    too_fast: ["You're sending messages quickly — we'll send this in a moment.", "您发送得太快了，稍后将自动发送。", "您發送得太快了，稍後將自動發送。"],
    too_big: ["That file is too big (the limit is {mb} MB).", "文件太大（上限 {mb} MB）。", "文件太大（上限 {mb} MB）。"],
    bad_type: ["Only images (PNG, JPEG, GIF, WebP) and PDF files can be sent.", "只能发送图片（PNG、JPEG、GIF、WebP）或 PDF 文件。", "只能發送圖片（PNG、JPEG、GIF、WebP）或 PDF 文件。"],
    upload_failed: ["Upload failed", "上传失败", "上傳失敗"],
    unread: ["{n} unread", "{n} 条未读", "{n} 條未讀"],
    agent_role: ["customer service", "人工客服", "人工客服"],
    typing_bot: ["The assistant is typing…", "正在输入…", "正在輸入…"],
    typing_agent: ["{name} is typing…", "{name} 正在输入…", "{name} 正在輸入…"],
    suggestions: ["Suggested questions", "推荐问题", "推薦問題"],
    replies: ["Quick replies", "快捷回复", "快捷回覆"],
    powered: ["Powered by kefu", "由 kefu 提供支持", "由 kefu 提供支持"],
    you: ["You", "我", "我"],
    file: ["File", "文件", "文件"]
  };

  // -- small helpers -------------------------------------------------------------------------------------------

  // "en", "zh" or "zh-Hant": traditional characters for Taiwan, Hong Kong and Macau (zh-TW, zh-HK, zh-MO, zh-Hant…)
  function pickLanguage(value) {
    var langs = value && value !== "auto" ? [value]
      : navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
    var tag = String(langs[0] || "en").toLowerCase();
    if (tag.indexOf("zh") !== 0) return "en";
    return /^zh-(hant|tw|hk|mo)\b/.test(tag) ? "zh-Hant" : "zh";
  }
  var lang = pickLanguage(script.getAttribute("data-kefu-lang"));
  function locale() { return { en: "en", zh: "zh-CN", "zh-Hant": "zh-TW" }[lang]; }
  function t(key, values) {
    var text = TEXTS[key] ? TEXTS[key][["en", "zh", "zh-Hant"].indexOf(lang)] : key;
    return text.replace(/\{(\w+)\}/g, function (_, name) { return values && values[name] != null ? values[name] : ""; });
  }
  function el(tag, className, attrs) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  function icon(paths, className) {
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (className) svg.setAttribute("class", className);
    paths.forEach(function (d) {
      var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
      path.setAttribute("d", d);
      svg.appendChild(path);
    });
    return svg;
  }
  var ICONS = {
    chat: ["M12 3C6.5 3 2 6.9 2 11.7c0 2.6 1.3 4.9 3.4 6.5L4.6 22l4.3-2.3c1 .3 2 .4 3.1.4 5.5 0 10-3.9 10-8.7S17.5 3 12 3zm-4 10a1.3 1.3 0 110-2.6A1.3 1.3 0 018 13zm4 0a1.3 1.3 0 110-2.6 1.3 1.3 0 010 2.6zm4 0a1.3 1.3 0 110-2.6 1.3 1.3 0 010 2.6z"],
    close: ["M18.3 5.7a1 1 0 00-1.4 0L12 10.6 7.1 5.7a1 1 0 00-1.4 1.4l4.9 4.9-4.9 4.9a1 1 0 101.4 1.4l4.9-4.9 4.9 4.9a1 1 0 001.4-1.4L13.4 12l4.9-4.9a1 1 0 000-1.4z"],
    minimise: ["M6 11h12a1 1 0 010 2H6a1 1 0 010-2z"],
    send: ["M3.4 20.4l17.5-7.5a1 1 0 000-1.8L3.4 3.6a1 1 0 00-1.4 1.2L4.5 11 13 12l-8.5 1-2.5 6.2a1 1 0 001.4 1.2z"],
    attach: ["M16.5 6.5v10a4.5 4.5 0 01-9 0V5.8a3 3 0 016 0v9.7a1.5 1.5 0 01-3 0V6.5H9v9a3 3 0 006 0V5.8a4.5 4.5 0 00-9 0v10.7a6 6 0 0012 0v-10z"],
    person: ["M12 12a4 4 0 100-8 4 4 0 000 8zm0 2c-3.3 0-8 1.7-8 5v1h16v-1c0-3.3-4.7-5-8-5z"],
    file: ["M6 2h8l6 6v12a2 2 0 01-2 2H6a2 2 0 01-2-2V4a2 2 0 012-2zm7 1.5V9h5.5z"]
  };
  function store(kind) {
    try { return kind === "session" ? window.sessionStorage : window.localStorage; } catch (e) { return null; }
  }
  function load(name, fallback, kind) {
    try { var v = store(kind).getItem(KEY + name); return v == null ? fallback : JSON.parse(v); } catch (e) { return fallback; }
  }
  function save(name, value, kind) {
    try {
      if (value == null) store(kind).removeItem(KEY + name); else store(kind).setItem(KEY + name, JSON.stringify(value));
    } catch (e) { /* storage full or blocked: the chat still works for this page */ }
  }
  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function absolute(url) {
    if (typeof url !== "string") return null;
    if (/^https?:\/\//i.test(url)) return url;
    return url.charAt(0) === "/" && url.charAt(1) !== "/" ? BASE + url : null;
  }
  function clock(ts) {
    if (!ts) return "";
    try { return new Date(ts * 1000).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" }); }
    catch (e) { return ""; }
  }
  var ZONE_NAMES = {
    zh: { "Asia/Shanghai": "北京时间", "Asia/Hong_Kong": "香港时间", "Asia/Taipei": "台北时间" },
    "zh-Hant": { "Asia/Shanghai": "北京時間", "Asia/Hong_Kong": "香港時間", "Asia/Taipei": "台北時間" }
  };
  function when(iso, zone) { // "Mon 09:00 (Asia/Shanghai)": in the shop's time zone, and saying which
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    var options = { weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    var text;
    var at = lang === "en" ? "en-GB" : locale();
    try { text = d.toLocaleString(at, Object.assign({ timeZone: zone || undefined }, options)); }
    catch (e) { zone = null; text = d.toLocaleString(at, options); } // unknown zone
    zone = zone || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
    return lang === "en" ? text + " (" + zone + ")" : text + "（" + (ZONE_NAMES[lang][zone] || zone) + "）";
  }

  // -- state ---------------------------------------------------------------------------------------------------

  var S = {
    token: load("token", null), conversationId: null, limits: null, lastSeq: 0, seenSeq: load("seen", 0),
    unread: load("unread", 0), open: !!load("open", false, "session"), started: false, starting: null,
    ws: null, ready: false, attempts: 0, retryTimer: null, outbox: load("outbox", []),
    handoff: null, details: {}, agent: null, csatPending: false, waitingRow: null, typingTimer: null,
    lastTypingSent: 0, typingOffTimer: null, suggestSeq: 0, suggestTimer: null, activeSuggestion: -1,
    everConnected: false, greeted: false, held: {}, fetching: false, fetchFailures: 0, fetchTimer: null
  };

  // -- DOM -----------------------------------------------------------------------------------------------------

  var root = el("div", "kefu-root", { id: "kefu-root", lang: locale() });
  root.hidden = true; // until widget.css has loaded: no flash of an unstyled panel
  var launcher = el("button", "", { id: "kefu-launcher", type: "button", "aria-controls": "kefu-panel", "aria-expanded": "false" });
  launcher.appendChild(icon(ICONS.chat, "kefu-icon-chat"));
  launcher.appendChild(icon(ICONS.close, "kefu-icon-close"));
  var badge = el("span", "kefu-badge", { "aria-hidden": "true" });
  badge.hidden = true;
  launcher.appendChild(badge);

  var panel = el("section", "", { id: "kefu-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "kefu-title" });
  panel.hidden = true;
  var header = el("header", "kefu-header");
  var avatar = el("div", "kefu-avatar", { "aria-hidden": "true" });
  avatar.appendChild(icon(ICONS.chat));
  var heading = el("div", "kefu-heading");
  var title = el("h2", "kefu-title", { id: "kefu-title" });
  var status = el("p", "kefu-status", { "aria-live": "polite" });
  heading.appendChild(title);
  heading.appendChild(status);
  var humanBtn = el("button", "kefu-human", { type: "button" });
  var humanLabel = el("span");
  humanBtn.appendChild(icon(ICONS.person));
  humanBtn.appendChild(humanLabel);
  var closeBtn = el("button", "kefu-close", { type: "button" });
  closeBtn.appendChild(icon(ICONS.minimise));
  header.appendChild(avatar);
  header.appendChild(heading);
  header.appendChild(humanBtn);
  header.appendChild(closeBtn);

  var banner = el("div", "kefu-banner", { role: "status" });
  banner.hidden = true;
  var log = el("div", "kefu-log", { role: "log", "aria-live": "polite", "aria-relevant": "additions", tabindex: "0" });
  var typing = el("div", "kefu-typing", { "aria-live": "polite" });
  var dots = el("span", "kefu-dots", { "aria-hidden": "true" });
  dots.appendChild(el("i"));
  dots.appendChild(el("i"));
  dots.appendChild(el("i"));
  var typingLabel = el("span", "kefu-typing-label");
  typing.appendChild(dots);
  typing.appendChild(typingLabel);
  typing.hidden = true;
  var rating = el("div", "kefu-rating", { role: "group" });
  var ratingQ = el("p", "", { id: "kefu-rating-q" });
  rating.setAttribute("aria-labelledby", "kefu-rating-q");
  var stars = el("div", "kefu-stars");
  for (var n = 1; n <= 5; n++) {
    var star = el("button", "", { type: "button", "data-score": String(n) });
    star.textContent = "★";
    stars.appendChild(star);
  }
  rating.appendChild(ratingQ);
  rating.appendChild(stars);
  rating.hidden = true;

  var suggest = el("ul", "kefu-suggest", { id: "kefu-suggest", role: "listbox" });
  suggest.hidden = true;
  var form = el("form", "kefu-composer");
  var attachBtn = el("button", "kefu-attach", { type: "button" });
  attachBtn.appendChild(icon(ICONS.attach));
  var fileInput = el("input", "", { type: "file", multiple: "", accept: "image/png,image/jpeg,image/gif,image/webp,application/pdf" });
  fileInput.hidden = true;
  var input = el("textarea", "", {
    id: "kefu-input", rows: "1", role: "combobox", "aria-autocomplete": "list", "aria-controls": "kefu-suggest",
    "aria-expanded": "false", autocomplete: "off", maxlength: "2000"
  });
  var sendBtn = el("button", "", { id: "kefu-send", type: "submit" });
  sendBtn.appendChild(icon(ICONS.send));
  form.appendChild(attachBtn);
  form.appendChild(fileInput);
  form.appendChild(input);
  form.appendChild(sendBtn);
  var footer = el("p", "kefu-footer");

  panel.appendChild(header);
  panel.appendChild(banner);
  panel.appendChild(log);
  panel.appendChild(suggest);
  panel.appendChild(form);
  panel.appendChild(footer);
  root.appendChild(panel);
  root.appendChild(launcher);

  function applyLanguage() {
    root.setAttribute("lang", locale());
    title.textContent = t("title");
    closeBtn.setAttribute("aria-label", t("close"));
    closeBtn.title = t("close");
    attachBtn.setAttribute("aria-label", t("attach"));
    attachBtn.title = t("attach");
    input.setAttribute("aria-label", t("input"));
    sendBtn.setAttribute("aria-label", t("send"));
    sendBtn.title = t("send");
    suggest.setAttribute("aria-label", t("suggestions"));
    ratingQ.textContent = t("rate");
    Array.prototype.forEach.call(stars.children, function (b) {
      var k = Number(b.getAttribute("data-score"));
      b.setAttribute("aria-label", t(k === 1 ? "star" : "stars", { n: k }));
    });
    footer.textContent = t("powered");
    renderHeader();
    renderBadge();
  }

  // -- rendering messages --------------------------------------------------------------------------------------

  var URL_RE = /(https?:\/\/[^\s<>"'，。）)]+)/g;
  function textBlock(text) {
    var frag = document.createDocumentFragment();
    String(text).split(/\n{2,}/).forEach(function (para) {
      var p = el("p");
      var last = 0;
      para.replace(URL_RE, function (match, _u, offset) {
        if (offset > last) p.appendChild(document.createTextNode(para.slice(last, offset)));
        var a = el("a", "", { href: match, target: "_blank", rel: "noopener noreferrer nofollow" });
        a.textContent = match;
        p.appendChild(a);
        last = offset + match.length;
        return match;
      });
      if (last < para.length) p.appendChild(document.createTextNode(para.slice(last)));
      frag.appendChild(p);
    });
    return frag;
  }
  function attachmentEl(att) {
    var url = absolute(att.url);
    var name = String(att.name || t("file"));
    if (!url && !att.localUrl) return null;
    if (String(att.mime || "").indexOf("image/") === 0) {
      var link = el("a", "kefu-attachment", { target: "_blank", rel: "noopener noreferrer" });
      if (url) link.href = url;
      var img = el("img", "", { alt: name, loading: "lazy" });
      img.src = att.localUrl || url;
      link.appendChild(img);
      return link;
    }
    var file = el("a", "kefu-attachment kefu-file", { target: "_blank", rel: "noopener noreferrer", download: name });
    if (url) file.href = url;
    file.appendChild(icon(ICONS.file));
    file.appendChild(document.createTextNode(name + (att.size ? " (" + Math.max(1, Math.round(att.size / 1024)) + " KB)" : "")));
    return file;
  }
  function messageEl(m) {
    var row = el("div", "kefu-msg");
    row.setAttribute("data-role", m.role);
    if (m.seq != null) row.setAttribute("data-seq", String(m.seq));
    if (m.client_msg_id) row.setAttribute("data-client-msg-id", m.client_msg_id);
    if (m.role === "agent") {
      var author = el("span", "kefu-author");
      author.textContent = ((m.agent && m.agent.name) || t("agent_role")) + " · " + t("agent_role");
      row.appendChild(author);
    }
    var bubble = el("div", "kefu-bubble");
    if (m.text) bubble.appendChild(textBlock(m.text));
    (m.attachments || []).forEach(function (a) { var node = attachmentEl(a); if (node) bubble.appendChild(node); });
    row.appendChild(bubble);
    if (m.role !== "system") {
      var meta = el("span", "kefu-meta");
      meta.textContent = clock(m.ts);
      row.appendChild(meta);
    }
    return row;
  }
  function seqOf(node) { var v = node.getAttribute && node.getAttribute("data-seq"); return v == null ? null : Number(v); }
  function insert(row) {
    // keep seq order; messages still being sent stay last; the typing indicator and the rating stay at the bottom
    var seq = seqOf(row);
    var before = null;
    for (var node = log.lastChild; node; node = node.previousSibling) {
      var s = seqOf(node);
      if (node === typing || node === rating || node.hasAttribute("data-pending") || (seq != null && s != null && s > seq)) {
        before = node;
        continue;
      }
      if (seq == null && s == null && !node.classList.contains("kefu-msg")) { before = node; continue; }
      break;
    }
    log.insertBefore(row, before);
  }
  function scrollDown() { log.scrollTop = log.scrollHeight; }
  function systemRow(text, seq) {
    var row = messageEl({ role: "system", text: text, seq: seq });
    insert(row);
    return row;
  }
  function clearReplies() {
    Array.prototype.forEach.call(log.querySelectorAll(".kefu-replies"), function (n) { n.remove(); });
  }
  function repliesEl(replies) {
    var box = el("div", "kefu-replies", { role: "group", "aria-label": t("replies") });
    replies.forEach(function (r) {
      var b = el("button", "", { type: "button" });
      b.textContent = String(r.title || r.payload);
      b.addEventListener("click", function () { reply(r); });
      box.appendChild(b);
    });
    return box;
  }

  // -- frames from the server, in seq order --------------------------------------------------------------------
  // A stored event's frame carries its seq and prev_seq (the seq of the frame before it). S.lastSeq is the last
  // frame shown; a frame whose prev_seq is later than that waits in S.held while the missing ones are fetched
  // from /history, so the shopper never sees a later message before an earlier one, nor loses one.

  function receive(frame, live) {
    if (frame.seq == null) { show(frame, live); return; }
    if (frame.seq > S.lastSeq) S.held[frame.seq] = frame;
    releaseHeld(live);
    if (Object.keys(S.held).length) fetchMissing();
  }
  function releaseHeld(live) {
    var seqs = Object.keys(S.held).map(Number).sort(function (a, b) { return a - b; });
    for (var i = 0; i < seqs.length; i++) {
      var f = S.held[seqs[i]];
      if (f.seq > S.lastSeq && f.prev_seq > S.lastSeq) return; // the frame before it is still missing
      delete S.held[seqs[i]];
      if (f.seq > S.lastSeq) { S.lastSeq = f.seq; show(f, live); }
    }
  }
  function fetchMissing() {
    if (S.fetching || !S.token) return;
    S.fetching = true;
    clearTimeout(S.fetchTimer);
    fetchJSON(BASE + "/api/widget/history?after_seq=" + S.lastSeq, { headers: { Authorization: "Bearer " + S.token } })
      .then(function (h) {
        S.fetching = false;
        if (h.has_more) return loadHistory(); // more is missing than a page holds: show the latest page
        (h.frames || []).forEach(function (f) { if (f.seq > S.lastSeq) S.held[f.seq] = f; });
        releaseHeld(true);
        S.fetchFailures = Object.keys(S.held).length ? S.fetchFailures + 1 : 0;
        if (S.fetchFailures) retryFetch();
      }, function () { S.fetching = false; S.fetchFailures += 1; retryFetch(); });
  }
  function retryFetch() { // one unlucky fetch must not leave the chat stale: again, with backoff
    S.fetchTimer = setTimeout(fetchMissing, Math.min(RETRY_MAX_MS, 500 * Math.pow(2, S.fetchFailures)));
  }
  function show(frame, live) {
    if (frame.seq != null && log.querySelector('[data-seq="' + frame.seq + '"]')) return; // shown (an acked message)
    if (frame.type === "message") renderMessage(frame, live);
    else if (frame.type === "handoff") renderHandoff(frame);
    else if (frame.type === "ticket") {
      systemRow(t("ticket", { id: frame.ticket_id }), frame.seq).setAttribute("data-handoff", "ticket");
      S.handoff = "ticket";
      S.details = { ticket_id: frame.ticket_id };
      renderHeader();
    }
    else if (frame.type === "csat") setCsat(false);
    if (live) scrollDown();
  }
  function renderMessage(m, live) {
    if (m.role === "user") {
      setCsat(false);
      var pending = m.client_msg_id && log.querySelector('[data-client-msg-id="' + cssEscape(m.client_msg_id) + '"]');
      dropFromOutbox(m.client_msg_id);
      if (pending) { settle(pending, m.seq); return; }
    }
    if (m.role === "bot" || m.role === "agent") hideTyping(m.role);
    if (m.role === "bot" && (m.leave_message || S.handoff === "leave_message")) {
      // the bot asks for the message to leave; any other answer after that question means it lapsed
      S.handoff = m.leave_message ? "leave_message" : null;
      S.details = {};
      renderHeader();
    }
    clearReplies();
    var row = messageEl(m);
    insert(row);
    if (m.rating) setCsat(true);
    else if (m.quick_replies && m.quick_replies.length && row === lastMessage()) row.after(repliesEl(m.quick_replies));
    if ((m.role === "bot" || m.role === "agent") && m.seq > S.seenSeq) {
      if (S.open && !document.hidden) markSeen();
      else { S.unread += 1; save("unread", S.unread); renderBadge(); }
    }
  }
  function lastMessage() {
    var rows = log.querySelectorAll(".kefu-msg");
    return rows[rows.length - 1];
  }
  function cssEscape(v) { return window.CSS && CSS.escape ? CSS.escape(v) : String(v).replace(/["\\]/g, "\\$&"); }
  function minutes(eta) { var m = Math.max(1, Math.round((Number(eta) || 60) / 60)); return m === 1 ? t("minute") : t("minutes", { m: m }); }
  var DETAILS = ["queue_position", "eta_s", "nobody_online", "leave_message", "reason", "next_open", "timezone"];
  function detailsOf(h) {
    var d = {};
    DETAILS.forEach(function (k) { if (h[k] != null) d[k] = h[k]; });
    return d;
  }
  function offerLeaveMessage(row) { // "Leave a message" under the line that offers it, while it is the latest
    if (row === lastMessage()) row.after(repliesEl([{ title: t("leave"), payload: "/leave_message" }]));
  }
  function renderHandoff(h) {
    S.handoff = h.state;
    S.details = detailsOf(h);
    if (h.state === "requested" || h.state === "queued") {
      var text = t("requested");
      if (h.state === "queued" && h.nobody_online) text = t("queued_nobody", { n: h.queue_position || 1 });
      else if (h.state === "queued" && h.queue_position) text = t("queued", { n: h.queue_position, m: minutes(h.eta_s) });
      if (S.waitingRow && S.waitingRow.isConnected) { // one line per wait, kept current and moved to the latest place
        S.waitingRow.querySelector(".kefu-bubble").textContent = text;
        if (h.seq != null) {
          S.waitingRow.setAttribute("data-seq", String(h.seq));
          S.waitingRow.remove();
          insert(S.waitingRow);
        }
      } else {
        S.waitingRow = systemRow(text, h.seq);
      }
      S.waitingRow.setAttribute("data-handoff", h.state);
      clearReplies();
      if (h.nobody_online) offerLeaveMessage(S.waitingRow);
    } else {
      if (h.state === "unavailable" && S.waitingRow && S.waitingRow.getAttribute("data-handoff") === "requested") {
        S.waitingRow.remove(); // "connecting you…" was never true: the offline notice replaces it
      }
      S.waitingRow = null;
      if (h.state === "assigned") {
        S.agent = h.agent || null;
        systemRow(t("assigned", { name: (h.agent && h.agent.name) || t("agent_role") }), h.seq).setAttribute("data-handoff", "assigned");
      } else if (h.state === "ended") {
        S.agent = null;
        systemRow(t("ended"), h.seq).setAttribute("data-handoff", "ended"); // stars only if the bot asks (m.rating)
      } else if (h.state === "cancelled") {
        systemRow(t(h.leave_message ? "left_to_write" : "cancelled"), h.seq).setAttribute("data-handoff", "cancelled");
      } else if (h.state === "unavailable") {
        var msg = t(h.reason === "closed" ? "unavailable_closed" : "unavailable");
        var back = h.next_open ? when(h.next_open, h.timezone) : "";
        var row = systemRow(back ? msg + " " + t("next_open", { when: back }) : msg, h.seq);
        row.setAttribute("data-handoff", "unavailable");
        clearReplies();
        offerLeaveMessage(row);
      }
    }
    renderHeader();
  }
  function applyState(state) {
    if (!state) return;
    S.handoff = state.handoff;
    S.details = state.details || {};
    S.agent = state.agent;
    setCsat(!!state.csat_pending);
    renderHeader();
  }
  function statusText(h, d) {
    if (h === "requested") return t("status_waiting");
    if (h === "queued") {
      if (d.nobody_online) return t("status_nobody");
      return d.queue_position ? t("status_queue", { n: d.queue_position }) : t("status_waiting");
    }
    if (h === "assigned") return t("status_agent", { name: (S.agent && S.agent.name) || t("agent_role") });
    if (h === "unavailable") {
      return d.reason === "closed" && d.next_open ? t("status_closed", { when: when(d.next_open, d.timezone) })
        : t("status_unavailable");
    }
    if (h === "leave_message") return t("status_leave");
    if (h === "ticket") return t("status_ticket");
    return t("status_bot");
  }
  function renderHeader() {
    var h = S.handoff;
    var offline = !S.ready && S.everConnected;
    status.textContent = offline ? t("status_offline") : statusText(h, S.details || {});
    status.setAttribute("data-state", offline ? "offline" : (h || "bot"));
    var waiting = h === "requested" || h === "queued";
    humanBtn.hidden = h === "assigned";
    humanLabel.textContent = waiting ? t("cancel") : t("human");
    humanBtn.setAttribute("data-action", waiting ? "cancel" : "human");
    input.placeholder = h === "leave_message" ? t("placeholder_leave") : t("placeholder");
    launcher.setAttribute("aria-label", t("open") + (S.unread ? " (" + t("unread", { n: S.unread }) + ")" : ""));
  }
  function renderBadge() {
    badge.hidden = !S.unread;
    badge.textContent = S.unread > 9 ? "9+" : String(S.unread);
    launcher.setAttribute("aria-label", (S.open ? t("close") : t("open")) + (S.unread ? " (" + t("unread", { n: S.unread }) + ")" : ""));
  }
  function markSeen() {
    if (S.lastSeq > S.seenSeq) { S.seenSeq = S.lastSeq; save("seen", S.seenSeq); }
    if (S.unread) { S.unread = 0; save("unread", 0); renderBadge(); }
    if (S.ready && S.lastSeq) sendRaw({ type: "read", seq: S.lastSeq });
  }
  function showTyping(role, agent) {
    typingLabel.textContent = role === "agent" ? t("typing_agent", { name: (agent && agent.name) || t("agent_role") }) : t("typing_bot");
    typing.setAttribute("data-role", role);
    typing.hidden = false;
    log.appendChild(typing);
    scrollDown();
    clearTimeout(S.typingTimer);
    S.typingTimer = setTimeout(function () { typing.hidden = true; }, TYPING_HIDE_MS);
  }
  function hideTyping(role) {
    if (!role || typing.getAttribute("data-role") === role) { typing.hidden = true; clearTimeout(S.typingTimer); }
  }
  function setCsat(on) {
    S.csatPending = on;
    rating.hidden = !on;
    Array.prototype.forEach.call(stars.children, function (b) { b.classList.remove("kefu-on"); b.disabled = false; });
    if (on) { log.appendChild(rating); if (typing.parentNode === log) log.appendChild(typing); scrollDown(); }
  }
  function greet() {
    if (S.greeted || log.querySelector(".kefu-msg")) return;
    S.greeted = true;
    var row = messageEl({ role: "bot", text: t("greeting") });
    row.setAttribute("data-local", "greeting");
    log.insertBefore(row, log.firstChild);
    fetchJSON(BASE + "/api/widget/suggest?lang=" + lang + "&q=").then(function (body) {
      var items = (body && body.suggestions) || [];
      if (!items.length || !row.isConnected) return;
      var chips = el("div", "kefu-chips", { role: "group", "aria-label": t("popular") });
      var label = el("p", "kefu-chips-label");
      label.textContent = t("popular");
      chips.appendChild(label);
      items.slice(0, 4).forEach(function (s) {
        var b = el("button", "", { type: "button" });
        b.textContent = s.title;
        b.addEventListener("click", function () { pickSuggestion(s); chips.remove(); });
        chips.appendChild(b);
      });
      row.after(chips);
    }).catch(function () {});
  }

  // -- sending -------------------------------------------------------------------------------------------------

  function sendRaw(frame) {
    if (S.ws && S.ready && S.ws.readyState === 1) { S.ws.send(JSON.stringify(frame)); return true; }
    return false;
  }
  function pendingEl(display, id) {
    var row = messageEl({ role: "user", text: display.text, attachments: display.attachments, ts: Date.now() / 1000 });
    row.setAttribute("data-client-msg-id", id);
    row.setAttribute("data-pending", "");
    row.setAttribute("data-state", "sending");
    log.insertBefore(row, rating.parentNode === log ? rating : (typing.parentNode === log ? typing : null));
    scrollDown();
    return row;
  }
  function settle(row, seq) {
    row.removeAttribute("data-pending");
    row.removeAttribute("data-state");
    if (seq != null) row.setAttribute("data-seq", String(seq));
    var meta = row.querySelector(".kefu-meta");
    if (meta) meta.textContent = clock(Date.now() / 1000);
    // its final place among the seq-ordered messages
    row.remove();
    insert(row);
  }
  function fail(id, text) {
    dropFromOutbox(id);
    var row = log.querySelector('[data-client-msg-id="' + cssEscape(id) + '"]');
    if (!row) return;
    row.removeAttribute("data-pending");
    row.setAttribute("data-state", "failed");
    var meta = row.querySelector(".kefu-meta");
    if (meta) meta.textContent = text || t("failed");
  }
  function noteOn(id, text) {
    var row = log.querySelector('[data-client-msg-id="' + cssEscape(id) + '"] .kefu-meta');
    if (row) row.textContent = text;
  }
  function persistOutbox() {
    save("outbox", S.outbox.map(function (item) { return { frame: item.frame, display: item.display }; }));
  }
  function dropFromOutbox(id) {
    if (!id) return;
    var before = S.outbox.length;
    S.outbox = S.outbox.filter(function (item) { return item.frame.client_msg_id !== id; });
    if (S.outbox.length !== before) persistOutbox();
  }
  function queue(frame, display, existingRow) {
    if (display && !existingRow) pendingEl(display, frame.client_msg_id);
    S.outbox.push({ frame: frame, display: display && { text: display.text, role: "user" }, sent: false });
    persistOutbox();
    clearReplies();
    setCsat(false);
    noteOn(frame.client_msg_id, S.ready || !S.everConnected ? t("sending") : t("waiting_net"));
    start();
    flush();
  }
  function flush() {
    if (!S.ready) return;
    S.outbox.forEach(function (item) {
      if (item.sent || item.holdUntil > Date.now()) return;
      if (sendRaw(item.frame)) {
        item.sent = true;
        noteOn(item.frame.client_msg_id, t("sending"));
      }
    });
  }
  function reply(r) { // a button: the bot reads its payload, the shopper sees its title
    var title = String(r.title || r.payload);
    queue({ type: "quick_reply", client_msg_id: newId(), payload: String(r.payload || r.title), title: title },
          { role: "user", text: title });
  }
  function sendText(text) {
    text = String(text || "").trim();
    if (!text) return;
    var max = (S.limits && S.limits.max_text_chars) || 2000;
    text = text.slice(0, max);
    queue({ type: "message", client_msg_id: newId(), text: text }, { role: "user", text: text });
    hideSuggestions();
    scrollDown();
  }

  // -- connection ----------------------------------------------------------------------------------------------

  function fetchJSON(url, options) {
    return fetch(url, Object.assign({ credentials: "omit", mode: "cors" }, options || {})).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) { var err = new Error(body.error || r.statusText); err.status = r.status; throw err; }
        return body;
      });
    });
  }
  function openSession() {
    return fetchJSON(BASE + "/api/widget/session", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: S.token })
    }).then(function (s) {
      if (s.token !== S.token) { // a new conversation: forget the old one's view
        S.token = s.token;
        save("token", s.token);
        S.lastSeq = 0;
        S.held = {};
        S.seenSeq = 0;
        save("seen", 0);
        Array.prototype.forEach.call(log.querySelectorAll(".kefu-msg:not([data-pending]), .kefu-replies"), function (n) { n.remove(); });
      }
      S.conversationId = s.conversation_id;
      S.limits = s.limits;
      if (S.limits && S.limits.max_text_chars) input.setAttribute("maxlength", String(S.limits.max_text_chars));
    });
  }
  function loadHistory() {
    return fetchJSON(BASE + "/api/widget/history", { headers: { Authorization: "Bearer " + S.token } }).then(function (h) {
      Array.prototype.forEach.call(log.querySelectorAll(".kefu-msg:not([data-pending]), .kefu-replies, .kefu-chips"), function (n) { n.remove(); });
      S.waitingRow = null;
      S.greeted = false;
      var frames = h.frames || [];
      S.held = {};
      S.lastSeq = frames.length ? frames[0].prev_seq || 0 : 0; // the view starts with the latest page
      var unreadBefore = S.unread;
      S.unread = 0;
      frames.forEach(function (f) { receive(f, false); });
      if (!S.open) S.unread = Math.max(S.unread, unreadBefore);
      save("unread", S.unread);
      renderBadge();
      applyState(h.state);
      // messages typed before a reload that reached the server are in the history now: the rest are re-shown
      S.outbox.forEach(function (item) {
        var id = item.frame.client_msg_id;
        if (item.display && !log.querySelector('[data-client-msg-id="' + cssEscape(id) + '"]')) pendingEl(item.display, id);
      });
      if (!log.querySelector(".kefu-msg")) greet();
      scrollDown();
    });
  }
  function start() {
    if (S.started) return S.starting;
    S.started = true;
    S.starting = openSession().then(loadHistory).then(connect).catch(function (err) {
      S.started = false;
      if (err && err.status === 401) { S.token = null; save("token", null); }
      scheduleReconnect();
    });
    return S.starting;
  }
  function connect() {
    if (S.ws) return;
    clearTimeout(S.retryTimer);
    var ws;
    try { ws = new WebSocket(WS_URL); } catch (e) { scheduleReconnect(); return; }
    S.ws = ws;
    ws.onopen = function () { ws.send(JSON.stringify({ type: "hello", token: S.token, last_seq: S.lastSeq })); };
    ws.onmessage = function (e) {
      var frame;
      try { frame = JSON.parse(e.data); } catch (err) { return; }
      onFrame(frame);
    };
    ws.onclose = function (e) {
      if (S.ws !== ws) return;
      S.ws = null;
      S.ready = false;
      S.outbox.forEach(function (item) { item.sent = false; });
      hideTyping();
      renderHeader();
      if (e.code === 4401) { // the session is gone: get a new one (never someone else's) and start over
        S.started = false;
        S.token = null;
        save("token", null);
        scheduleReconnect(); // with backoff, in case the server keeps refusing
        return;
      }
      banner.textContent = t("reconnecting");
      banner.hidden = !S.everConnected;
      scheduleReconnect();
    };
  }
  function scheduleReconnect() {
    clearTimeout(S.retryTimer);
    var delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * Math.pow(2, S.attempts));
    delay = delay / 2 + Math.random() * delay / 2; // jitter: a restarted server is not hit by every tab at once
    S.attempts += 1;
    S.retryTimer = setTimeout(reconnectNow, delay);
  }
  function reconnectNow() {
    clearTimeout(S.retryTimer);
    if (!S.started) { start(); return; }
    if (!S.ws && S.token) connect();
  }
  function onFrame(f) {
    switch (f.type) {
      case "welcome":
        S.conversationId = f.conversation_id;
        if (f.last_seq < S.lastSeq) { // the server has less than we showed (restored backup): reload the view
          S.lastSeq = 0;
          loadHistory();
        }
        applyState(f.state);
        break;
      case "ready":
        S.ready = true;
        S.attempts = 0;
        S.everConnected = true;
        banner.hidden = true;
        renderHeader();
        flush();
        if (S.open && !document.hidden) markSeen();
        break;
      case "ack":
        dropFromOutbox(f.client_msg_id);
        var row = log.querySelector('[data-client-msg-id="' + cssEscape(f.client_msg_id) + '"]');
        if (row && row.hasAttribute("data-pending")) settle(row, f.seq);
        break;
      case "typing":
        if (f.state === "on") showTyping(f.role, f.agent); else hideTyping(f.role);
        break;
      case "error":
        onError(f);
        break;
      case "pong":
        break;
      default:
        receive(f, true);
    }
  }
  function onError(f) {
    var item = f.client_msg_id && S.outbox.filter(function (i) { return i.frame.client_msg_id === f.client_msg_id; })[0];
    if (f.code === "rate_limited" && item) {
      item.sent = false;
      item.holdUntil = Date.now() + (Number(f.retry_after_s) || 2) * 1000 + 200;
      noteOn(item.frame.client_msg_id, t("too_fast"));
      setTimeout(flush, item.holdUntil - Date.now() + 10);
    } else if (f.code === "internal" && item) {
      item.sent = false;
      item.holdUntil = Date.now() + 3000;
      setTimeout(flush, 3100);
    } else if (f.client_msg_id) {
      fail(f.client_msg_id);
    } else if (window.console) {
      console.warn("kefu:", f.code, f.message);
    }
  }

  // -- files ---------------------------------------------------------------------------------------------------

  function uploadFile(file) {
    var limits = S.limits || { max_upload_bytes: 10485760, upload_types: ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"] };
    if (limits.upload_types.indexOf(file.type) < 0) { systemNote(t("bad_type")); return; }
    if (file.size > limits.max_upload_bytes) { systemNote(t("too_big", { mb: Math.round(limits.max_upload_bytes / 1048576) })); return; }
    var id = newId();
    var local = file.type.indexOf("image/") === 0 ? URL.createObjectURL(file) : null;
    var row = pendingEl({ text: "", attachments: [{ name: file.name, mime: file.type, size: file.size, localUrl: local }] }, id);
    var bar = el("span", "kefu-progress", { role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0", "aria-label": file.name });
    var fill = el("span");
    bar.appendChild(fill);
    row.querySelector(".kefu-bubble").appendChild(bar);
    Promise.resolve(start()).then(function () {
      if (!S.token) throw new Error("no session");
      var body = new FormData();
      body.append("file", file, file.name);
      var xhr = new XMLHttpRequest();
      xhr.open("POST", BASE + "/api/widget/upload");
      xhr.setRequestHeader("Authorization", "Bearer " + S.token);
      xhr.upload.onprogress = function (e) {
        if (!e.lengthComputable) return;
        var pct = Math.round((e.loaded / e.total) * 100);
        fill.style.width = pct + "%";
        bar.setAttribute("aria-valuenow", String(pct));
      };
      xhr.onload = function () {
        var res = {};
        try { res = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        if (xhr.status !== 201) { fail(id, t("upload_failed") + (res.error ? ": " + res.error : "")); return; }
        bar.remove();
        queue({ type: "message", client_msg_id: id, text: "", attachments: [res.attachment_id] },
              { role: "user", text: "", attachments: [res] }, row);
      };
      xhr.onerror = function () { fail(id, t("upload_failed")); };
      xhr.send(body);
    }).catch(function () { fail(id, t("upload_failed")); });
  }
  function systemNote(text) {
    var row = messageEl({ role: "system", text: text });
    row.setAttribute("data-local", "note");
    log.insertBefore(row, typing.parentNode === log ? typing : null);
    scrollDown();
  }

  // -- suggestions while typing --------------------------------------------------------------------------------

  function hideSuggestions() {
    suggest.hidden = true;
    suggest.textContent = "";
    S.activeSuggestion = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }
  function askSuggestions() {
    clearTimeout(S.suggestTimer);
    var q = input.value.trim();
    if (q.length < 2 || q.length > 60 || ["assigned", "queued", "requested", "leave_message"].indexOf(S.handoff) >= 0) {
      hideSuggestions();
      return;
    }
    S.suggestTimer = setTimeout(function () {
      var mine = ++S.suggestSeq;
      fetchJSON(BASE + "/api/widget/suggest?lang=" + lang + "&q=" + encodeURIComponent(q)).then(function (body) {
        if (mine !== S.suggestSeq || input.value.trim() !== q) return; // typed on meanwhile
        showSuggestions((body && body.suggestions) || []);
      }).catch(hideSuggestions);
    }, 200);
  }
  function showSuggestions(items) {
    suggest.textContent = "";
    S.activeSuggestion = -1;
    if (!items.length) { hideSuggestions(); return; }
    items.forEach(function (s, i) {
      var li = el("li", "", { role: "option", id: "kefu-suggest-" + i, "aria-selected": "false" });
      li.textContent = s.title;
      li.addEventListener("mousedown", function (e) { e.preventDefault(); });
      li.addEventListener("click", function () { input.value = ""; autosize(); pickSuggestion(s); });
      suggest.appendChild(li);
    });
    suggest.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }
  function pickSuggestion(s) { // the shopper sees the entry's title; the bot answers exactly that entry
    reply({ title: s.title, payload: s.payload });
    hideSuggestions();
    scrollDown();
  }
  function moveSuggestion(delta) {
    var items = suggest.children;
    if (suggest.hidden || !items.length) return false;
    // positions -1 (the input itself), 0 … n-1 (the items), wrapping round: shift by one to count from 0
    var places = items.length + 1;
    S.activeSuggestion = (S.activeSuggestion + 1 + delta + places) % places - 1;
    Array.prototype.forEach.call(items, function (li, i) { li.setAttribute("aria-selected", String(i === S.activeSuggestion)); });
    if (S.activeSuggestion >= 0) input.setAttribute("aria-activedescendant", items[S.activeSuggestion].id);
    else input.removeAttribute("aria-activedescendant");
    return true;
  }

  // -- opening and closing -------------------------------------------------------------------------------------

  function setOpen(open, prefill) {
    S.open = open;
    save("open", open, "session");
    panel.hidden = !open;
    root.classList.toggle("kefu-open", open);
    launcher.setAttribute("aria-expanded", String(open));
    renderBadge();
    if (!open) {
      hideSuggestions();
      launcher.focus();
      return;
    }
    start();
    if (typeof prefill === "string" && prefill) input.value = prefill;
    if (!log.querySelector(".kefu-msg") && S.token == null) greet();
    markSeen();
    setTimeout(function () { input.focus(); scrollDown(); }, 0);
  }
  function openPanel(prefill) { setOpen(true, prefill); }
  function closePanel() { setOpen(false); }
  function autosize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 120) + "px";
  }

  // -- events --------------------------------------------------------------------------------------------------

  launcher.addEventListener("click", function () { if (S.open) closePanel(); else openPanel(); });
  closeBtn.addEventListener("click", closePanel);
  humanBtn.addEventListener("click", function () {
    var cancel = humanBtn.getAttribute("data-action") === "cancel";
    var label = cancel ? t("cancel") : t("human");
    queue({ type: cancel ? "handoff_cancel" : "handoff_request", client_msg_id: newId(), title: label }, { role: "user", text: label });
  });
  stars.addEventListener("mouseover", function (e) {
    var k = Number(e.target.getAttribute && e.target.getAttribute("data-score"));
    if (k) Array.prototype.forEach.call(stars.children, function (b, i) { b.classList.toggle("kefu-on", i < k); });
  });
  stars.addEventListener("click", function (e) {
    var k = Number(e.target.getAttribute && e.target.getAttribute("data-score"));
    if (!k) return;
    var label = new Array(k + 1).join("★");
    queue({ type: "csat", client_msg_id: newId(), score: k, title: label }, { role: "user", text: label });
    setCsat(false);
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value;
    input.value = "";
    autosize();
    sendText(text);
    input.focus();
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "ArrowDown" && moveSuggestion(1)) { e.preventDefault(); return; }
    if (e.key === "ArrowUp" && moveSuggestion(-1)) { e.preventDefault(); return; }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { // not while an IME is composing Chinese
      e.preventDefault();
      var active = S.activeSuggestion >= 0 && suggest.children[S.activeSuggestion];
      if (active) { active.click(); return; }
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  input.addEventListener("input", function () {
    autosize();
    askSuggestions();
    var now = Date.now();
    if (input.value && now - S.lastTypingSent > TYPING_SEND_MS) { S.lastTypingSent = now; sendRaw({ type: "typing", state: "on" }); }
    clearTimeout(S.typingOffTimer);
    S.typingOffTimer = setTimeout(function () { S.lastTypingSent = 0; sendRaw({ type: "typing", state: "off" }); }, 4000);
  });
  input.addEventListener("blur", function () { setTimeout(hideSuggestions, 150); });
  input.addEventListener("paste", function (e) {
    var files = e.clipboardData && e.clipboardData.files;
    if (files && files.length) { e.preventDefault(); Array.prototype.forEach.call(files, uploadFile); }
  });
  panel.addEventListener("dragover", function (e) { e.preventDefault(); });
  panel.addEventListener("drop", function (e) {
    e.preventDefault();
    Array.prototype.forEach.call((e.dataTransfer && e.dataTransfer.files) || [], uploadFile);
  });
  attachBtn.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    Array.prototype.forEach.call(fileInput.files || [], uploadFile);
    fileInput.value = "";
  });
  panel.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") return;
    if (!suggest.hidden) { hideSuggestions(); e.stopPropagation(); return; }
    closePanel();
  });
  document.addEventListener("click", function (e) {
    var opener = e.target && e.target.closest && e.target.closest("[data-kefu-open]");
    if (opener) { e.preventDefault(); openPanel(opener.getAttribute("data-kefu-message") || ""); }
  });
  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) return;
    if (S.started && !S.ws) { S.attempts = 0; reconnectNow(); }
    if (S.open) markSeen();
  });
  window.addEventListener("storage", function (e) { // another tab of this shop read the messages
    if (e.key === KEY + "unread") { S.unread = Number(e.newValue) || 0; renderBadge(); }
  });

  // -- go ------------------------------------------------------------------------------------------------------

  var css = el("link", "", { rel: "stylesheet", href: BASE + "/widget.css" });
  css.addEventListener("load", function () { root.hidden = false; });
  css.addEventListener("error", function () { root.hidden = false; });
  document.head.appendChild(css);
  function mount() {
    document.body.appendChild(root);
    applyLanguage();
    if (S.token || S.outbox.length) start(); // a returning shopper: history, unread badge, queued messages
    if (S.open) openPanel();
    document.dispatchEvent(new CustomEvent("kefu:ready"));
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  window.KefuWidget = {
    open: function (prefill) { openPanel(prefill); },
    close: closePanel,
    toggle: function () { if (S.open) closePanel(); else openPanel(); },
    setLanguage: function (value) { lang = pickLanguage(value); applyLanguage(); },
    get conversationId() { return S.conversationId; },
    get connected() { return S.ready; }
  };
})();
