"""Dialogue behaviour without NLU: rules, memorised stories, forms, fallback and escalation decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.action_runner import ActionResult
from bot.config import Config
from bot.dialogue import events as ev
from bot.dialogue.engine import DialogueEngine
from bot.dialogue.policies import MemoizationPolicy, RulePolicy
from bot.dialogue.states import LISTEN
from bot.dialogue.tracker import Tracker
from bot.formats.domain import parse_domain
from bot.formats.project import load_project
from bot.formats.stories import parse_stories
from bot.formats.yaml_io import DataError, load_yaml_text
from bot.model import domain_for_runtime

DOMAIN = """
intents: [greet, mood_unhappy, mood_great, affirm, deny, human_handoff, order_status, inform, complaint, faq]
entities: [order_id]
slots:
  language: {type: categorical, values: [zh, en], influence_conversation: false, mappings: [{type: custom}]}
  order_id:
    type: text
    mappings: [{type: from_entity, entity: order_id}]
forms:
  order_form: {required_slots: [order_id]}
responses:
  utter_greet:
    - condition: [{type: slot, name: language, value: zh}]
      text: 您好！心情怎么样？
    - text: Hey! How are you?
  utter_cheer_up: [{text: "Here is something to cheer you up"}]
  utter_did_that_help: [{text: "Did that help you?"}]
  utter_happy: [{text: "Great, carry on!"}]
  utter_goodbye: [{text: "Bye"}]
  utter_ask_order_id: [{text: "What is your order number?"}]
  utter_order_found: [{text: "Order {order_id} is on its way."}]
  utter_handoff: [{text: "Connecting you to a person."}]
"""
RULES = """
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: person
  steps: [{intent: human_handoff}, {action: action_handoff}]
- rule: start order form
  steps: [{intent: order_status}, {action: order_form}, {active_loop: order_form}]
- rule: submit order form
  condition: [{active_loop: order_form}]
  steps:
  - action: order_form
  - active_loop: null
  - slot_was_set: [{requested_slot: null}]
  - action: utter_order_found
"""
STORIES = """
- story: sad path
  steps:
  - intent: greet
  - action: utter_greet
  - intent: mood_unhappy
  - action: utter_cheer_up
  - action: utter_did_that_help
  - intent: affirm
  - action: utter_happy
- story: sad path 2
  steps:
  - intent: greet
  - action: utter_greet
  - intent: mood_unhappy
  - action: utter_cheer_up
  - action: utter_did_that_help
  - intent: deny
  - action: utter_goodbye
