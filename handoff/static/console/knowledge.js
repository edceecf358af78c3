// kefu agent console: the Knowledge page (bot/knowledge/routes.py). Uses app.js's h, t, api, toast and state.
// Every agent reads; editors and admins publish (the server says which: may_publish, and refuses others with 403).
// Each publish is a new version, served by every worker within seconds; the history rolls back to any of them.
"use strict";

Object.assign(I18N.en, {
  knowledge: "Knowledge", knSearch: "Search questions, answers, tags…", knAdd: "New entry", knAll: "All categories",
  knEntry: "Entry", knCategory: "Category", knAnswered: "Answered 7 / 30 days", knThenPerson: "Then asked for a person 7 / 30",
  knId: "Id (used in statistics; cannot change)", knTitleZh: "Title (Chinese)", knTitleEn: "Title (English)",
  knTags: "Tags (comma-separated words shoppers use)", knQuestionsZh: "Questions in Chinese (one per line)",
  knQuestionsEn: "Questions in English (one per line)", knAnswerZh: "Answer in Chinese", knAnswerEn: "Answer in English",
  knDisabled: "Disabled (kept, but the bot does not answer from it)", knSummary: "What changed (for the history)",
  knPublish: "Publish", knDelete: "Delete", knHistory: "Versions", knRollback: "Roll back to this",
  knPublished: "Version {n} published: the bot answers with it now.", knReadOnly: "You can read the knowledge; editors and admins publish changes.",
  knServing: "The bot answers from version {n}.", knServingTrained: "The bot answers from the trained model's FAQ (data/faq.yml).",
  knNew: "New entry", knEdit: "Edit {id}", knConfirmDelete: "Delete {id}? The bot stops answering from it (a roll-back restores it).",
  knConfirmRollback: "Publish version {n}'s entries again as a new version?", knBy: "{a}, {t}", knEmpty: "No entry matches.",
  knOff: "disabled", knTrained: "the trained model's FAQ (data/faq.yml)",
  knGaps: "Questions the bot could not answer (last 30 days)", knGapsHelp: "Grouped by meaning, largest groups first.",
  knNoGaps: "Nothing unanswered.", knAsked: "asked {n}×", knAgentsReplied: "Agents replied:",
  knAddTo: "Add as phrasings of “{t}” (suggested)", knDraft: "Draft a new entry from the agents' replies",
  knPreview: "Preview the effect", knReplayed: "Replayed the last {n} real questions: {c} answers change, {a} newly answered, {l} no longer answered.",
  knLoud: "Shoppers who wanted a person would now get the bot:", knNothing: "nothing answered",
  knRegressions: "Test questions that would lose their right answer:",
});
Object.assign(I18N.zh, {
  knowledge: "知识库", knSearch: "搜索问题、答案、标签…", knAdd: "新建条目", knAll: "全部分类",
  knEntry: "条目", knCategory: "分类", knAnswered: "回答次数 7 / 30 天", knThenPerson: "之后仍转人工 7 / 30 天",
  knId: "编号（用于统计，不可修改）", knTitleZh: "标题（中文）", knTitleEn: "标题（英文）",
  knTags: "标签（逗号分隔，顾客常用的词）", knQuestionsZh: "中文问法（每行一个）", knQuestionsEn: "英文问法（每行一个）",
  knAnswerZh: "中文答案", knAnswerEn: "英文答案", knDisabled: "停用（保留条目，机器人不再用它回答）",
  knSummary: "改了什么（记入历史）", knPublish: "发布", knDelete: "删除", knHistory: "版本历史", knRollback: "回滚到此版本",
  knPublished: "已发布版本 {n}：机器人现在按它回答。", knReadOnly: "您可以查看知识库；编辑和管理员才能发布修改。",
  knServing: "机器人当前按版本 {n} 回答。", knServingTrained: "机器人当前按训练模型中的 FAQ（data/faq.yml）回答。",
  knNew: "新建条目", knEdit: "编辑 {id}", knConfirmDelete: "删除 {id}？机器人将不再用它回答（可通过回滚恢复）。",
  knConfirmRollback: "把版本 {n} 的内容重新发布为新版本？", knBy: "{a}，{t}", knEmpty: "没有匹配的条目。",
  knOff: "已停用", knTrained: "训练模型中的 FAQ（data/faq.yml）",
  knGaps: "机器人没能回答的问题（近 30 天）", knGapsHelp: "按意思分组，数量多的在前。", knNoGaps: "没有未解答的问题。",
  knAsked: "被问 {n} 次", knAgentsReplied: "客服的回复：", knAddTo: "作为“{t}”的新问法加入（建议）",
  knDraft: "用客服的回复起草新条目", knPreview: "预览效果",
  knReplayed: "重放了 {n} 个问题（项目的测试问题和最近的真实问题）：{c} 个回答会变，{a} 个新能回答，{l} 个不再回答。",
  knLoud: "原本想找人工的顾客，现在会由机器人回答：", knNothing: "不回答",
  knRegressions: "会失去正确答案的测试问题：",
});

