// kefu agent console. Plain JavaScript, no framework. Every piece of text from the server (shopper messages,
// names, candidates) goes into the page as text (textContent / text nodes), never as HTML.
"use strict";

const I18N = {
  en: {
    console: "Agent console", queue: "Queue", mine: "My chats", open: "All open", tickets: "Tickets",
    stats: "Statistics", online: "Online", away: "Away", offline: "Offline", logout: "Log out", live: "Live updates",
    pick: "Pick a conversation from the list.", reply: "Reply", note: "Private note",
    cannedHint: "Type / for canned replies", write: "Write a reply… (Enter sends, Shift+Enter for a new line)",
    send: "Send", addNote: "Add note", why: "Why the bot handed over",
    guesses: "The bot's best guesses", shopper: "Shopper", notes: "Private notes", noNotes: "No notes yet.",
    claim: "Claim", transfer: "Transfer…", close: "Close", toAgent: "To agent", toGroup: "To group",
    transferTo: "Transfer this conversation to {a}?", transferGroup: "Transfer this conversation to the {g} group?",
    confirmTransfer: "Transfer", cancel: "Cancel", reconnecting: "reconnecting…",
    erase: "Delete conversation data", confirmErase: "Delete",
    eraseQuestion: "Delete everything kept about {c} — messages, tickets, files — for good? Do this when the shopper asked for their data to be deleted; it cannot be undone.",
    erased: "Conversation data deleted.",
    emptyQueue: "Nobody is waiting.", emptyMine: "You have no open chats.", emptyOpen: "No open conversations.",
    channel: "Channel", language: "Language", sender: "Sender", orders: "Order numbers", tier: "Tier",
    subject: "Subject", mailFailed: "Mail not delivered", originalMail: "Original mail",
    wechat: "WeChat window", messenger: "Messenger window", quota: "{n} messages left", window: "until {t}", pending: "{n} pending",
    none: "—", insert: "Insert", score: "score", waiting: "waiting {t}", assignedTo: "with {a}",
    shopperTyping: "Shopper is typing…", composerClosed: "This conversation is closed.",
    composerQueued: "Claim the conversation to reply.", composerOther: "Assigned to {a}.",
    claimed: "You took the conversation.", closed: "Conversation closed.", transferred: "Conversation transferred.",
    sent: "Sent", created: "Created", message: "Message", status: "Status", answer: "Answer", ticket: "Ticket",
    noTickets: "No tickets.", all: "All", ticketPending: "Pending", ticketIn: "In progress",
    ticketResolved: "Resolved", save: "Save", conversations: "Conversations", deflection: "Bot-only resolution", wrongAnswers: "Wrong answers",
    handoffRate: "Handoff rate", firstResponse: "First response", avgWait: "Average wait",
    avgHandling: "Average handling", csat: "Satisfaction (CSAT)", ratings: "{n} ratings",
    ticketsOpen: "Open tickets", queueNow: "Waiting now", agentsOnline: "Agents online", byReason: "Handoffs by reason",
    busiest: "Messages by hour", unanswered: "Top questions the bot could not answer", days: "Last {n} days",
    requests: "Handoff requests", outcomes: "How handoffs ended", definitions: "How these figures are counted",
    noData: "No data yet.", sysRequested: "Bot handed over: {r}", sysQueued: "Queued · number {p} · ~{m} min",
    sysQueuedNobody: "Queued · number {p} · nobody online yet", sysLeftToWrite: "Shopper left the queue to leave a message",
    sysAssigned: "{a} joined", sysTransferred: "Transferred to {a}", sysEnded: "Closed: {r}",
    sysCancelled: "Shopper stopped waiting", sysUnavailable: "No agent available ({r}) · offered to leave a message",
    sysTicket: "Ticket {t} created", sysCsat: "Rating: {s}/5", bot: "Bot", you: "You", shopperLabel: "Shopper",
    vip: "VIP", complaint: "Complaint", normal: "Normal", queued: "Waiting", assigned: "In progress",
    closedState: "Closed", botState: "With the bot", errorPrefix: "Error",
    dueIn: "due in {t}", overdueBy: "overdue {t}", replyBy: "Reply by {t}", lessThanMinute: "< 1 min",
    byChannel: "By channel", botAlone: "Bot alone", withinPromise: "Answered within the promise",
    withinPromiseOf: "Within {p} · {c}", firstReplyMedian: "First reply (median)", firstReplyP90: "First reply (90%)",
    ofAnswered: "{k} of {n} on time", promiseHours: "{h} h", clockNames: {business: "business hours", wall: "around the clock"},
    reasons: {
      explicit_request: "The shopper asked for a person", complaint: "Complaint",
      low_faq_score: "No FAQ answer was close enough", small_faq_margin: "Two FAQ answers were too close",
      low_intent_confidence: "The bot did not understand", small_margin: "The intent was ambiguous",
      repeated_fallback: "Several answers failed in a row",
    },
    resolutions: {resolved: "Resolved", not_resolved: "Not resolved", spam: "Spam", duplicate: "Duplicate"},
    outcomeNames: {cancelled: "Shopper stopped waiting", left_message: "Left a message", open: "Still open",
      unavailable_closed: "Outside hours, no message", unavailable_offline: "Nobody online, no message",
      unavailable_timeout: "Nobody answered in time, no message"},
  },
  zh: {
    console: "客服工作台", queue: "排队中", mine: "我的会话", open: "全部进行中", tickets: "留言工单",
    stats: "数据统计", online: "在线", away: "离开", offline: "离线", logout: "退出", live: "实时连接",
    pick: "从左侧列表选择一个会话。", reply: "回复", note: "内部备注",
    cannedHint: "输入 / 使用快捷回复", write: "输入回复…（Enter 发送，Shift+Enter 换行）", send: "发送", addNote: "添加备注", why: "机器人转人工的原因",
    guesses: "机器人的候选答案", shopper: "顾客信息", notes: "内部备注", noNotes: "暂无备注。",
    claim: "接入", transfer: "转接…", close: "结束", toAgent: "转给客服", toGroup: "转给技能组",
    transferTo: "确定将此会话转给 {a}？", transferGroup: "确定将此会话转给“{g}”技能组？",
    confirmTransfer: "转接", cancel: "取消", reconnecting: "正在重新连接…",
    erase: "删除会话数据", confirmErase: "删除",
    eraseQuestion: "永久删除 {c} 的全部数据（消息、工单、文件）？仅在顾客要求删除其数据时使用，删除后无法恢复。",
    erased: "会话数据已删除。",
    emptyQueue: "当前没有顾客排队。", emptyMine: "您没有进行中的会话。", emptyOpen: "没有进行中的会话。",
    channel: "渠道", language: "语言", sender: "用户", orders: "提到的订单号", tier: "会员等级",
    subject: "邮件主题", mailFailed: "邮件未送达", originalMail: "邮件原文",
    wechat: "微信客服窗口", messenger: "Messenger 窗口", quota: "剩余 {n} 条", window: "截止 {t}", pending: "{n} 条待发",
    none: "—", insert: "插入", score: "得分", waiting: "已等待 {t}", assignedTo: "由 {a} 接待",
    shopperTyping: "顾客正在输入…", composerClosed: "会话已结束。",
    composerQueued: "接入会话后才能回复。", composerOther: "由 {a} 接待中。",
    claimed: "已接入会话。", closed: "会话已结束。", transferred: "已转接。",
    sent: "已发送", created: "创建时间", message: "留言", status: "状态", answer: "回复", ticket: "工单",
    noTickets: "暂无工单。", all: "全部", ticketPending: "待处理", ticketIn: "处理中", ticketResolved: "已解决",
    save: "保存", conversations: "会话数", deflection: "机器人独立解决率", wrongAnswers: "答非所问", handoffRate: "转人工率",
    firstResponse: "首次响应时间", avgWait: "平均等待", avgHandling: "平均处理时长", csat: "满意度 (CSAT)",
    ratings: "{n} 个评分", ticketsOpen: "未解决工单", queueNow: "当前排队", agentsOnline: "在线客服",
    byReason: "转人工原因", busiest: "各时段消息量", unanswered: "机器人没能回答的问题", days: "最近 {n} 天",
    requests: "转人工次数", outcomes: "转人工结果", definitions: "各项数据的统计口径",
    noData: "暂无数据。", sysRequested: "机器人转人工：{r}", sysQueued: "排队 · 第 {p} 位 · 约 {m} 分钟",
    sysQueuedNobody: "排队 · 第 {p} 位 · 暂无客服在线", sysLeftToWrite: "顾客离开排队，改为留言",
    sysAssigned: "{a} 已接入", sysTransferred: "已转接给 {a}", sysEnded: "已结束：{r}",
    sysCancelled: "顾客取消了排队", sysUnavailable: "无客服可接待（{r}）· 已提供留言",
    sysTicket: "已创建工单 {t}", sysCsat: "评分：{s}/5", bot: "机器人", you: "我", shopperLabel: "顾客",
    vip: "VIP", complaint: "投诉", normal: "普通", queued: "排队中", assigned: "接待中", closedState: "已结束",
    botState: "机器人接待", errorPrefix: "错误",
    dueIn: "{t}后到期", overdueBy: "已超时 {t}", replyBy: "请在 {t} 前回复", lessThanMinute: "不到 1 分钟",
    byChannel: "各渠道", botAlone: "机器人独立解决", withinPromise: "承诺时限内回复率",
    withinPromiseOf: "{p}内回复率 · {c}", firstReplyMedian: "首次回复（中位数）", firstReplyP90: "首次回复（90% 分位）",
    ofAnswered: "{n} 个中 {k} 个按时", promiseHours: "{h} 小时", clockNames: {business: "工作时间", wall: "自然时间"},
    reasons: {
      explicit_request: "顾客要求转人工", complaint: "顾客投诉", low_faq_score: "知识库没有足够接近的答案",
      small_faq_margin: "两个知识库答案难以区分", low_intent_confidence: "机器人没有理解问题",
      small_margin: "意图不明确", repeated_fallback: "连续多次未能回答",
    },
    resolutions: {resolved: "已解决", not_resolved: "未解决", spam: "垃圾消息", duplicate: "重复会话"},
    outcomeNames: {cancelled: "顾客取消了排队", left_message: "改为留言", open: "进行中",
      unavailable_closed: "非服务时间，未留言", unavailable_offline: "无客服在线，未留言",
      unavailable_timeout: "等待超时，未留言"},
  },
};