"""


class NoActions:
    def knows(self, name: str) -> bool:
        return False

    async def run(self, name, tracker, domain) -> ActionResult:
        raise AssertionError("no custom actions here")


class RecordingQueue:
    def __init__(self) -> None:
        self.requests: list[dict] = []

    async def request(self, tracker, event):
        self.requests.append(event)
        return [{"event": "queued", "position": len(self.requests), "eta_s": 60}]


@pytest.fixture
def engine():
    domain = domain_for_runtime(parse_domain(load_yaml_text(DOMAIN), "domain.yml"))
    rules, memo = RulePolicy(), MemoizationPolicy(5)
    rules.train(parse_stories(load_yaml_text(RULES), "rules.yml", "rules"), domain)
    memo.train(parse_stories(load_yaml_text(STORIES), "stories.yml", "stories"), domain)
    config = Config()
    queue = RecordingQueue()
    engine = DialogueEngine(domain, rules, memo, config.kefu, config.effective_thresholds(), NoActions(), queue)
    engine.queue = queue
    return engine


def parse(intent: str | None, confidence: float = 0.95, language: str = "en", entities=(), faq=()):
    ranking = [{"name": intent, "confidence": confidence}, {"name": "other", "confidence": 0.01}] if intent else []
    return {"intent": {"name": intent, "confidence": confidence}, "intent_ranking": ranking,
            "entities": list(entities), "language": language, "faq": list(faq)}


async def say(engine, tracker, text, parsed):
    new = await engine.respond(tracker, ev.user(text, parsed, "test"))
    return [e["text"] for e in new if e["event"] == "bot"], new


async def test_rule_answers_in_the_shoppers_language(engine):
    tracker = Tracker.from_events("c1", [], engine.domain)
    texts, _ = await say(engine, tracker, "你好", parse("greet", language="zh"))
    assert texts == ["您好！心情怎么样？"]
    texts, _ = await say(engine, tracker, "hello", parse("greet", language="en"))
    assert texts == ["Hey! How are you?"]


async def test_memorised_story_follows_the_conversation(engine):
    tracker = Tracker.from_events("c2", [], engine.domain)
    await say(engine, tracker, "hi", parse("greet"))
    texts, _ = await say(engine, tracker, "I'm sad", parse("mood_unhappy"))
    assert texts == ["Here is something to cheer you up", "Did that help you?"]
    texts, _ = await say(engine, tracker, "no", parse("deny"))
    assert texts == ["Bye"]


async def test_form_asks_for_missing_slot_then_submits(engine):
    tracker = Tracker.from_events("c3", [], engine.domain)
    texts, _ = await say(engine, tracker, "where is my order", parse("order_status"))
    assert texts == ["What is your order number?"]
    assert tracker.active_loop == "order_form"
    order = [{"entity": "order_id", "value": "KF20240001", "start": 0, "end": 10}]
    texts, _ = await say(engine, tracker, "KF20240001", parse("inform", entities=order))
    assert texts == ["Order KF20240001 is on its way."]
    assert tracker.active_loop is None


async def test_form_does_not_ask_for_what_the_first_message_gave(engine):
    tracker = Tracker.from_events("c4", [], engine.domain)
    order = [{"entity": "order_id", "value": "KF20240002", "start": 0, "end": 10}]
    texts, _ = await say(engine, tracker, "where is KF20240002", parse("order_status", entities=order))
    assert texts == ["Order KF20240002 is on its way."]


async def test_explicit_request_for_a_person_escalates_even_inside_a_form(engine):
    tracker = Tracker.from_events("c5", [], engine.domain)
    await say(engine, tracker, "where is my order", parse("order_status"))
    _, new = await say(engine, tracker, "转人工", parse("inform", confidence=0.3, language="zh"))
    requested = [e for e in new if e["event"] == "handoff_requested"]
    assert requested and requested[0]["reason"] == "explicit_request"
    assert tracker.active_loop is None
    assert tracker.human_holds
    assert engine.queue.requests, "the handoff reached the queue"


async def test_low_confidence_asks_to_rephrase_then_escalates(engine):
    tracker = Tracker.from_events("c6", [], engine.domain)
    _, new = await say(engine, tracker, "blorp", parse("greet", confidence=0.2))
    assert not tracker.human_holds
    fallback = next(e for e in new if e["event"] == "bot")
    assert fallback["data"]["reason"] == "low_intent_confidence"
    assert any(b["payload"] == "/human_handoff" for b in fallback["data"]["buttons"])
    _, new = await say(engine, tracker, "zzzz", parse("greet", confidence=0.1))
    requested = [e for e in new if e["event"] == "handoff_requested"]
    assert requested and requested[0]["reason"] == "repeated_fallback"


async def test_confident_faq_answers_and_weak_intent_does_not_block_it(engine):
    tracker = Tracker.from_events("c7", [], engine.domain)
    hits = [{"id": "shipping_time", "score": 0.9, "answer": "2-4 days", "question": "how long"}]
    texts, new = await say(engine, tracker, "how long is delivery", parse("greet", confidence=0.2, faq=hits))
    assert texts == ["2-4 days"]
    assert any(e.get("name") == "utter_faq" for e in new if e["event"] == "action")


async def test_a_middling_faq_score_answers_only_when_the_intent_classifier_also_says_faq(engine):
    engine.escalation.thresholds = engine.escalation.thresholds.model_copy(update={"faq": 0.55, "faq_with_intent": 0.3})
    hits = [{"id": "shipping_time", "score": 0.4, "answer": "2-4 days", "question": "how long"}]
    texts, _ = await say(engine, Tracker.from_events("c9", [], engine.domain), "delivery how long",
                         parse("faq", confidence=0.8, faq=hits))
    assert texts == ["2-4 days"]
    texts, _ = await say(engine, Tracker.from_events("c10", [], engine.domain), "delivery how long",
                         parse("greet", confidence=0.2, faq=hits))
    assert texts != ["2-4 days"]  # one weak opinion is not enough
    engine.escalation.thresholds = engine.escalation.thresholds.model_copy(update={"faq_with_intent": None})
    texts, _ = await say(engine, Tracker.from_events("c11", [], engine.domain), "delivery how long",
                         parse("faq", confidence=0.8, faq=hits))
    assert texts != ["2-4 days"]


async def test_handoff_carries_top_candidates(engine):
    tracker = Tracker.from_events("c8", [], engine.domain)
    hits = [{"id": f"q{i}", "score": 0.3 - i / 100, "answer": f"a{i}", "question": "?"} for i in range(3)]
    await say(engine, tracker, "something odd", parse("faq", confidence=0.9, faq=hits))
    _, new = await say(engine, tracker, "talk to a human please", parse("human_handoff"))
    requested = next(e for e in new if e["event"] == "handoff_requested")
    assert [c["id"] for c in requested["candidates"]] == ["q0", "q1", "q2"]
    assert requested["candidates"][0]["text"] == "a0"


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_broken_yaml_names_file_and_line(tmp_path):
    write(tmp_path, "domain.yml", "intents: [greet]\n")
    write(tmp_path, "data/nlu.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n   - bad: [\n")
    with pytest.raises(DataError) as err:
        load_project(tmp_path / "config.yml", tmp_path / "domain.yml", [tmp_path / "data"])
    assert "nlu.yml:" in str(err.value) and err.value.line is not None


def test_rule_with_undeclared_intent_is_reported_with_line(tmp_path):
    write(tmp_path, "domain.yml", "intents: [greet]\nresponses:\n  utter_greet: [{text: hi}]\n")
    write(tmp_path, "data/rules.yml", "rules:\n- rule: r\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
          "- rule: s\n  steps:\n  - intent: goodbye\n  - action: utter_greet\n")
    with pytest.raises(DataError) as err:
        load_project(tmp_path / "config.yml", tmp_path / "domain.yml", [tmp_path / "data"])
    assert "'goodbye'" in str(err.value) and err.value.line == 8 and "rules.yml" in str(err.value)


def test_action_without_response_is_reported(tmp_path):
    write(tmp_path, "domain.yml", "intents: [greet]\nresponses:\n  utter_greet: [{text: hi}]\n")
    write(tmp_path, "data/rules.yml", "rules:\n- rule: r\n  steps:\n  - intent: greet\n  - action: utter_bye\n")
    with pytest.raises(DataError, match=r"utter_bye.*add a response"):
        load_project(tmp_path / "config.yml", tmp_path / "domain.yml", [tmp_path / "data"])


@pytest.mark.parametrize("text", ["转人工", "人工客服", "我要找真人", "叫你们经理来", "talk to a human",
                                  "real person please", "agent!!", "let me speak to someone", "human",
                                  "你是机器人吗？我要人工", "put me through to customer service",
                                  "can I chat with a support rep", "我不想跟机器人聊了", "别让机器人回我",
                                  "让你们负责人跟我说", "我想和工作人员沟通一下", "有没有人", "不想跟AI聊",
                                  "get me a real person", "is anybody available?", "I need a supervisor",
                                  "please escalate this", "no bots please", "有真人吗", "给我换人工",
                                  "能不能打电话给我", "are you a robot? i need a human being",
                                  "能喊个同事进来吗", "麻烦售后的同事认真看一下", "喂？屏幕那头有人在看吗",
                                  "could someone from the shop message me back about this",
                                  "u dont get it, anyone else?", "rg", "zhuan ren gong", "叫你们管事的出来",
                                  "之前找过客服了没用，现在再给我转人工", "不要机器人，我要人工",
                                  "还不转人工的话我就差评", "rgkf!", "transfer me", "Renggong kefu",
                                  "let me talk to whoever is in charge of refunds", "麻烦让管发票的同事来看下",
                                  "i want to speek to an agnet", "humna please", "get me a represenative",
                                  "能跟你们领导反映一下吗", "我想向你们经理投诉", "售后在吗",
                                  # someone there now, someone by what they do, someone to get in touch
                                  "帮我转给售后吧", "能安排个工作人员回个电话吗", "负责换货的是谁", "客服小哥在不在",
                                  "现在有人工在线吗", "kefu在吗", "could somebody from your team give me a call",
                                  "I'd like someone from customer support to email me", "are any agents online?",
                                  "Is there a real person who can help with my refund?",
                                  "let me talk to your billing team", "I'd rather chat with a live one",
                                  "晚上有人值班吗，挺急的", "is it possible to speak to someone about my order",
                                  # a complaint or an explanation for someone, help from a person, the shop's
                                  # people by their Taobao names, after-sales looked for
                                  "I want to complain to your manager", "is there a human I could explain it to?",
                                  "can I have a word with someone senior", "pls put me in touch with your warehouse",
                                  "need help from an actual human on this one", "I need someone from billing",
                                  "spent an hour on this, get me a person", "agent or person please",
                                  "not another chatbot, I want a human", "小二在不在", "店主在吗", "我要找售后",
                                  "售后人呢", "Could I speak to the person who helped me before?",
                                  # the bot sent away, a call or a private chat, anyone alive
                                  "机器人一边去", "可以语音通话吗", "加个微信私聊吧", "帮我转过去", "有没有喘气的",
                                  "你们有人没", "sick of this robot", "please call me back", "hey anyone",
                                  # the boss, management, someone to decide or to check, someone on the phone
                                  "让你们老板出来说话", "店主呢", "找个能做主的", "麻烦同事核实一下",
                                  "我想跟人沟通", "could I talk with your management", "is your manager in?",
                                  "could a person take a look at my order", "I'd like this reviewed by your team",
                                  "can you put someone on the phone", "somebody pls help",
                                  # someone who can settle it, by what they do or where they work; the machine sent
                                  # away; "anyone at work?"; pinyin and chat spellings; passed on to someone
                                  "找一个明白事的人来", "这种情况谁能说了算", "我要求升级处理", "联系下你们物流的同事",
                                  "别再用机器敷衍我", "有没有工作人员在线", "麻烦安排个经理来对接", "让他直接回复我",
                                  "叫小二出来", "zhenren", "有人吗？有人吗", "我要找你们上级",
                                  "客服有人上班吗，让她联系我", "please pass this on to your manager",
                                  "could you forward my case to the returns team",
                                  "is there somebody I could talk to about it", "I want it sorted out by a real person",
                                  "get me ur supervisor", "get me someone in the returns team", "can i talk to sum1",
                                  "I need to connect with a staf member", "Can you escalate it to someone senior?",
                                  "the parcel was gone all evening, I need a real person to explain it",
                                  "转人功", "我把电话留这，安排个人打给我",
                                  "could someone who knows the warranty rules check this",
                                  # someone to explain, whoever is in charge of it, sales, the one from before,
                                  # pinyin initials, homophones and Cantonese; sentences that tell when something
                                  # happened beside one that asks for a person
                                  "有没有人能教教我怎么退货", "能不能有个小姐姐给我讲讲", "我要跟你们负责售后的人说",
                                  "请处理退款的同事来一下", "转到管物流的同事那里", "要一个有权限改价的人",
                                  "这单得找人商量下", "快叫人来", "帮我对接一下你们的客户经理", "加一下你们客服的微信",
                                  "经理出来", "之前那个小哥还在吗", "能直接有人跟我聊吗", "派个同事跟我联系",
                                  "我需要一个人来处理", "kf在吗", "rgkf!!", "zrg", "克服在吗", "找个ren",
                                  "我想搵个人帮手", "有冇职员啊", "我唔想同部机倾偈",
                                  "who on your sales team can quote", "I need an account manager",
                                  "who should I talk to about a refund?", "could I discuss this with one of your staff",
                                  "could someone in your returns team call me", "I need someone to check my order",
                                  "please step in", "where's the lady I was talking to?", "I'll wait for an adult",
                                  "real people only please", "is there a kind person who can help me?",
                                  "I want to report this to a staff member",
                                  "Package says delivered on Friday. I need somebody to look into it.",
                                  "is anybody even there?", "put me in the queue please", "我想跟店里的人直接聊",
                                  # someone who can see or decide, someone to own it, queues, voice calls, the
                                  # same person again, formal requests, slips in English
                                  "我要找能改订单的人", "再没人出来说话我就投诉", "给我接一下负责退款的同事",
                                  "这件事请转交你们经理", "换个懂行的来", "快点安排一位", "能否请一位同事帮我看看",
                                  "请相关工作人员联系我", "帮我排一个", "多久能排到人", "这个总得有人负责吧",
                                  "给我找人查一下", "能不能有人跟他解释一下", "给我打个语音", "有没有谁能说清楚",
                                  "有没有真的人类", "I need someone who can reset this for me",
                                  "who can approve a refund this late?", "ok then let your manager decide",
                                  "I'm done talking to a machine", "anyone home?",
                                  "this needs someone to sort it out", "somebody has to check this order",
                                  "connect me please", "queue me for the next agent", "can we do a voice chat",
                                  "is a real person available?",
                                  "could someone book it for me?", "someone tell me what is going on",
                                  "I'd like advice from one of your staff on sizes", "have your team get in touch",
                                  "the lady last week was great, can I get her again?",
                                  "please arrange for someone to phone me", "pls someone contact to me",
                                  # someone fetched in the fewest words, someone of a team asked to act, a role
                                  # asked to call, a callback at a time, a call booked
                                  "钱扣了两次，赶紧找人", "等半天了，来个人", "快递丢了吧，叫人查查", "找人！",
                                  "叫发货的人看一下", "让管售后的来", "帮我转给管发票的", "这个得让人来查",
                                  "找个店员问问", "让你们财务对下账", "我想跟你们的“上司”聊两句",
                                  "请客户经理跟我们联系", "下午三点以后给我回电", "约个call聊聊批量的事",
                                  "想跟你们sales谈谈", "能帮我escalate吗",
                                  "I'd like a person to go through my order", "I want someone to redirect my parcel",
                                  "is there somebody who could check the refund?", "please hand me off to support",
                                  "have a sales representative call us back",
                                  # other names for the shop's people, looped in, reached, attended to; a rank,
                                  # a department put through, someone sent or assigned, the shop's people begged
                                  "can i chat w ur csr pls", "I'd like an actual shop assistant to help me pick",
                                  "kindly let a customer care officer attend to me", "loop in your supervisor",
                                  "can I skip the bot please", "honestly this is not a bot job",
                                  "need one of your staff to sort my refund", "could a real employee look at this?",
                                  "is anybody on your support team free?", "i wanna talk to ur team",
                                  "Agent, please.", "can sum1 from the store call me",
                                  "转下仓库，我要问发货", "派个人去核实一下", "我要个专人跟进", "你们有说得上话的吗",
                                  "求你们的人帮我看看", "换个级别高的来", "店长呢", "能约个回电吗",
                                  "让你们的人下午给我回个消息", "寻个客服帮帮忙",
                                  # "now" said otherwise, a callback or a place in the queue asked for a time
                                  "is anyone around to help at this hour?", "can a real person help me this late?",
                                  "这个点还有客服在吗", "get somebody to reply to me within the hour",
                                  "please have someone ring me tomorrow morning",
                                  "your team opens at 9, queue me up for then",
                                  # the shop's business people in formal words, someone found to call or teach,
                                  # a colleague asked to reply later, a callback to a phone, a call booked
                                  "我司想与贵方销售人员洽谈合作", "麻烦你们找人教我一下怎么开发票",
                                  "请售后的同事回我，我下午才有空", "could your staff ring my cell after 6pm?",
                                  "明天能约个时间视频看看货吗", "这事能电话聊一下吗",
                                  # someone at the store, one of the team to call later, someone of a department,
                                  # a role to deal with, who is on duty now, a colleague asked to get in touch
                                  "could someone at the store confirm my size is still there?",
                                  "once your staff are back, can one of you call me about the refund?",
                                  "物流那边有人可以帮忙看下吗", "想跟你们业务员聊一下定制的事", "现在是谁在值班",
                                  "明天上班后请客服联系我",
                                  # the same person again, someone with authority, someone of the shop to write or
                                  # double-check, passed to whoever dealt with it, staff to approve, one of the
                                  # people to take it on; someone fetched by role, a time to write at, a booked call
                                  "could I continue with him? he had all my details",
                                  "can that guy from this morning take it over again?",
                                  "I want somebody who has the power to refund me", "can sb from the store text me",
                                  "please get me passed to the agent who handled my complaint",
                                  "need a manager to sign off my return",
                                  "I'd like one of your staff to take it from here",
                                  "还是之前那个客服来处理吧", "我想接着找那位聊", "找个年轻人教我弄一下",
                                  "叫你们仓库的出来给个说法", "能来位店员吗", "哪位工作人员能帮我查一下",
                                  "请你们的人下午三点后给我打电话", "帮我约下你们的客服", "zhao ge kefu ba",
                                  # traditional characters and Cantonese, a colleague in Taiwan's word, someone
                                  # assigned or fetched, a line opened, pinyin words; a manager looked for, put in
                                  # touch, the chat forwarded, someone from the shop (not one who called)
                                  "麻煩幫我轉人工客服", "可以請專人跟進我的訂單嗎", "麻烦请你们同仁帮我看一下发票",
                                  "可唔可以搵你哋同事跟进下", "找你们的客服来核实一下", "帮我接通售后的同事",
                                  "bang wo zhao ni men de gong zuo ren yuan", "bang wo zhuan gei shou hou, zhao ge ren",
                                  "where is your supervisor", "can you put me in touch with the warehouse?",
                                  "please pass my case to a real person", "could someone from your store check it?"])
def test_requests_for_a_person_are_always_recognised(text):
    from bot.dialogue.escalation import is_explicit_human_request

    assert is_explicit_human_request(text)


@pytest.mark.parametrize("text", ["am i talking to a human", "is this a real person?", "你是真人吗",
                                  "你是人工还是机器人", "what is 人工智能", "the delivery agent was rude",
                                  "I want a refund", "客服几点上班", "人工客服周末什么时候营业", "老板，这个有货吗",
                                  "我想知道客服电话", "can someone else sign for my parcel",
                                  "my washing machine is not working", "anyone there at like 8am?",
                                  "凌晨两点了，有事想问人工，怎么办", "are you a bot? just curious",
                                  "同事推荐我来买的", "让同事帮我带一下快递", "有人买过这个吗",
                                  "someone from the shop called me about a code, is it real?",
                                  "别转人工，我就问个运费", "不需要真人，谢谢", "no need to transfer me, all good",
                                  "I don't need an agent anymore", "昨天已经联系过客服了，搞定了",
                                  "i already talked to someone, it's fixed", "你们客服小哥真的很专业",
                                  "your support team is amazing", "人工客服多久回复一般", "how fast do agents reply?",
                                  "do I need to speak to someone to cancel, or can I do it in the app?",
                                  "退货必须找客服才行吗", "no agent needed, what's the shipping fee?",
                                  "I don't want a human, just the price", "how many agents do you have",
                                  "客服团队一共多少人啊", "Staff here are really friendly",
                                  "my sister works as a customer service rep", "客服之前说过会补发，我等着",
                                  "urgent: where is my parcel?", "the persons who packed it forgot the lid",
                                  "上周已经跟你们客服反映过了，已经补发了",
                                  "Is the voucher transferable to another person?", "国庆期间客服有人值班吗",
                                  "售后服务怎么样", "找售后服务要多久", "what are your hours on sunday?",
                                  "call me when it ships", "能视频看看实物吗", "转一下账可以吗", "有人买过这个杯子吗",
                                  "老板，这个有货吗", "my friend said someone on the phone asked for her code",
                                  "does the owner design these cups?", "找个便宜点的杯子", "这个杯子别让机器洗吧",
                                  "会员怎么升级", "能安排顺丰发货吗", "礼物送家人的，能安排包装吗", "帮我安排给我家人",
                                  "can I send this to someone as a gift?", "can I pass it to a friend",
                                  "what time are agents there in the evening?", "我在上班，能不能快点帮我查下物流",
                                  "I need someone to sign for my parcel, can the courier leave it at the door?",
                                  "someone from your team already called me, thanks", "KF20240001在哪",
                                  "I finish work at 9. Will there be a person to talk to when I get home?",
                                  "my sister transfers me the money tomorrow, can you hold the bowl?",
                                  "有没有能直接进去看看的店", "hello, anyone there?",
                                  # someone else to do it, not the shop's people; a callback declined
                                  "我找人代付可以吗", "家里来人了，等会儿再说", "能让人帮我代收吗", "我财务报销要发票",
                                  "不用给我回电了", "I need someone to sign for it, can the courier wait?",
                                  # a greeting, a contact question, a home visit, a new one of something
                                  "hey shop assistant", "how can I reach your team on WeChat?",
                                  "能派人上门安装吗", "想换个新的手机号",
                                  "will a person check my photos or is it automatic?"])
def test_questions_about_the_bot_and_people_declined_reached_or_praised_are_not_requests_for_a_person(text):
    from bot.dialogue.escalation import is_explicit_human_request

    assert not is_explicit_human_request(text)


@pytest.mark.parametrize("text", ["my friend said the bot answers faster than a person",
                                  "你们家机器人比真人客服还专业", "Are you hiring customer service staff?",
                                  "不用找人了，已经自己弄好了", "我不想跟人聊，直接告诉我运费",
                                  "does a human read these chats?", "the lady who answered yesterday was lovely",
                                  "这个窗口后面是真人在回吗",
                                  "客服说会补发的，我再等等",
                                  # people who may read a message, a click by mistake, what the shop's people said,
                                  # the bot praised
                                  "do real people ever check the chat logs?", "晚上留言会有人工处理吗",
                                  "oops, hit the transfer to agent button by mistake", "不小心点了转人工，不好意思",
                                  "不用麻烦真人了，我知道了", "the rep told me it ships today, is that right?",
                                  "机器人回答得很到位，谢谢", "真人客服能看得到我们的对话记录吗",
                                  "你这些话是真人打的还是AI写的", "上次跟客服聊得挺好，这次想问下运费",
                                  "之前的客服说能退，怎么操作", "客服就算了，告诉我运费多少", "你们员工多不多",
                                  "听说你们客服回复挺慢的", "你们是外包客服吗", "Are your agents in on New Year's Day?",
                                  "a man pretending to be your staff asked for my password, is this normal?",
                                  "is there a human on Messenger too or just a bot?",
                                  "客服应该下班了吧，不急，帮我查下订单", "机器人也蛮好的，不用等",
                                  "上次找客服聊了很久，今天直接问你吧", "推荐了好几个朋友来买",
                                  "跟你们机器人聊天挺有意思",
                                  "please pass on my thanks to the agent", "is your customer service in-house?",
                                  "the rep I spoke to was lovely, where's my parcel?",
                                  # work done by hand, a person not to be troubled, a past or a later chat
                                  "这个碗是人工烧的还是机器做的", "杯子上的字是人工刻的吗", "不想麻烦客服，我自己看看",
                                  "人工客服说得都没你清楚", "我现在不转，先问问运费", "背后有人在看着吗",
                                  "no people needed, just tell me the fee", "I'd rather not talk to an agent",
                                  "we chatted with your colleague last week about a bulk order",
                                  "I might speak to your team tomorrow, for now the return window please",
                                  "if a person is needed I'll say so",
                                  # someone else to pay, a shop assistant in a store, how to reach a person later,
                                  # whether it hands over by itself, past chats, whether one must talk to a person
                                  "能找人代付吗", "实体店能找店员试穿吗", "找人工在哪里点啊",
                                  "机器人答不上来会自动转人工吗", "跟客服聊过好几次了都很好", "退货需要跟人说吗",
                                  "人工回得比机器人慢吧", "never mind talking to someone, found it",
                                  "I already talked to customer service about it, all sorted",
                                  "I don't need to speak to anyone, what's the fee?", "你们人工和机器人有啥区别",
                                  "周末人工在吗？不是现在找",
                                  # someone posing as the shop's staff, people at work on another day, a colleague
                                  # already reached, a call declined, the after-sales people praised
                                  "有个冒充你们客服的人让我转账", "春节你们有人上班吗",
                                  "we already chatted with one of your colleagues, all good now",
                                  "不用你们打电话，短信告诉我就行", "你们家客服态度很靠谱",
                                  # thanks passed on, one who already sorted it, one's own friend, none needed now
                                  "please give him my thanks, the parcel was perfect",
                                  "the rep already resolved it yesterday, no worries",
                                  "a friend of mine told me about your tea", "帮我向客服小姐姐说声谢谢",
                                  "不用找同事了，问题解决了",
                                  # "bot or not", whether people read the comments, a courier who called, one meant
                                  # to ask for a person and did not need to, the shop's people not to be troubled
                                  "human or not, that was a great answer", "不管是不是机器人，回得挺快",
                                  "评论区有人看吗",
                                  "中通快递员昨天打给我电话说放门口了", "本来想找客服的，你已经说清楚了",
                                  "没必要麻烦同事，我自己改好了",
                                  # the language to speak, thanks in Cantonese, a perk asked about, no reply wanted,
                                  # whom one is talking to, a staff member's word, no person wanted, later not now
                                  "please reply in plain English", "用中文回复我就好", "多謝你哋啲客服",
                                  "银卡有没有人工客服优先", "建议客服回复再快一点，不用回我", "我是在和真人聊吗",
                                  "a staff member told me it ships today, right?",
                                  "I don't want to speak with a person, just the fee please",
                                  "when can I talk to a human? not now, for next week"])
def test_mentions_of_people_that_ask_for_none_overrule_the_classifier(text):
    """The classifier learned the words of a request for a person; these use them without asking for one."""
    from bot.dialogue.escalation import is_explicit_human_request, mentions_a_person_without_asking

    assert mentions_a_person_without_asking(text) and not is_explicit_human_request(text)


async def test_bare_order_number_keeps_the_conversation_language(engine):
    tracker = Tracker.from_events("c9", [], engine.domain)
    await say(engine, tracker, "我的订单在哪", parse("order_status", language="zh"))
    order = [{"entity": "order_id", "value": "KF20240005", "start": 0, "end": 10}]
    await say(engine, tracker, "KF20240005", parse("inform", language="en", entities=order))
    assert tracker.slots["language"] == "zh"


async def test_rule_starting_with_an_action_is_a_condition_not_a_prediction():
    domain = parse_domain(load_yaml_text(DOMAIN), "domain.yml")
    rules = RulePolicy()
    rules.train(parse_stories(load_yaml_text("""