const kn = {data: null, editing: null, searchTimer: null, wired: false};

async function loadKnowledge() {
  wireKnowledge();
  const query = new URLSearchParams();
  if ($("kn-search").value.trim()) query.set("q", $("kn-search").value.trim());
  if ($("kn-category").value) query.set("category", $("kn-category").value);
  const [data, history] = await Promise.all([api("GET", `/api/agent/knowledge?${query}`),
    api("GET", "/api/agent/knowledge/versions")]);
  kn.data = data;
  loadGaps().catch((e) => toast(e.message, true));
  $("kn-state").textContent = (data.version ? t("knServing", {n: data.version}) : t("knServingTrained"))
    + (data.may_publish ? "" : ` ${t("knReadOnly")}`);
  $("kn-add").hidden = !data.may_publish;
  renderCategories(data.categories);
  renderEntries(data.entries);
  renderVersions(history.versions, data.may_publish);
}

function wireKnowledge() {
  if (kn.wired) return;
  kn.wired = true;
  $("kn-search").addEventListener("input", () => {
    clearTimeout(kn.searchTimer);
    kn.searchTimer = setTimeout(() => loadKnowledge().catch((e) => toast(e.message, true)), 250);
  });
  $("kn-category").addEventListener("change", () => loadKnowledge().catch((e) => toast(e.message, true)));
  $("kn-add").addEventListener("click", () => openEntry(null));
  $("kn-cancel").addEventListener("click", () => { $("kn-editor").hidden = true; kn.editing = null; });
  $("kn-editor").addEventListener("submit", (e) => { e.preventDefault(); publishEntry(); });
  $("kn-delete").addEventListener("click", deleteEntry);
  $("kn-preview-btn").addEventListener("click", previewEntry);
}

async function loadGaps() {
  const data = await api("GET", "/api/agent/knowledge/gaps?days=30");
  const list = clear($("kn-gaps"));
  if (!data.groups.length) list.append(h("li", {class: "empty"}, t("knNoGaps")));
  for (const [i, group] of data.groups.entries()) {
    const s = group.suggested;
    list.append(h("li", {"data-group": i},
      h("div", null, h("b", null, t("knAsked", {n: group.count})), " ", badge(group.language.toUpperCase())),
      h("ul", null, group.questions.slice(0, 5).map((q) => h("li", {class: "q"}, q))),
      group.replies.length ? h("div", {class: "reply"}, t("knAgentsReplied"), " ", group.replies[0]) : null,
      kn.data.may_publish && s ? h("button", {class: "btn kn-add-to", type: "button",
        onclick: () => addPhrasings(s.id, group)}, t("knAddTo", {t: s.title})) : null,
      kn.data.may_publish ? h("button", {class: "btn kn-draft", type: "button",
        onclick: () => openDraft(group.draft)}, t("knDraft")) : null));
  }
}