// The statistics page's definitions, [term, meaning] in both languages: each figure defined once (handoff/stats.py).
const STAT_HELP = [
  [{en: "Conversations", zh: "会话数"}, {en: "Conversations with a shopper message in the period = bot only + handed over.", zh: "统计期内有顾客消息的会话 = 机器人独立解决 + 转人工。"}],
  [{en: "Bot-only resolution", zh: "机器人独立解决率"}, {en: "Conversations the bot handled without handing over ÷ conversations.", zh: "没有转人工的会话 ÷ 会话数。"}],
  [{en: "Handoff rate", zh: "转人工率"}, {en: "Conversations handed over to a person at least once ÷ conversations (with bot-only: 100%).", zh: "至少转过一次人工的会话 ÷ 会话数（与独立解决率合计 100%）。"}],
  [{en: "Handoffs by reason", zh: "转人工原因"}, {en: "Each handed-over conversation once, under the reason of its first handoff: the shares add up to the handoff rate.", zh: "每个转人工的会话只计一次，按第一次转人工的原因：各原因占比之和等于转人工率。"}],
  [{en: "Handoff requests", zh: "转人工次数"}, {en: "Every time the bot handed over; a conversation can hand over more than once.", zh: "机器人每转一次人工计一次；一个会话可能转多次。"}],
  [{en: "How handoffs ended", zh: "转人工结果"}, {en: "Exactly one outcome per request (they add up to the requests): the agent's resolution, the shopper stopped waiting, left a message, nobody available, or still open.", zh: "每次转人工恰好一个结果（合计等于转人工次数）：客服结束时的处理结果、顾客取消、改为留言、无人接待或仍在进行。"}],
  [{en: "Wrong answers", zh: "答非所问"}, {en: "FAQ answers the shopper said were not what they asked (\"that's not what I asked\"); their questions are listed under the top unanswered.", zh: "顾客表示答非所问（“不是这个”）的 FAQ 回答；对应的问题列入“未解答问题”。"}],
  [{en: "First response", zh: "首次响应时间"}, {en: "From the handoff request to the agent's first message, averaged.", zh: "从转人工到客服第一条消息，取平均。"}],
  [{en: "Average wait / handling", zh: "平均等待 / 处理时长"}, {en: "Request → agent joined; agent joined → closed.", zh: "转人工 → 客服接入；客服接入 → 结束。"}],
  [{en: "Reply-by promise", zh: "回复时限承诺"}, {en: "A channel with a promise in handoff.yml (reply_within; e-mail: 6 business hours) gives each wait for a person a reply-by time when the wait begins (the handoff request, or the message left). The lists show it as \"due in …\" / \"overdue …\", counted in the promise's clock, and put those due within the hour or overdue first.", zh: "在 handoff.yml 中设置了承诺的渠道（reply_within；邮件默认 6 个工作小时），每次等待人工时（转人工或留言时）确定一个回复截止时间。列表显示“…后到期”/“已超时 …”（按承诺的计时方式计算），一小时内到期或已超时的排在最前。"}],
  [{en: "Answered within the promise", zh: "承诺时限内回复率"}, {en: "Per channel: waits whose first reply from a person came by the reply-by time ÷ waits answered late or not answered by then. Waits the shopper gave up before the time, and those not yet due, are not counted.", zh: "按渠道：在截止时间前得到客服首次回复的等待 ÷（按时回复 + 超时回复或到期仍未回复）。截止前顾客放弃的等待、尚未到期的等待不计入。"}],
  [{en: "First reply (median, 90%)", zh: "首次回复（中位数、90% 分位）"}, {en: "Per channel: from the start of a wait for a person (handoff request, or message left) to a person's first reply (a message, or an answer to the ticket), in clock time; half of the waits were answered faster than the median, 90% faster than the 90% figure.", zh: "按渠道：从开始等待人工（转人工或留言）到客服首次回复（消息或工单回复）的自然时间；一半的等待快于中位数，90% 快于 90% 分位。"}],
  [{en: "Bot alone", zh: "机器人独立解决"}, {en: "Per channel: conversations that never asked for a person (the bot answered them alone); with the handed-over ones they make the channel's conversations.", zh: "按渠道：从未转人工的会话（由机器人独立回答）；与转人工的会话合计为该渠道的会话数。"}],
];