- rule: helped
  steps: [{action: utter_did_that_help}, {intent: affirm}, {action: utter_happy}]
"""), "rules.yml", "rules"), domain)
    config = Config()
    engine = DialogueEngine(domain, rules, MemoizationPolicy(5), config.kefu, config.effective_thresholds(),
                            NoActions())
    tracker = Tracker.from_events("r1", [], domain)
    texts, _ = await say(engine, tracker, "yes", parse("affirm"))
    assert "Did that help you?" not in texts and "Great, carry on!" not in texts
    tracker = Tracker.from_events("r2", [ev.action("utter_did_that_help"), ev.action("action_listen")], domain)
    texts, _ = await say(engine, tracker, "yes", parse("affirm"))
    assert texts == ["Great, carry on!"]


def test_latest_message_carries_the_channel_metadata_like_rasa():
    tracker = Tracker("web:1")
    tracker.apply(ev.user("where is my order", {"intent": {"name": "order_status", "confidence": 0.9}}, "web",
                          "m1", {"customer_id": "C1001"}))
    assert tracker.latest_message["metadata"] == {"customer_id": "C1001"}
    assert tracker.as_rasa_dict()["latest_message"]["metadata"] == {"customer_id": "C1001"}


def test_a_bad_setting_in_config_yml_names_the_file_and_line(tmp_path):
    from bot.config import load_config

    path = write(tmp_path, "config.yml", "language: en\nkefu:\n  thresholds:\n    intent: 0.3\n    faq: 2\n")
    with pytest.raises(DataError) as err:
        load_config(path)
    assert "kefu.thresholds.faq" in str(err.value) and "less than or equal to 1" in str(err.value)
    assert err.value.line in (4, 5) and "config.yml" in str(err.value)


def test_after_a_person_closes_the_chat_the_bot_starts_over_with_the_slots_kept(engine):
    from bot.dialogue.states import tracker_states

    before = [ev.user("hi", parse("greet")), ev.action("utter_greet"), ev.slot("language", "en"),
              ev.user("meh", parse("mood_unhappy")), ev.action("utter_cheer_up"), ev.action("utter_did_that_help"),
              ev.user("person please", parse("human_handoff")), ev.action("action_handoff"),
              {"event": ev.HANDOFF_REQUESTED, "reason": "explicit_request"},
              {"event": ev.AGENT_ASSIGNED, "agent": "li"}, {"event": ev.AGENT_MESSAGE, "text": "sorted", "agent": "li"},
              {"event": ev.HANDOFF_ENDED, "resolution": "resolved"}, ev.user("yes", parse("affirm"))]
    states = tracker_states(before, engine.domain)
    assert states.states == []  # nothing from before the handoff: "yes" is not an answer to utter_did_that_help
    assert states.current()["intent"] == "affirm"
    assert states.slots["language"] == "en"


async def test_a_yes_out_of_the_blue_is_not_taken_as_the_answer_to_a_question_never_asked(engine):
    texts, _ = await say(engine, Tracker.from_events("c20", [], engine.domain), "yes", parse("affirm"))
    assert "Great, carry on!" not in texts  # the stories say so only after "Did that help you?"
    tracker = Tracker.from_events("c21", [], engine.domain)
    await say(engine, tracker, "hi", parse("greet"))
    texts, _ = await say(engine, tracker, "meh", parse("mood_unhappy"))
    assert texts[-1] == "Did that help you?"
    texts, _ = await say(engine, tracker, "yes", parse("affirm"))
    assert texts == ["Great, carry on!"]


@pytest.mark.parametrize(("text", "parsed"), [
    ("hello there", parse("greet", confidence=0.9)),
    ("hmm", parse("greet", confidence=0.3)),  # unsure: low_intent_confidence
    ("hi or bye", {"intent": {"name": "greet", "confidence": 0.5}, "entities": [], "language": "en", "faq": [],
                   "intent_ranking": [{"name": "greet", "confidence": 0.5}, {"name": "deny", "confidence": 0.46}]}),
    ("I want a real person", parse("greet", confidence=0.4)),  # the request wins over an unsure classifier
    ("this is outrageous", parse("complaint", confidence=0.9)),
])
async def test_kefu_evaluate_measures_the_decision_the_bot_applies(engine, text, parsed):
    """`kefu evaluate` and the running engine make one decision from one parse: the intent the engine acts on
    is the label evaluate counts, and a message evaluate rejects gets a fallback or a person from the bot."""
    from bot.evaluate import REJECTED, decided_label

    policy = engine.escalation
    label = decided_label(policy.decide(text, dict(parsed), []), policy, "oos")
    _, new = await say(engine, Tracker.from_events("same", [], engine.domain), text, dict(parsed))
    acted_on = new[0]["parse_data"]["intent"]["name"]
    actions = [e["name"] for e in new if e["event"] == "action"]
    if label == REJECTED:
        assert "action_default_fallback" in actions or "action_handoff" in actions
    else:
        assert acted_on == label and "action_default_fallback" not in actions


# -- Rasa 3 forms and policies ---------------------------------------------------------------------------------

FORM_DOMAIN = """
intents: [book, inform, chitchat, greet, affirm]
entities: [city, date]
slots:
  city: {type: text, influence_conversation: false, mappings: [{type: from_entity, entity: city}]}
  date: {type: text, influence_conversation: false, mappings: [{type: from_entity, entity: date}]}