function addPhrasings(entryId, group) {
  const entry = kn.data.entries.find((e) => e.id === entryId);
  if (!entry) return;
  openEntry(entry);
  const box = field(`questions_${group.language}`);
  const known = new Set(lines(box.value));
  box.value = [...lines(box.value), ...group.questions.filter((q) => !known.has(q))].join("\n");
}

function openDraft(draft) {
  openEntry(null);
  field("id").value = draft.id;
  field("category").value = draft.category;
  field("questions_zh").value = (draft.questions.zh || []).join("\n");
  field("questions_en").value = (draft.questions.en || []).join("\n");
  field("answer_zh").value = draft.answer.zh || "";
  field("answer_en").value = draft.answer.en || "";
}

async function previewEntry() {
  const box = clear($("kn-preview"));
  box.hidden = false;
  try {
    const effect = await api("POST", "/api/agent/knowledge/preview", {entry: formEntry()});
    if (effect.person_wanted_now_bot.length) {
      box.append(h("div", {class: "loud", role: "alert"}, t("knLoud"),
        h("ul", null, effect.person_wanted_now_bot.map((q) => h("li", null, q)))));
    }
    if (effect.test_regressions.length) {
      box.append(h("div", {class: "loud", role: "alert"}, t("knRegressions"),
        h("ul", null, effect.test_regressions.map((q) => h("li", null, q)))));
    }
    box.append(h("p", null, t("knReplayed", {n: effect.replayed, c: effect.changed.length,
      a: effect.newly_answered, l: effect.no_longer_answered})));
    box.append(h("ul", null, effect.changed.map((c) => h("li", null, `${c.question}: ${c.before || t("knNothing")} → ${c.after || t("knNothing")}`))));
  } catch (e) {
    box.append(h("p", {class: "kn-error"}, `${t("errorPrefix")}: ${e.message}`));
  }
}

function renderCategories(categories) {
  const select = $("kn-category");
  const chosen = select.value;
  clear(select).append(h("option", {value: ""}, t("knAll")), ...categories.map((c) => h("option", {value: c}, c)));
  select.value = categories.includes(chosen) ? chosen : "";
}

function entryTitle(entry) {
  const titles = entry.title || {};
  return titles[state.lang] || titles.en || titles.zh || (entry.questions[state.lang] || [])[0] || entry.id;
}

function renderEntries(entries) {
  const rows = clear($("kn-rows"));
  if (!entries.length) rows.append(h("tr", null, h("td", {colspan: 4, class: "empty"}, t("knEmpty"))));
  for (const entry of entries) {
    const u = entry.usage;
    rows.append(h("tr", {class: `kn-row${entry.disabled ? " kn-off" : ""}${kn.editing === entry.id ? " active" : ""}`,
      "data-id": entry.id, tabindex: 0, onclick: () => openEntry(entry),
      onkeydown: (e) => { if (e.key === "Enter") openEntry(entry); }},
      h("td", null, entryTitle(entry), h("small", null, entry.id, entry.disabled ? ` · ${t("knOff")}` : "")),
      h("td", null, entry.category),
      h("td", {class: "n"}, `${u.answered_7d} / ${u.answered_30d}`),
      h("td", {class: "n"}, `${u.then_person_7d} / ${u.then_person_30d}`)));
  }
}