const state = {
  lang: localStorage.getItem("kefu-console-lang") || ((navigator.language || "").startsWith("zh") ? "zh" : "en"),
  me: null, view: "queue", lists: {queue: [], mine: [], open: []}, current: null, seqs: new Set(),
  agents: [], lastButtons: [], unread: new Set(), noteMode: false, canned: [], cannedIndex: 0, ticketFilter: "pending",
  statsDays: 30, socket: null, typingTimer: null, typingSentAt: 0, shopperTypingTimer: null,
};

const $ = (id) => document.getElementById(id);

function t(key, fields) {
  let text = I18N[state.lang][key] ?? I18N.en[key] ?? key;
  for (const [k, v] of Object.entries(fields || {})) text = text.replace(`{${k}}`, String(v));
  return text;
}

// h("div", {class: "x"}, "text", child): strings become text nodes, never markup.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "style") Object.assign(el.style, value);  // CSSOM: allowed by the page's CSP
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function clear(el) { while (el.firstChild) el.firstChild.remove(); return el; }

function toast(message, error) {
  const el = $("toast");
  el.textContent = message;
  el.className = error ? "toast error" : "toast";
  el.hidden = false;
  clearTimeout(el._timer);
  el._timer = setTimeout(() => { el.hidden = true; }, 3500);
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method, credentials: "same-origin",
    headers: body === undefined ? {} : {"Content-Type": "application/json"},
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) { location.href = "/console/login"; throw new Error("logged out"); }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return t("none");
  seconds = Math.max(0, Math.round(seconds));
  if (seconds < 60) return state.lang === "zh" ? `${seconds} 秒` : `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return state.lang === "zh" ? `${minutes} 分钟` : `${minutes}m ${seconds % 60}s`;
  return state.lang === "zh" ? `${Math.floor(minutes / 60)} 小时 ${minutes % 60} 分` : `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

// A span of time for the reply-by marks: "40 min", "2 h 5 min", "3 d 4 h".
function span(seconds) {
  const minutes = Math.floor(Math.abs(seconds) / 60);
  if (minutes < 1) return t("lessThanMinute");
  const zh = state.lang === "zh";
  const [d, hrs, min] = [Math.floor(minutes / 1440), Math.floor(minutes / 60) % 24, minutes % 60];
  const part = (n, en, cn) => (n ? (zh ? `${n} ${cn}` : `${n} ${en}`) : "");
  if (d) return [part(d, "d", "天"), part(hrs, "h", "小时")].filter(Boolean).join(" ");
  if (hrs) return [part(hrs, "h", "小时"), part(min, "min", "分钟")].filter(Boolean).join(" ");
  return part(min, "min", "分钟");
}

// How a conversation's reply-by promise stands ("due in 40 min" / "overdue 1 h"), with the time in its title.
function replyBadge(reply, id) {
  if (!reply) return null;
  const text = reply.state === "overdue" ? t("overdueBy", {t: span(-reply.left_s)}) : t("dueIn", {t: span(reply.left_s)});
  return h("span", {class: `badge promise ${reply.state.replace("_", "-")}`, id, "data-state": reply.state,
    title: t("replyBy", {t: clock(reply.reply_by)})}, text);
}

function clock(ts) {
  return new Date(ts * 1000).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB",
    {month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"});
}

function reasonText(reason) { return I18N[state.lang].reasons[reason] || reason || t("none"); }
function resolutionText(r) { return I18N[state.lang].resolutions[r] || r; }

// -- static texts ------------------------------------------------------------------------------------------

function translatePage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = `kefu — ${t("console")}`;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-title]").forEach((el) => { el.title = t(el.dataset.i18nTitle); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  $("lang").textContent = state.lang === "zh" ? "English" : "中文";
  $("reply").placeholder = state.noteMode ? t("addNote") : t("write");
}

// -- lists -------------------------------------------------------------------------------------------------

async function refreshLists() {
  const [queue, open] = await Promise.all([api("GET", "/api/agent/queue"), api("GET", "/api/agent/conversations")]);
  state.lists.queue = queue;
  state.lists.open = open;
  state.lists.mine = open.filter((c) => c.agent === state.me.agent.username);
  $("count-queue").textContent = queue.length || "";
  $("count-queue").classList.toggle("hot", queue.length > 0);
  $("count-mine").textContent = state.lists.mine.length || "";
  $("count-open").textContent = open.length || "";
  renderList();
}

function badge(text, cls) { return h("span", {class: `badge ${cls || ""}`}, text); }