forms:
  trip_form: {required_slots: [city, date]}
actions: [action_ask_date]
responses:
  utter_ask_trip_form_city: [{text: "Which city?"}]
  utter_ask_city: [{text: "City?"}]
  utter_ask_date: [{text: "When?"}]
  utter_chitchat: [{text: "I'm a bot."}]
  utter_booked: [{text: "Booked {city} on {date}."}]
"""
FORM_RULES = """
- rule: start
  steps: [{intent: book}, {action: trip_form}, {active_loop: trip_form}]
- rule: done
  condition: [{active_loop: trip_form}]
  steps: [{action: trip_form}, {active_loop: null}, {action: utter_booked}]
- rule: chitchat
  steps: [{intent: chitchat}, {action: utter_chitchat}]
"""


class AskingActions:
    """An action server that knows every action name (as a remote one does) and records what it ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def knows(self, name: str) -> bool:
        return True

    async def run(self, name, tracker, domain) -> ActionResult:
        self.ran.append(name)
        return ActionResult(responses=[{"text": f"({name})"}])


@pytest.fixture
def trip():
    domain = domain_for_runtime(parse_domain(load_yaml_text(FORM_DOMAIN), "domain.yml"))
    rules = RulePolicy()
    rules.train(parse_stories(load_yaml_text(FORM_RULES), "rules.yml", "rules"), domain)
    config = Config()
    actions = AskingActions()
    engine = DialogueEngine(domain, rules, MemoizationPolicy(5), config.kefu, config.effective_thresholds(), actions)
    engine.ran = actions.ran
    return engine