function renderVersions(versions, mayPublish) {
  const list = clear($("kn-versions"));
  for (const v of versions) {
    list.append(h("li", {"data-version": v.number}, h("b", null, `v${v.number}`), " ", v.summary, " — ",
      t("knBy", {a: v.author, t: new Date(v.at * 1000).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB")}),
      mayPublish && v.number !== kn.data.version ? h("button", {class: "btn", type: "button",
        onclick: () => rollBack(v.number)}, t("knRollback")) : null));
  }
  if (versions.length) {  // before the first publication: the trained model's FAQ
    list.append(h("li", {"data-version": 0}, h("b", null, "v0"), " ", t("knTrained"),
      mayPublish && kn.data.version !== 0 ? h("button", {class: "btn", type: "button", onclick: () => rollBack(0)},
        t("knRollback")) : null));
  }
}

function field(name) { return $("kn-editor").elements.namedItem(name); }
function lines(text) { return text.split("\n").map((s) => s.trim()).filter(Boolean); }

function openEntry(entry) {
  const form = $("kn-editor");
  const editable = kn.data.may_publish;
  kn.editing = entry ? entry.id : null;
  form.hidden = false;
  form.reset();
  $("kn-error").hidden = true;
  $("kn-preview").hidden = true;
  clear($("kn-warnings"));
  $("kn-editor-title").textContent = entry ? t("knEdit", {id: entry.id}) : t("knNew");
  if (entry) {
    field("id").value = entry.id;
    field("category").value = entry.category;
    field("title_zh").value = (entry.title || {}).zh || "";
    field("title_en").value = (entry.title || {}).en || "";
    field("tags").value = (entry.tags || []).join(", ");
    field("questions_zh").value = (entry.questions.zh || []).join("\n");
    field("questions_en").value = (entry.questions.en || []).join("\n");
    field("answer_zh").value = entry.answer.zh || "";
    field("answer_en").value = entry.answer.en || "";
    field("disabled").checked = entry.disabled;
  }
  for (const el of form.elements) if (el.name) el.disabled = !editable || (el.name === "id" && !!entry);
  $("kn-publish").hidden = !editable;
  $("kn-preview-btn").hidden = !editable;
  $("kn-delete").hidden = !editable || !entry;
  document.querySelectorAll("#kn-rows tr").forEach((row) => row.classList.toggle("active", row.dataset.id === kn.editing));
}

function formEntry() {
  const entry = {
    id: field("id").value.trim(), category: field("category").value.trim(),
    tags: field("tags").value.split(/[,，]/).map((s) => s.trim()).filter(Boolean),
    questions: {zh: lines(field("questions_zh").value), en: lines(field("questions_en").value)},
    answer: {zh: field("answer_zh").value.trim(), en: field("answer_en").value.trim()},
    disabled: field("disabled").checked,
  };
  const title = {zh: field("title_zh").value.trim(), en: field("title_en").value.trim()};
  if (title.zh || title.en) entry.title = title;
  return entry;
}

async function publishEntry() {
  const entry = formEntry();
  const body = {entry, based_on: kn.data.head, summary: field("summary").value.trim() || undefined};
  const error = $("kn-error");
  error.hidden = true;
  try {
    const result = kn.editing
      ? await api("PUT", `/api/agent/knowledge/entries/${encodeURIComponent(kn.editing)}`, body)
      : await api("POST", "/api/agent/knowledge/entries", body);
    toast(t("knPublished", {n: result.version.number}));
    kn.editing = entry.id;
    await loadKnowledge();
    const warnings = clear($("kn-warnings"));
    for (const w of result.warnings) warnings.append(h("li", null, w));
  } catch (e) {
    error.textContent = `${t("errorPrefix")}: ${e.message}`;
    error.hidden = false;
  }
}

async function deleteEntry() {
  if (!kn.editing || !confirm(t("knConfirmDelete", {id: kn.editing}))) return;
  try {
    const result = await api("DELETE", `/api/agent/knowledge/entries/${encodeURIComponent(kn.editing)}`,
      {based_on: kn.data.head});
    toast(t("knPublished", {n: result.version.number}));
    $("kn-editor").hidden = true;
    kn.editing = null;
    await loadKnowledge();
  } catch (e) { toast(`${t("errorPrefix")}: ${e.message}`, true); }
}

async function rollBack(number) {
  if (!confirm(t("knConfirmRollback", {n: number}))) return;
  try {
    const result = await api("POST", "/api/agent/knowledge/rollback", {version: number});
    toast(t("knPublished", {n: result.version.number}));
    $("kn-editor").hidden = true;
    kn.editing = null;
    await loadKnowledge();
  } catch (e) { toast(`${t("errorPrefix")}: ${e.message}`, true); }
}