function renderList() {
  const view = ["queue", "mine", "open"].includes(state.view) ? state.view : "queue";
  $("list-title").textContent = t(view);
  const items = state.lists[view];
  const list = clear($("list"));
  $("list-empty").hidden = items.length > 0;
  $("list-empty").textContent = t({queue: "emptyQueue", mine: "emptyMine", open: "emptyOpen"}[view]);
  for (const item of items) {
    const selected = state.current && state.current.conversation_id === item.conversation_id;
    const classes = ["item", selected ? "selected" : "", state.unread.has(item.conversation_id) ? "unread" : ""];
    list.append(h("li", {class: classes.join(" "), "data-id": item.conversation_id,
      onclick: () => openConversation(item.conversation_id)},
      h("div", {class: "item-top"},
        h("span", {class: "item-id"}, item.position ? `#${item.position} ` : "", item.conversation_id),
        h("span", {class: "wait"}, item.state === "assigned" ? t("assignedTo", {a: item.agent_name || item.agent})
          : t("waiting", {t: duration(item.waiting_s)}))),
      h("div", {class: "item-meta"},
        replyBadge(item.reply),
        item.priority && item.priority !== "normal" ? badge(t(item.priority), item.priority) : null,
        badge(reasonText(item.reason), "reason"),
        badge(item.channel || "?"), badge((item.language || "?").toUpperCase()),
        item.group ? badge(item.group) : null)));
  }
}

// -- a conversation ----------------------------------------------------------------------------------------

// The conversation being loaded. Only the latest load is drawn (a click, a claim and a live update can each
// start one; their answers may come back in any order), and live events that arrive while it loads are kept
// and added after the stored ones, so nothing said in the meantime is lost.
let opening = null;

// `show`: bring the conversation views forward (a ticket's link); live updates, actions and the language button
// refresh the conversation without leaving the tickets or statistics page the agent is reading.
async function openConversation(id, show) {
  const load = {id, live: opening && opening.id === id ? opening.live : []};
  opening = load;
  let data;
  try { data = await api("GET", `/api/agent/conversations/${encodeURIComponent(id)}`); }
  catch (error) {
    if (opening === load) { opening = null; toast(`${t("errorPrefix")}: ${error.message}`, true); }
    return;
  }
  if (opening !== load) return;  // a later load of this or another conversation wins
  opening = null;
  state.current = data;
  state.seqs = new Set();
  state.lastButtons = [];
  state.unread.delete(id);
  if (show && !["queue", "mine", "open"].includes(state.view)) switchView(data.state === "queued" ? "queue" : "open");
  $("placeholder").hidden = true;
  $("conv").hidden = false;
  $("context").hidden = false;
  renderHead();
  clear($("transcript"));
  for (const event of data.events) addEvent(event);
  for (const event of load.live) addEvent(event);  // seq numbers drop the ones the answer already had
  renderContext();
  renderComposer();
  renderList();
  scrollDown();
}

function stateBadge(s) {
  return badge({queued: t("queued"), assigned: t("assigned"), closed: t("closedState"), bot: t("botState")}[s] || s, s);
}

function renderHead() {
  const c = state.current;
  $("conv-title").textContent = c.conversation_id;
  clear($("conv-badges")).append(stateBadge(c.state), replyBadge(c.reply, "reply-badge") || "",
    c.priority && c.priority !== "normal" ? badge(t(c.priority), c.priority) : "",
    badge(c.channel || "?"), badge((c.language || "?").toUpperCase()),
    c.group ? badge(c.group) : "",
    c.agent ? badge(t("assignedTo", {a: c.agent_name || c.agent})) : "");
  const actions = clear($("conv-actions"));
  if (c.state === "queued") {
    actions.append(h("button", {class: "primary", id: "claim", onclick: claim}, t("claim")));
  }
  if (c.can_write) {
    const transfer = h("button", {class: "btn", id: "transfer", type: "button", "aria-haspopup": "true",
      "aria-expanded": "false", "aria-controls": "transfer-menu", onclick: openTransferMenu}, t("transfer"));
    const resolution = h("select", {id: "resolution", "aria-label": "resolution"},
      state.me.resolutions.map((r) => h("option", {value: r}, resolutionText(r))));
    actions.append(h("div", {class: "transfer"}, transfer, h("div", {id: "transfer-menu", class: "menu", hidden: true})),
      resolution, h("button", {class: "btn danger", id: "close", onclick: closeConversation},
      t("close")));
  }
  if (state.me.agent.role === "admin") {
    actions.append(h("div", {class: "transfer"}, h("button", {class: "btn danger", id: "erase", type: "button",
      "aria-haspopup": "true", "aria-expanded": "false", "aria-controls": "erase-menu", onclick: askErase}, t("erase")),
      h("div", {id: "erase-menu", class: "menu", hidden: true})));
  }
}

function sysLine(text) { return h("div", {class: "sys"}, text); }

function describeEvent(e) {
  switch (e.event) {
    case "handoff_requested": return sysLine(t("sysRequested", {r: reasonText(e.reason)}));
    case "queued": return sysLine(e.nobody_online ? t("sysQueuedNobody", {p: e.position})
      : t("sysQueued", {p: e.position, m: Math.max(1, Math.ceil((e.eta_s || 60) / 60))}));
    case "agent_assigned": return sysLine(t(e.transferred_from ? "sysTransferred" : "sysAssigned",
      {a: e.agent_name || e.agent}));
    case "handoff_ended": return sysLine(t("sysEnded", {r: resolutionText(e.resolution)}));
    case "handoff_cancelled": return sysLine(t(e.leave_message ? "sysLeftToWrite" : "sysCancelled"));
    case "handoff_unavailable": return sysLine(t("sysUnavailable", {r: e.reason}));
    case "ticket_created": return sysLine(t("sysTicket", {t: e.ticket_id}));
    case "csat": return sysLine(t("sysCsat", {s: e.score}));
    case "user": return h("div", {class: "msg user"}, h("span", {class: "who"}, t("shopperLabel"), " · ", clock(e.timestamp)),
      h("div", {class: "bubble"}, shopperSaw(e)), ...mailParts(e.metadata || {}));
    case "bot": {
      if (!e.text) return null;
      state.lastButtons = (e.data || {}).buttons || [];
      const buttons = state.lastButtons.map((b) => h("span", null, b.title || b.payload));
      return h("div", {class: "msg bot"}, h("span", {class: "who"}, t("bot"), " · ", clock(e.timestamp)),
        h("div", {class: "bubble"}, e.text), buttons.length ? h("div", {class: "buttons"}, buttons) : null);
    }
    case "agent_message": return h("div", {class: "msg agent"},
      h("span", {class: "who"}, e.agent === state.me.agent.username ? t("you") : (e.agent_name || e.agent), " · ",
        clock(e.timestamp)), h("div", {class: "bubble"}, e.text || ""));
    case "agent_note": return h("div", {class: "msg note"}, h("span", {class: "who"}, t("note"), " · ", agentName(e), " · ",
      clock(e.timestamp)), h("div", {class: "bubble"}, e.text || ""));
    default: return null;
  }
}