async def test_form_asks_with_the_action_the_domain_lists_in_rasas_order(trip):
    """`utter_ask_<form>_<slot>` before `utter_ask_<slot>`; `action_ask_<slot>` only because the domain lists it —
    an action server that would answer `action_ask_trip_form_city` is never asked for it."""
    tracker = Tracker.from_events("t1", [], trip.domain)
    texts, _ = await say(trip, tracker, "book a trip", parse("book"))
    assert texts == ["Which city?"]
    texts, _ = await say(trip, tracker, "Paris", parse("inform", entities=[{"entity": "city", "value": "Paris"}]))
    assert texts == ["(action_ask_date)"]
    assert trip.ran == ["action_ask_date"]
    texts, _ = await say(trip, tracker, "Monday", parse("inform", entities=[{"entity": "date", "value": "Monday"}]))
    assert texts == ["Booked Paris on Monday."] and tracker.active_loop is None


async def test_a_message_the_form_cannot_use_goes_to_the_rules_and_the_form_asks_again(trip):
    tracker = Tracker.from_events("t2", [], trip.domain)
    await say(trip, tracker, "book a trip", parse("book"))
    texts, new = await say(trip, tracker, "who are you?", parse("chitchat"))
    assert texts == ["I'm a bot.", "Which city?"]
    assert [e["event"] for e in new].count("action_execution_rejected") == 1
    assert tracker.active_loop == "trip_form" and tracker.slots["requested_slot"] == "city"


