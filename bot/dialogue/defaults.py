"""Built-in texts for responses a project may not define (a plain Rasa bot has no `utter_handoff`)."""

from __future__ import annotations

DEFAULT_TEXTS: dict[str, dict[str, str]] = {
    "utter_default": {
        "en": "Sorry, I didn't quite get that. Could you rephrase? You can also ask for a person.",
        "zh": "抱歉，我没太明白您的意思，能换个说法吗？您也可以说“转人工”。",
    },
    "utter_handoff": {
        "en": "I'm connecting you to a person. Please hold on a moment.",
        "zh": "正在为您转接人工客服，请稍候。",
    },
    "utter_handoff_cancelled": {
        "en": "OK, you're back with the bot. How can I help?",
        "zh": "好的，已取消转人工。还有什么可以帮您？",
    },
    "utter_did_you_mean": {
        "en": "I'm not sure I understood. Did you mean one of these?",
        "zh": "我不太确定您的意思，您是想问下面这些吗？",
    },
    "utter_talk_to_person": {"en": "Talk to a person", "zh": "转人工客服"},
    # -- the human handoff (bot/notices.py fills in the {placeholders}) -----------------------------------
    "handoff_queued": {
        "en": "You are number {position} in line, about {minutes} min. You can keep writing; "
              "say \"cancel\" to go back to the bot.",
        "zh": "您当前排在第 {position} 位，预计等待约 {minutes} 分钟。您可以先描述问题；回复“取消”可返回机器人。",
    },
    "handoff_agent_joined": {
        "en": "{agent_name} from our team has joined the chat.",
        "zh": "人工客服 {agent_name} 已接入，将为您服务。",
    },
    "handoff_agent_transferred": {
        "en": "{agent_name} from our team has taken over the chat.",
        "zh": "已为您转接到人工客服 {agent_name}。",
    },
    "handoff_ended": {
        "en": "The chat with our team has ended. I'm back — ask me anything.",
        "zh": "本次人工服务已结束，有其他问题可以随时问我。",
    },
    "handoff_queued_nobody_online": {
        "en": "Nobody from our team is online right now. You're number {position} in line: as soon as someone "
              "logs in, you'll hear your place and how long it will take. Rather not wait? Say \"leave a "
              "message\" and we'll reply here — or \"cancel\" to go back to the bot.",
        "zh": "现在暂时没有人工客服在线。您已排在第 {position} 位，客服上线后会告诉您排队位置和预计等待时间。"
              "不想等的话，回复“留言”即可给我们留言，我们会在这里回复您；回复“取消”可返回机器人。",
    },
    "handoff_unavailable_closed": {
        "en": "Our team is away right now; we're back {next_open}. You can leave a message: say \"leave a "
              "message\" and we'll reply here. Anything else, just ask me.",
        "zh": "现在不在人工客服服务时间，{next_open}恢复服务。您可以回复“留言”给我们留言，我们会在这里回复您；"
              "其他问题也可以继续问我。",
    },
    "handoff_unavailable_offline": {
        "en": "Sorry, nobody from our team is online right now. You can leave a message: say \"leave a "
              "message\" and we'll reply here. Anything else, just ask me.",
        "zh": "抱歉，现在暂时没有人工客服在线。您可以回复“留言”给我们留言，我们会尽快在这里回复您；"
              "其他问题也可以继续问我。",
    },
    "handoff_unavailable_timeout": {
        "en": "Sorry, it's taking longer than usual to reach someone. You can leave a message: say \"leave a "
              "message\" and we'll reply here. Anything else, just ask me.",
        "zh": "抱歉，客服暂时都在忙，等待时间较长。您可以回复“留言”给我们留言，我们会尽快在这里回复您；"
              "其他问题也可以继续问我。",
    },
    "handoff_next_open_unknown": {"en": "soon", "zh": "稍后"},
    "handoff_lost": {
        "en": "Sorry, your request for a person didn't get through. Say \"talk to a human\" to try again.",
        "zh": "抱歉，刚才的转人工请求没有成功，请再说一次“转人工”。",
    },
    "ticket_created": {
        "en": "Thank you — your message is with our team (ticket {ticket_id}). We'll reply here as soon as we "
              "can; ask \"my ticket\" any time to check on it.",
        "zh": "已收到您的留言（工单号 {ticket_id}），我们会尽快在这里回复您。随时发送“工单进度”即可查看处理情况。",
    },
    "ticket_status": {"en": "Ticket {ticket_id}: {status}.", "zh": "工单 {ticket_id}：{status}。"},
    "ticket_pending": {"en": "waiting for our team", "zh": "待处理"},
    "ticket_in_progress": {"en": "being worked on", "zh": "处理中"},
    "ticket_resolved": {"en": "resolved", "zh": "已解决"},
    "utter_ask_rating": {
        "en": "How did we do? Please rate this chat from 1 (poor) to 5 (excellent).",
        "zh": "请为本次服务打分：1 分（很差）到 5 分（很好）。",
    },
    "utter_thanks_for_rating": {
        "en": "Thank you for your feedback!",
        "zh": "感谢您的评价！",
    },
    "utter_ask_leave_message": {
        "en": "OK — please write your message for our team in one message (what it's about, and your order "
              "number if you have one). We'll reply here. Say \"cancel\" if you'd rather not.",
        "zh": "好的，请用一条消息写下您要留给客服的话（什么问题，有订单号的话也请附上），我们会在这里回复您。"
              "回复“取消”则不留言。",
    },
    "utter_ticket_cancelled": {
        "en": "OK, no message left. Anything else I can help with?",
        "zh": "好的，不留言了。还有什么可以帮您？",
    },
}


def default_text(name: str, language: str | None) -> str | None:
    texts = DEFAULT_TEXTS.get(name)
    if not texts:
        return None
    return texts.get(language or "en") or texts["en"]