// What an e-mail brought besides its new text: its attachments (kept like chat uploads) and the whole original.
function mailParts(meta) {
  const parts = (meta.attachments || []).map((a) => h("div", {class: "attachment"},
    h("a", {href: a.url, target: "_blank", rel: "noopener"}, `📎 ${a.name}`), ` (${Math.ceil((a.size || 0) / 1024)} KB)`));
  const original = (meta.email || {}).original;
  if (original) parts.push(h("details", {class: "original"}, h("summary", null, t("originalMail")),
    h("pre", null, original)));
  return parts;
}

// A button press is stored as its payload (/human_handoff); the shopper saw its title: the one the channel kept
// (the bubble's buttons), else the title of the bot's button with that payload.
function shopperSaw(e) {
  const title = (e.metadata || {}).title;
  if (title) return title;
  const text = e.text || "";
  if (!text.startsWith("/")) return text;
  const button = (state.lastButtons || []).find((b) => b.payload === text);
  return button ? button.title : text;
}

// Agents as shoppers and colleagues know them: the display name, never the login.
function agentName(e) {
  if (e.agent_name) return e.agent_name;
  const colleague = state.agents.find((a) => a.username === e.agent);
  return colleague ? colleague.name : e.agent;
}

function fillPlaceholders(text) { return text.replaceAll("{agent}", state.me.agent.name); }

function addEvent(event) {
  if (event.seq !== undefined) {
    if (state.seqs.has(event.seq)) return false;
    state.seqs.add(event.seq);
  }
  const el = describeEvent(event);
  if (el) $("transcript").append(el);
  return true;
}

function scrollDown() { const tr = $("transcript"); tr.scrollTop = tr.scrollHeight; }

function renderContext() {
  const c = state.current;
  clear($("reason")).append(h("span", {class: "big"}, reasonText(c.reason)),
    c.reason ? h("code", null, c.reason) : null);
  const candidates = clear($("candidates"));
  if (!c.candidates.length) candidates.append(h("p", {class: "empty"}, t("none")));
  for (const cand of c.candidates) {
    const pct = Math.round((cand.score || 0) * 100);
    candidates.append(h("div", {class: "cand"},
      h("div", {class: "cand-top"}, h("span", null, cand.kind === "faq" ? `FAQ · ${cand.id}` : `intent · ${cand.id}`),
        h("div", {class: "score", title: `${t("score")} ${cand.score}`}, h("i", {style: {width: `${pct}%`}})),
        h("span", null, (cand.score || 0).toFixed(2))),
      cand.question ? h("div", {class: "cand-q"}, cand.question) : null,
      cand.text ? h("div", {class: "cand-text"}, cand.text) : null,
      cand.text && c.can_write ? h("button", {class: "btn insert", onclick: () => insertText(cand.text)}, t("insert")) : null));
  }
  const d = c.details || {};
  const rows = [[t("channel"), d.channel], [t("language"), (d.language || "").toUpperCase()], [t("sender"), d.sender],
    [t("orders"), (d.order_numbers || []).join(", ")], [t("tier"), d.tier]];
  if (d.wechat) {
    const w = d.wechat;
    const parts = [];
    if (w.quota_left !== undefined) parts.push(t("quota", {n: w.quota_left}));
    if (w.window_ends) parts.push(t("window", {t: clock(w.window_ends)}));
    if (w.pending) parts.push(t("pending", {n: w.pending}));
    rows.push([t("wechat"), parts.join(" · ")]);
  }
  if (d.email) {
    if (d.email.subject) rows.push([t("subject"), d.email.subject]);
    const failed = d.email.failed || [];
    if (failed.length) rows.push([t("mailFailed"), failed.map((f) => `${clock(f.at)} ${f.error}`).join("; ")]);
  }
  if (d.messenger && d.messenger.window_ends) {
    rows.push([t("messenger"), t("window", {t: clock(d.messenger.window_ends)})]);
  }
  const details = clear($("details"));
  for (const [label, value] of rows) details.append(h("dt", null, label), h("dd", null, value || t("none")));
  const notes = clear($("notes"));
  const list = (c.events || []).filter((e) => e.event === "agent_note");
  if (!list.length) notes.append(h("p", {class: "empty"}, t("noNotes")));
  for (const n of list) notes.append(h("div", {class: "note"}, h("small", null, `${agentName(n)} · ${clock(n.timestamp)}`), n.text));
}

function renderComposer() {
  const c = state.current;
  const canReply = c.can_write;
  const canNote = c.state !== "bot";
  $("composer").classList.toggle("note-mode", state.noteMode);
  $("mode-reply").classList.toggle("active", !state.noteMode);
  $("mode-note").classList.toggle("active", state.noteMode);
  const enabled = state.noteMode ? canNote : canReply;
  $("reply").disabled = !enabled;
  $("send").disabled = !enabled;
  $("send").textContent = state.noteMode ? t("addNote") : t("send");
  $("reply").placeholder = state.noteMode ? t("addNote") : t("write");
  $("composer-state").textContent = state.noteMode || canReply ? "" :
    c.state === "queued" ? t("composerQueued") : c.state === "assigned" ? t("composerOther", {a: c.agent_name || c.agent})
      : t("composerClosed");
}

function insertText(text) {
  const box = $("reply");
  box.value = box.value ? `${box.value}\n${text}` : text;
  box.focus();
}

// -- actions -----------------------------------------------------------------------------------------------

async function act(fn, done) {
  try { await fn(); if (done) toast(done); }
  catch (error) { toast(`${t("errorPrefix")}: ${error.message}`, true); }
  await refreshLists().catch(() => {});
  if (state.current) await openConversation(state.current.conversation_id);
}

async function claim() {
  const id = state.current.conversation_id;
  await act(() => api("POST", `/api/agent/conversations/${encodeURIComponent(id)}/claim`), t("claimed"));
  if (state.current && state.current.can_write) switchView("mine");
}

function closeConversation() {
  const id = state.current.conversation_id;
  const resolution = $("resolution").value;
  return act(() => api("POST", `/api/agent/conversations/${encodeURIComponent(id)}/close`, {resolution}), t("closed"));
}