def test_ask_action_resolution_follows_rasa():
    from bot.dialogue.forms import ask_action

    domain = parse_domain(load_yaml_text(FORM_DOMAIN), "domain.yml")
    form = domain.forms["trip_form"]
    assert ask_action(form, "city", domain) == "utter_ask_trip_form_city"
    assert ask_action(form, "date", domain) == "action_ask_date"
    domain.actions.append("action_ask_trip_form_city")
    assert ask_action(form, "city", domain) == "action_ask_trip_form_city"
    assert ask_action(form, "nights", domain) is None


def test_form_turns_collapse_so_rules_about_its_end_hold_for_any_length():
    """Rasa's applied events: the form's happy-path turns vanish from the states, so the state after the form
    ends is the same whether it asked one question or five."""
    from bot.dialogue.states import tracker_states

    domain = domain_for_runtime(parse_domain(load_yaml_text(FORM_DOMAIN), "domain.yml"))
    start = [ev.user("book", parse("book")), ev.action("trip_form"), ev.active_loop("trip_form"), ev.action(LISTEN)]
    long = [*start, ev.user("Paris", parse("inform")), ev.slot("city", "Paris"), ev.action("trip_form"),
            ev.action(LISTEN), ev.user("Monday", parse("inform")), ev.slot("date", "Monday"), ev.action("trip_form"),
            ev.active_loop(None)]
    short = [ev.user("book", parse("book")), ev.action("trip_form"), ev.active_loop("trip_form"),
             ev.active_loop(None)]
    assert tracker_states(long, domain).current() == tracker_states(short, domain).current()
    assert tracker_states(long, domain).slots["date"] == "Monday"