// Transfer: the menu reads colleagues' presence when it opens (someone who just came online can be picked at
// once), and nothing moves until the agent confirms the colleague or group named in the question.
async function openTransferMenu() {
  const menu = $("transfer-menu");
  if (!menu.hidden) { closeTransferMenu(); return; }
  await loadAgents().catch(() => {});
  const me = state.me.agent.username;
  clear(menu).append(
    h("p", {class: "menu-label"}, t("toAgent")),
    ...state.agents.filter((a) => a.username !== me).map((a) => h("button", {type: "button",
      class: "menu-item", "data-agent": a.username, disabled: a.status === "offline",
      onclick: () => confirmTransfer({agent: a.username}, t("transferTo", {a: a.name}))},
      h("span", {class: `dot ${a.status}`, "aria-hidden": "true"}), `${a.name} · ${t(a.status)} · ${a.load}/${a.capacity}`)),
    h("p", {class: "menu-label"}, t("toGroup")),
    ...state.me.groups.map((g) => h("button", {type: "button", class: "menu-item", "data-group": g,
      onclick: () => confirmTransfer({group: g}, t("transferGroup", {g}))}, g)));
  menu.hidden = false;
  $("transfer").setAttribute("aria-expanded", "true");
  const first = menu.querySelector("button:not([disabled])");
  if (first) first.focus();
}

function closeTransferMenu() {
  const menu = $("transfer-menu");
  if (!menu) return;
  menu.hidden = true;
  $("transfer").setAttribute("aria-expanded", "false");
}

function confirmTransfer(target, question) {
  const id = state.current.conversation_id;
  const menu = clear($("transfer-menu"));
  menu.append(h("p", {class: "confirm", role: "alert"}, question), h("div", {class: "confirm-actions"},
    h("button", {type: "button", class: "primary", id: "transfer-confirm", onclick: () => {
      closeTransferMenu();
      return act(() => api("POST", `/api/agent/conversations/${encodeURIComponent(id)}/transfer`, target),
        t("transferred"));
    }}, t("confirmTransfer")),
    h("button", {type: "button", class: "btn", onclick: closeTransferMenu}, t("cancel"))));
  $("transfer-confirm").focus();
}

// Erasure (admins; the shopper asked for their data to be deleted): nothing is deleted until the admin confirms
// the question that names the conversation.
function askErase() {
  const menu = $("erase-menu");
  if (!menu.hidden) { closeEraseMenu(); return; }
  const id = state.current.conversation_id;
  clear(menu).append(h("p", {class: "confirm", role: "alert"}, t("eraseQuestion", {c: id})),
    h("div", {class: "confirm-actions"},
      h("button", {type: "button", class: "btn danger", id: "erase-confirm", onclick: () => eraseConversation(id)},
        t("confirmErase")),
      h("button", {type: "button", class: "btn", id: "erase-cancel", onclick: closeEraseMenu}, t("cancel"))));
  menu.hidden = false;
  $("erase").setAttribute("aria-expanded", "true");
  $("erase-cancel").focus();
}

function closeEraseMenu() {
  const menu = $("erase-menu");
  if (!menu) return;
  menu.hidden = true;
  $("erase").setAttribute("aria-expanded", "false");
}

async function eraseConversation(id) {
  closeEraseMenu();
  try { await api("DELETE", `/api/agent/conversations/${encodeURIComponent(id)}`); }
  catch (error) { toast(`${t("errorPrefix")}: ${error.message}`, true); return; }
  toast(t("erased"));
  if (state.current && state.current.conversation_id === id) {
    state.current = null;
    $("conv").hidden = true;
    $("context").hidden = true;
    $("placeholder").hidden = false;
  }
  await refreshLists().catch(() => {});
}

async function send() {
  const box = $("reply");
  const text = box.value.trim();
  if (!text || !state.current) return;
  const id = encodeURIComponent(state.current.conversation_id);
  try {
    const event = await api("POST", `/api/agent/conversations/${id}/${state.noteMode ? "notes" : "messages"}`, {text});
    box.value = "";
    sendTyping(false);
    if (addEvent(event)) scrollDown();
    if (event.event === "agent_message" && state.current.reply) {  // the first reply keeps the promise
      state.current.reply = null;
      $("reply-badge")?.remove();
    }
    if (event.event === "agent_note") { state.current.events.push(event); renderContext(); }
  } catch (error) { toast(`${t("errorPrefix")}: ${error.message}`, true); }
}

// -- canned replies (type "/") -----------------------------------------------------------------------------

async function updateCanned() {
  const box = $("reply");
  const match = /^\/(\S*)$/.exec(box.value);
  const panel = $("canned");
  if (!match || state.noteMode || box.disabled) { panel.hidden = true; return; }
  const language = (state.current && state.current.language) || state.lang;
  state.canned = await api("GET", `/api/agent/canned?q=${encodeURIComponent(match[1])}&language=${language}`);
  state.cannedIndex = 0;
  renderCanned();
}

function renderCanned() {
  const panel = clear($("canned"));
  panel.hidden = state.canned.length === 0;
  state.canned.forEach((c, i) => panel.append(h("div", {class: `canned-item ${i === state.cannedIndex ? "active" : ""}`,
    onmousedown: (e) => { e.preventDefault(); pickCanned(i); }},
    h("b", null, `/${c.shortcut}`), c.title, h("span", {class: "t"}, fillPlaceholders(c.text)))));
}

function pickCanned(i) {
  const item = state.canned[i];
  if (!item) return;
  $("reply").value = fillPlaceholders(item.text);
  $("canned").hidden = true;
  $("reply").focus();
}

// -- typing (ephemeral, over the WebSocket) ----------------------------------------------------------------

function sendTyping(on) {
  const c = state.current;
  if (!c || !c.can_write || state.noteMode || !state.socket || state.socket.readyState !== 1) return;
  const now = Date.now();
  if (on && now - state.typingSentAt < 3000) return;
  state.typingSentAt = on ? now : 0;
  state.socket.send(JSON.stringify({type: "typing", conversation_id: c.conversation_id, on}));
}

function showShopperTyping(on) {
  $("typing").textContent = t("shopperTyping");
  $("typing").hidden = !on;
  clearTimeout(state.shopperTypingTimer);
  if (on) state.shopperTypingTimer = setTimeout(() => { $("typing").hidden = true; }, 8000);
}

// -- live updates ------------------------------------------------------------------------------------------

// The side panel (order numbers mentioned, notes) follows the conversation without redrawing the transcript.
let contextTimer = null;
function refreshContextSoon() {
  clearTimeout(contextTimer);
  contextTimer = setTimeout(async () => {
    if (!state.current) return;
    const id = state.current.conversation_id;
    const data = await api("GET", `/api/agent/conversations/${encodeURIComponent(id)}`).catch(() => null);
    if (!data || opening || !state.current || state.current.conversation_id !== id) return;  // a load draws it
    state.current = data;
    renderContext();
  }, 200);
}