@pytest.mark.parametrize(("config", "domain", "stories", "named"), [
    ("policies: [{name: UnexpecTEDIntentPolicy}]", "", "", "UnexpecTEDIntentPolicy"),
    ("policies: [{name: FormPolicy}]", "", "", "removed in Rasa 3"),
    ("", "", "stories:\n- story: e2e\n  steps:\n  - user: hello\n  - action: utter_greet\n", "end-to-end"),
    ("", "slots:\n  s: {type: addons.MySlot, mappings: []}\n", "", "custom slot types"),
])
def test_rasa_features_kefu_does_not_have_fail_training_by_name(tmp_path, config, domain, stories, named):
    write(tmp_path, "config.yml", "language: en\n" + config + "\n")
    write(tmp_path, "domain.yml", "intents: [greet]\nresponses:\n  utter_greet: [{text: hi}]\n" + domain)
    write(tmp_path, "data/stories.yml", stories or "stories: []\n")
    with pytest.raises(DataError, match=named):
        load_project(tmp_path / "config.yml", tmp_path / "domain.yml", [tmp_path / "data"])


def test_rasas_own_slot_classes_named_by_path_are_its_plain_slot_types(tmp_path):
    """`rasa data migrate` writes `type: rasa.shared.core.slots.AnySlot`; Rasa reads it as `any`, so kefu does."""
    write(tmp_path, "config.yml", "language: en\n")
    write(tmp_path, "domain.yml", "intents: [greet]\nslots:\n"
          "  city: {type: rasa.shared.core.slots.AnySlot, mappings: []}\n"
          "  ok: {type: rasa.shared.core.slots.BooleanSlot, mappings: []}\n")
    write(tmp_path, "data/stories.yml", "stories: []\n")
    project = load_project(tmp_path / "config.yml", tmp_path / "domain.yml", [tmp_path / "data"])
    assert (project.domain.slots["city"].type, project.domain.slots["ok"].type) == ("any", "bool")
    assert not project.domain.slots["city"].influence_conversation


async def test_form_validates_what_the_user_gave_with_the_domains_validation_action(trip):
    trip.domain.actions.append("validate_trip_form")
    tracker = Tracker.from_events("t3", [], trip.domain)
    await say(trip, tracker, "book a trip", parse("book"))
    texts, _ = await say(trip, tracker, "Paris", parse("inform", entities=[{"entity": "city", "value": "Paris"}]))
    assert trip.ran == ["validate_trip_form", "action_ask_date"]
    assert texts == ["(validate_trip_form)", "(action_ask_date)"]


# -- asking back instead of guessing ---------------------------------------------------------------------------

def faq_hit(entry_id: str, score: float) -> dict:
    return {"id": entry_id, "score": score, "answer": f"answer {entry_id}", "question": f"about {entry_id}?"}


@pytest.fixture
def faq_engine(engine):
    from bot.formats.faq_data import FAQEntry

    engine.faq_entries = {
        key: FAQEntry(key, questions={"en": [f"about {key}?"], "zh": [f"关于{key}"]},
                      answers={"en": f"answer {key}", "zh": f"答案 {key}"})
        for key in ("shipping_time", "refund_time", "shipping_fee")}
    engine.escalation.thresholds = engine.escalation.thresholds.model_copy(
        update={"faq": 0.7, "faq_with_intent": None, "faq_clarify": 0.5, "faq_offer": 0.1})
    return engine


async def test_unsure_between_entries_asks_which_one_and_a_button_answers_it(faq_engine):
    from bot.parsing import parse_payload

    tracker = Tracker.from_events("ask", [], faq_engine.domain)
    hits = [faq_hit("shipping_time", 0.45), faq_hit("refund_time", 0.35), faq_hit("shipping_fee", 0.02)]
    texts, new = await say(faq_engine, tracker, "几天到", parse("faq", confidence=0.3, language="zh", faq=hits))
    asked = next(e for e in new if e["event"] == "bot")
    assert asked["data"]["clarify"] == ["shipping_time", "refund_time"]  # the unlikely third is not offered
    titles = [b["title"] for b in asked["data"]["buttons"]]
    assert titles == ["关于shipping_time", "关于refund_time", "转人工客服"]  # named in the shopper's language
    assert not any(e["event"] == "handoff_requested" for e in new)

    pressed = asked["data"]["buttons"][1]["payload"]
    texts, _ = await say(faq_engine, tracker, pressed, parse_payload(pressed, "en"))
    assert texts == ["答案 refund_time"]  # the chosen entry, in the conversation's language


async def test_a_question_the_classifier_calls_a_faq_gets_do_you_mean_rather_than_rephrase(faq_engine):
    """The entries are not likely enough together to ask back on their own, but the intent classifier is sure the
    shopper asks the FAQ something: the likely entry is offered; without that second opinion, "rephrase"."""
    hits = [faq_hit("shipping_time", 0.3), faq_hit("refund_time", 0.05)]
    tracker = Tracker.from_events("sure-faq", [], faq_engine.domain)
    _, new = await say(faq_engine, tracker, "still waiting", parse("faq", confidence=0.95, faq=hits))
    assert next(e for e in new if e["event"] == "bot")["data"]["clarify"] == ["shipping_time"]
    tracker = Tracker.from_events("unsure", [], faq_engine.domain)
    _, new = await say(faq_engine, tracker, "still waiting", parse("faq", confidence=0.3, faq=hits))
    assert "clarify" not in next(e for e in new if e["event"] == "bot")["data"]


async def test_a_second_miss_after_asking_back_goes_to_a_person_with_the_candidates(faq_engine):
    tracker = Tracker.from_events("miss", [], faq_engine.domain)
    hits = [faq_hit("shipping_time", 0.45), faq_hit("refund_time", 0.35)]
    await say(faq_engine, tracker, "how long", parse("faq", confidence=0.3, faq=hits))
    _, new = await say(faq_engine, tracker, "hmm how long then", parse("faq", confidence=0.3, faq=hits))
    requested = next(e for e in new if e["event"] == "handoff_requested")
    assert requested["reason"] == "repeated_fallback"
    assert [c["id"] for c in requested["candidates"]][:2] == ["shipping_time", "refund_time"]


async def answers_in_parts(engine, text: str, whole: list[dict], parts: list[dict]) -> list[str]:
    """What the bot says to a Chinese FAQ question `text` whose whole-message hits are `whole` and whose clauses,
    each with its own hits, are `parts` (as bot/parsing.py parses a message that asks several things)."""
    tracker = Tracker.from_events(f"parts-{text}", [], engine.domain)
    texts, _ = await say(engine, tracker, text, {**parse("faq", confidence=0.9, language="zh", faq=whole),
                                                  "parts": parts})
    return texts


async def test_a_message_with_two_questions_gets_both_answers(faq_engine):
    whole = [faq_hit("shipping_time", 0.5), faq_hit("shipping_fee", 0.45)]
    parts = [{"text": "几天到", "faq": [faq_hit("shipping_time", 0.9)]},
             {"text": "运费多少", "faq": [faq_hit("shipping_fee", 0.85)]}]
    texts = await answers_in_parts(faq_engine, "几天到，运费多少", whole, parts)
    assert texts == ["answer shipping_time", "answer shipping_fee"]