let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refreshLists().catch(() => {}), 150);
}

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/agent/ws`);
  state.socket = socket;
  socket.onclose = () => { $("live").classList.remove("on"); renderStatus(); setTimeout(connect, 2000); };
  socket.onmessage = (message) => {
    const data = JSON.parse(message.data);
    if (data.type === "hello") {
      // the server says hello once this console receives live events: from here on nothing is missed, so
      // this is when the lists are re-read and the dot turns green
      $("live").classList.add("on");
      renderStatus();
      refreshSoon();
      return;
    }
    if (data.type === "typing") {
      if (state.current && data.conversation_id === state.current.conversation_id && data.event.role === "user") {
        showShopperTyping(Boolean(data.event.on));
      }
      return;
    }
    if (data.type !== "event") return;
    const event = data.event;
    const shown = opening ? opening.id : state.current && state.current.conversation_id;
    const current = data.conversation_id === shown;
    if (current) {
      if (event.event === "user") { showShopperTyping(false); refreshContextSoon(); }
      if (opening) opening.live.push(event);
      else if (addEvent(event)) scrollDown();
      if (["agent_assigned", "handoff_ended", "queued", "handoff_cancelled", "handoff_unavailable"].includes(event.event)) {
        openConversation(data.conversation_id);
      }
    } else if (event.event === "user") {
      state.unread.add(data.conversation_id);
      renderList();
    }
    if (event.event !== "user" && event.event !== "bot") refreshSoon();
  };
  setInterval(() => { if (socket.readyState === 1) socket.send(JSON.stringify({type: "ping"})); }, 30000);
}

// -- tickets -----------------------------------------------------------------------------------------------

async function loadTickets() {
  const filters = clear($("ticket-filters"));
  for (const [value, label] of [["pending", "ticketPending"], ["in_progress", "ticketIn"], ["resolved", "ticketResolved"], ["", "all"]]) {
    filters.append(h("button", {class: state.ticketFilter === value ? "active" : "",
      onclick: () => { state.ticketFilter = value; loadTickets(); }}, t(label)));
  }
  const tickets = await api("GET", `/api/agent/tickets${state.ticketFilter ? `?status=${state.ticketFilter}` : ""}`);
  const rows = clear($("ticket-rows"));
  $("tickets-empty").hidden = tickets.length > 0;
  for (const ticket of tickets) {
    const status = h("select", {"aria-label": `${t("status")} ${ticket.ticket_id}`}, [["pending", "ticketPending"], ["in_progress", "ticketIn"], ["resolved", "ticketResolved"]]
      .map(([v, l]) => h("option", {value: v, selected: ticket.status === v}, t(l))));
    const reply = h("textarea", {rows: 2, "aria-label": `${t("answer")} ${ticket.ticket_id}`});
    const save = h("button", {class: "btn", onclick: async () => {
      try {
        await api("PATCH", `/api/agent/tickets/${encodeURIComponent(ticket.ticket_id)}`,
          reply.value.trim() ? {status: status.value, reply: reply.value.trim()} : {status: status.value});
        toast(t("sent"));
        loadTickets();
      } catch (error) { toast(`${t("errorPrefix")}: ${error.message}`, true); }
    }}, t("save"));
    rows.append(h("tr", null,
      h("td", null, h("b", null, ticket.ticket_id), h("br"), h("a", {href: "#", onclick: (e) => {
        e.preventDefault(); openConversation(ticket.conversation_id, true);
      }}, ticket.conversation_id)),
      h("td", null, clock(ticket.created_at), h("br"), badge(ticket.channel), " ", badge(ticket.language.toUpperCase()),
        ticket.reply ? h("br") : null, replyBadge(ticket.reply)),
      h("td", {class: "text"}, ticket.text, ...(ticket.replies || []).map((r) => h("div", {class: "sys"}, `${r.agent}: ${r.text}`))),
      h("td", null, status),
      h("td", null, reply, save)));
  }
  $("count-tickets").textContent = state.ticketFilter === "pending" && tickets.length ? tickets.length : $("count-tickets").textContent;
}

// -- statistics --------------------------------------------------------------------------------------------

function pct(x) { return x === null || x === undefined ? t("none") : `${Math.round(x * 1000) / 10}%`; }

async function loadStats() {
  const filters = clear($("stats-filters"));
  for (const days of [1, 7, 30, 90]) {
    filters.append(h("button", {class: state.statsDays === days ? "active" : "",
      onclick: () => { state.statsDays = days; loadStats(); }}, t("days", {n: days})));
  }
  const s = await api("GET", `/api/agent/stats?days=${state.statsDays}`);
  const card = (label, value, sub) => h("div", {class: "card"}, h("div", {class: "label"}, label),
    h("div", {class: "value"}, value), sub ? h("div", {class: "sub"}, sub) : null);
  clear($("stat-cards")).append(
    card(t("conversations"), s.conversations),
    card(t("deflection"), pct(s.deflection_rate)),
    card(t("handoffRate"), pct(s.handoff_rate), `${s.handoffs}`),
    card(t("wrongAnswers"), s.wrong_answers),
    card(t("requests"), s.handoff_requests),
    card(t("firstResponse"), duration(s.first_response_s)),
    card(t("avgWait"), duration(s.average_wait_s)),
    card(t("avgHandling"), duration(s.average_handling_s)),
    card(t("csat"), s.csat_average === null ? t("none") : `${s.csat_average.toFixed(1)} / 5`, t("ratings", {n: s.csat_count})),
    card(t("ticketsOpen"), (s.tickets.pending || 0) + (s.tickets.in_progress || 0)),
    card(t("queueNow"), s.queue_length),
    card(t("agentsOnline"), s.agents_online),
    ...Object.entries(s.reply_within).map(([channel, rule]) => {
      const figures = s.by_channel[channel];
      const outcomes = figures ? figures.promise_outcomes : {kept: 0, broken: 0};
      return h("div", {class: "card", "data-promise": channel}, h("div", {class: "label"},
        t("withinPromiseOf", {p: `${t("promiseHours", {h: rule.hours})} ${I18N[state.lang].clockNames[rule.clock]}`, c: channel})),
        h("div", {class: "value"}, pct(figures ? figures.within_promise_rate : null)),
        h("div", {class: "sub"}, t("ofAnswered", {k: outcomes.kept, n: outcomes.kept + outcomes.broken})));
    }));
  const channels = clear($("stat-channels"));
  const rows = Object.entries(s.by_channel);
  $("channels-empty").hidden = rows.length > 0;
  for (const [channel, c] of rows) {
    channels.append(h("tr", {"data-channel": channel}, h("th", {scope: "row"}, channel),
      h("td", {class: "n"}, c.conversations), h("td", {class: "n"}, c.bot_only),
      h("td", {class: "n"}, c.promised ? pct(c.within_promise_rate) : t("none")),
      h("td", {class: "n"}, duration(c.first_reply_median_s)), h("td", {class: "n"}, duration(c.first_reply_p90_s))));
  }
  const reasons = clear($("stat-reasons"));
  const entries = Object.entries(s.handoff_rate_by_reason);
  if (!entries.length) reasons.append(h("p", {class: "empty"}, t("noData")));
  const max = Math.max(...entries.map(([, v]) => v), 0.0001);
  for (const [reason, rate] of entries) {
    reasons.append(h("div", {class: "row", "data-reason": reason}, h("span", null, reasonText(reason)),
      h("div", {class: "bar"}, h("i", {style: {width: `${Math.round((rate / max) * 100)}%`}})), h("span", {class: "n"}, pct(rate))));
  }
  const outcomes = clear($("stat-outcomes"));
  const ended = Object.entries(s.outcomes);
  if (!ended.length) outcomes.append(h("p", {class: "empty"}, t("noData")));
  for (const [outcome, n] of ended) {
    const label = I18N[state.lang].resolutions[outcome] || I18N[state.lang].outcomeNames[outcome] || outcome;
    outcomes.append(h("div", {class: "row", "data-outcome": outcome}, h("span", null, label),
      h("div", {class: "bar"}, h("i", {style: {width: `${Math.round((n / Math.max(s.handoff_requests, 1)) * 100)}%`}})),
      h("span", {class: "n"}, n)));
  }
  clear($("stat-help")).append(...STAT_HELP.flatMap(([term, meaning]) => [h("dt", null, term[state.lang]),
    h("dd", null, meaning[state.lang])]));
  const hours = clear($("stat-hours"));
  const peak = Math.max(...s.messages_by_hour, 1);
  s.messages_by_hour.forEach((n, hour) => hours.append(h("div", {class: s.busiest_hours.includes(hour) ? "top" : "",
    style: {height: `${Math.round((n / peak) * 100)}%`}, title: `${hour}:00 · ${n}`})));
  clear($("hours-axis")).append(...[...Array(24).keys()].map((i) => h("span", null, i % 3 === 0 ? i : "")));
  const top = clear($("stat-unanswered"));
  if (!s.top_unanswered.length) top.append(h("li", {class: "empty"}, t("noData")));
  for (const q of s.top_unanswered) top.append(h("li", null, q.question, h("span", {class: "n"}, `× ${q.count}`)));
}

// -- the agent's own status: one word and one colour (the dot is hollow while the live connection is down) --

function renderStatus(status) {
  if (status) state.me.status = status;
  $("status").value = state.me.status;
  const dot = $("live");
  dot.dataset.status = state.me.status;
  dot.title = t(state.me.status) + (dot.classList.contains("on") ? "" : ` · ${t("reconnecting")}`);
}

// -- views and start-up ------------------------------------------------------------------------------------

function switchView(view) {
  state.view = view;
  document.querySelectorAll(".tab").forEach((tab) => tab.classList.toggle("active", tab.dataset.view === view));
  $("work").hidden = !["queue", "mine", "open"].includes(view);
  $("tickets-page").hidden = view !== "tickets";
  $("stats-page").hidden = view !== "stats";
  $("knowledge-page").hidden = view !== "knowledge";
  if (view === "tickets") loadTickets().catch((e) => toast(e.message, true));
  else if (view === "stats") loadStats().catch((e) => toast(e.message, true));
  else if (view === "knowledge") loadKnowledge().catch((e) => toast(e.message, true));  // knowledge.js
  else renderList();
}

async function loadAgents() { state.agents = await api("GET", "/api/agent/agents"); }

async function start() {
  state.me = await api("GET", "/api/agent/me");
  $("me-name").textContent = state.me.agent.name;
  translatePage();
  renderStatus(state.me.status);
  document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => switchView(tab.dataset.view)));
  $("status").addEventListener("change", async (e) => {
    const chosen = e.target.value;
    try { await api("PUT", "/api/agent/status", {status: chosen}); renderStatus(chosen); }
    catch (error) { toast(error.message, true); renderStatus(state.me.status); }
    refreshSoon();
  });
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    localStorage.setItem("kefu-console-lang", state.lang);
    translatePage();
    renderList();
    if (state.current) openConversation(state.current.conversation_id);
    if (state.view === "stats") loadStats();
    if (state.view === "tickets") loadTickets();
    if (state.view === "knowledge") loadKnowledge();
  });
  $("logout").addEventListener("click", async () => {
    await api("POST", "/api/agent/logout").catch(() => {});
    location.href = "/console/login";
  });
  // composedPath, not target.closest: choosing a colleague replaces the clicked button by the confirmation,
  // and a detached target has no ancestors left to say the click was inside the menu
  document.addEventListener("click", (e) => {
    if (!e.composedPath().some((node) => node.classList?.contains("transfer"))) closeTransferMenu();
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeTransferMenu(); });
  $("mode-reply").addEventListener("click", () => { state.noteMode = false; renderComposer(); });
  $("mode-note").addEventListener("click", () => { state.noteMode = true; $("canned").hidden = true; renderComposer(); });
  $("send").addEventListener("click", send);
  const box = $("reply");
  box.addEventListener("input", () => { updateCanned().catch(() => {}); if (box.value) sendTyping(true); });
  box.addEventListener("blur", () => { setTimeout(() => { $("canned").hidden = true; }, 150); sendTyping(false); });
  box.addEventListener("keydown", (e) => {
    const open = !$("canned").hidden;
    if (open && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      state.cannedIndex = (state.cannedIndex + (e.key === "ArrowDown" ? 1 : state.canned.length - 1)) % state.canned.length;
      renderCanned();
    } else if (open && (e.key === "Enter" || e.key === "Tab")) {
      e.preventDefault();
      pickCanned(state.cannedIndex);
    } else if (open && e.key === "Escape") {
      $("canned").hidden = true;
    } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  await Promise.all([refreshLists(), loadAgents()]);
  const tickets = await api("GET", "/api/agent/tickets?status=pending");
  $("count-tickets").textContent = tickets.length || "";
  switchView("queue");
  connect();
  setInterval(() => { refreshLists().catch(() => {}); loadAgents().catch(() => {}); }, 15000);
}

document.addEventListener("DOMContentLoaded", () => { start().catch((e) => toast(e.message, true)); });