async def test_a_clause_that_only_tells_the_situation_gets_no_answer_of_its_own(faq_engine):
    """"买的杯子想丢洗碗机里，会不会出问题": the FAQ, asked the fragment "会不会出问题" alone, can be sure of anything;
    the message asks one question, answered from the whole."""
    whole = [faq_hit("shipping_time", 0.95), faq_hit("shipping_fee", 0.01)]
    parts = [{"text": "寄到北京", "asks": False, "faq": [faq_hit("shipping_fee", 0.9)]},
             {"text": "要几天啊", "asks": True, "faq": [faq_hit("shipping_time", 0.9)]}]
    texts = await answers_in_parts(faq_engine, "寄到北京，要几天啊", whole, parts)
    assert texts == ["answer shipping_time"]


async def test_a_clause_without_a_topic_of_its_own_is_read_with_the_message(faq_engine):
    """"能寄新疆吗 要多久": "要多久" alone looks like the delivery-time entry; the message asks how long to Xinjiang,
    which the whole message's answer settles. Such a clause is answered alone only with an entry the whole
    message ranks first."""
    whole = [faq_hit("shipping_fee", 0.97), faq_hit("shipping_time", 0.01)]
    parts = [{"text": "能寄新疆吗", "asks": True, "faq": [faq_hit("shipping_fee", 0.9)]},
             {"text": "要多久", "asks": True, "elliptic": True, "faq": [faq_hit("shipping_time", 0.9)]}]
    texts = await answers_in_parts(faq_engine, "能寄新疆吗 要多久", whole, parts)
    assert texts == ["answer shipping_fee"]


async def test_clauses_that_miss_the_whole_messages_likely_reading_are_not_answered_apart(faq_engine):
    """"想在杯子上印个名字 能做吗 多少钱" is one question (engraving): fragments that each look sure of something
    else must not outvote the whole message's likely reading."""
    whole = [faq_hit("refund_time", 0.85), faq_hit("shipping_fee", 0.01)]
    parts = [{"text": "能做吗", "asks": True, "faq": [faq_hit("shipping_time", 0.9)]},
             {"text": "运费多少", "asks": True, "faq": [faq_hit("shipping_fee", 0.9)]}]
    texts = await answers_in_parts(faq_engine, "想在杯子上印个名字 能做吗 运费多少", whole, parts)
    assert texts == ["answer refund_time"]


async def test_an_answer_the_shopper_rejects_is_a_miss_and_the_other_candidates_are_offered(faq_engine):
    tracker = Tracker.from_events("reject", [], faq_engine.domain)
    hits = [faq_hit("refund_time", 0.8), faq_hit("shipping_time", 0.15), faq_hit("shipping_fee", 0.01)]
    texts, _ = await say(faq_engine, tracker, "几天到", parse("faq", confidence=0.9, language="zh", faq=hits))
    assert texts == ["answer refund_time"]
    _, new = await say(faq_engine, tracker, "不是这个", parse("deny", confidence=0.9, language="zh"))
    reply = next(e for e in new if e["event"] == "bot")
    assert reply["data"]["rejected_faq_id"] == "refund_time"
    assert reply["data"]["clarify"] == ["shipping_time"]
    assert reply["data"]["buttons"][-1]["payload"] == "/human_handoff"


async def test_a_shopper_writing_traditional_characters_rejects_an_answer_and_is_offered_others_in_them(faq_engine):
    from bot.language import mainland_chinese, traditional

    tracker = Tracker.from_events("reject-t", [], faq_engine.domain)
    hits = [faq_hit("refund_time", 0.8), faq_hit("shipping_time", 0.15), faq_hit("shipping_fee", 0.01)]
    await say(faq_engine, tracker, "幾天到", parse("faq", confidence=0.9, language="zh", faq=hits))
    _, new = await say(faq_engine, tracker, "不是這個", parse("deny", confidence=0.9, language="zh"))
    reply = next(e for e in new if e["event"] == "bot")
    assert reply["data"]["rejected_faq_id"] == "refund_time"
    assert reply["text"] == traditional(reply["text"]) != mainland_chinese(reply["text"])
    assert all(b["title"] == traditional(b["title"]) for b in reply["data"]["buttons"])


def test_the_classifiers_request_for_a_person_counts_only_when_the_text_asks_for_one():
    """The classifier learned the words ("人工", "agent"); a shopper declining, praising or asking hours says them
    too. Then the bot goes on with its next intent instead of handing over."""
    from bot.dialogue.escalation import EscalationPolicy

    config = Config()
    policy = EscalationPolicy(config.kefu, config.effective_thresholds(), ["human_handoff", "thanks"])
    ranking = [{"name": "human_handoff", "confidence": 0.9}, {"name": "thanks", "confidence": 0.6}]
    parsed = {"intent": ranking[0], "intent_ranking": ranking}
    for text in ("不用转人工了，谢谢", "your team was so helpful last time"):
        decision = policy.decide(text, parsed, [])
        assert not decision.hand_over and decision.intent == "thanks", text
    assert policy.decide("人工客服周末上班吗", parsed, []).intent != "human_handoff"
    assert policy.decide("帮我转人工", parsed, []).hand_over
    assert policy.decide("I'd like to speak to someone", parsed, []).hand_over


def test_a_confident_faq_answer_wins_over_a_request_only_the_classifier_fairly_sees():
    """"有人加我微信说是你们客服…" names people and the classifier is fairly sure it asks for one; the FAQ is sure it
    asks about payment security. Below `human_over_faq` the answer is given; a sure classifier, or an unsure FAQ,
    still hands over."""
    from bot.dialogue.escalation import EscalationPolicy

    config = Config()
    thresholds = config.effective_thresholds().model_copy(update={"faq": 0.8, "human_over_faq": 0.75})
    policy = EscalationPolicy(config.kefu, thresholds, ["human_handoff", "faq"])
    text = "有人加我微信说是你们客服，让我转账到个人账户"
    def hits(best: float, second: float) -> list[dict]:
        return [{"id": "payment_security", "score": best, "answer": "…"},
                {"id": "refund_time", "score": second, "answer": "…"}]

    sure_faq = hits(0.98, 0.01)

    def parsed(confidence: float) -> dict:
        ranking = [{"name": "human_handoff", "confidence": confidence}, {"name": "faq", "confidence": 1 - confidence}]
        return {"intent": ranking[0], "intent_ranking": ranking}

    fairly = policy.decide(text, parsed(0.7), sure_faq)
    assert not fairly.hand_over and fairly.intent == "faq" and fairly.faq_hit["id"] == "payment_security"
    assert policy.decide(text, parsed(0.9), sure_faq).hand_over
    assert policy.decide(text, parsed(0.7), hits(0.4, 0.3)).hand_over
