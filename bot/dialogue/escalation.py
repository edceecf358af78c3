"""The escalation decision: what the bot makes of one message before its rules and stories run — answer, fall
back, or hand over to a person, with one reason and the bot's best guesses.

`EscalationPolicy.decide` is the only place this is decided. The dialogue engine acts on it, and `kefu
evaluate` and the benchmarks measure it, so a figure always describes the rule the running bot applies.

Reasons a message is not answered by the bot alone, in the order they are checked: explicit_request,
complaint (both hand over at once), low_intent_confidence, small_margin (the classifier is unsure),
low_faq_score, small_faq_margin (the FAQ index is unsure); repeated_fallback when fallbacks in a row reach
`thresholds.max_fallbacks`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from bot.config import KefuSettings, Thresholds
from bot.language import HAN_CHARS, mainland_chinese
from bot.nlu.clauses import split_questions

FAQ_INTENT = "faq"  # the intent data/faq.yml's phrasings train
NLU_FALLBACK = "nlu_fallback"  # the intent policies see when the classifier is unsure (as Rasa's FallbackClassifier)

EXPLICIT_REQUEST = "explicit_request"
COMPLAINT = "complaint"
LOW_INTENT_CONFIDENCE = "low_intent_confidence"
SMALL_MARGIN = "small_margin"
LOW_FAQ_SCORE = "low_faq_score"
SMALL_FAQ_MARGIN = "small_faq_margin"
REPEATED_FALLBACK = "repeated_fallback"
REJECTED_ANSWER = "rejected_answer"  # the shopper said the last answer was not what they asked
MAX_OFFERED = 3  # entries a "do you mean …?" offers at most


def _rules(pattern: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    """The pattern with its groups made non-capturing. The rules below are written with plain groups, for
    reading; nothing reads what they capture, and a search through hundreds of capturing groups saves them at
    every position it tries (an English question: 2.1 → 0.7 ms, all of it on the event loop)."""
    plain, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            plain.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(" and not pattern.startswith("(?", i):
            char = "(?:"
        plain.append(char)
        i += 1
    return re.compile("".join(plain), flags)


# A safety net under the classifier: a request for a person is always recognised. Strong phrasings count
# even inside a question; weak ones ("真人", "human") not when the shopper asks what the bot is.
# People a shopper asks for ("老板"/"掌柜" are how shoppers address the shop, not requests); not their phone
# or hours.
_PEOPLE_ZH = (r"(真人|活人|客服|工作人员|客服人员|售后人员|负责人|管事的?|店长|店员|主管|领导|经理|上级|上司|业务员"
              r"|业务人员|销售人员|财务(?!报销|专用|章|发票))(?!电话|热线|邮箱|微信|的?(工作)?时间|几点)")
_STRONG_REQUEST = _rules(
    r"转人工|找人工|要人工|接人工|转接|人工客服|人工服务|人工坐席|找客服|叫.{0,4}经理|(换|叫|喊|来|给我|帮我转)(个)?人工"
    r"|(打|回)(个)?电话给我|给我(回|打)(个)?电话|电话联系我"
    # someone of the shop's, asked to come or to read: "能喊个同事进来吗", "麻烦售后的同事看一下", "让店里的人联系我"
    r"|(让|喊|叫|请|麻烦)(个|你们店里|你们|店里|售后|客服|后台)的?(同事|工作人员|人)|(那头|那边|后台)有人(在)?(看|吗)"
    # …with what they do in between: "能让负责退货的同事来处理吗"
    r"|(让|喊|叫|请|麻烦)[^，。？！?!]{1,8}的(同事|工作人员)(来|过来|处理|看|联系|跟|回我|回复我|给我回)"
    rf"|(我要|我想|想要|要求|换|让|叫|喊|找).{{0,3}}{_PEOPLE_ZH}"
    rf"|(和|跟|与|同|向)(你们?的?|店里的?|贵方的?|贵司的?|贵公司的?)?[\"“”'‘’「」]?({_PEOPLE_ZH}|售后|团队|sales|销售).{{0,5}}(沟通|聊|说|谈|对话|联系|反映|投诉|确认)"
    r"|不(想|要|愿意)(再)?(和|跟|同)?(机器|自动回复|AI|ai)|别(再)?(让)?机器人|不要(再)?自动回复|不想(再)?(看|要|听)(这些)?自动回复"
    r"|换(个)?人|找个人|(叫|喊|让)(个|你们的?)?人(来|过来)|帮我联系客服|联系在线客服|有没有(客服|售后)在"
    # someone there now: "客服小姐姐在吗", "有客服在线吗", "有没有值班的人"
    r"|(客服|售后|小二|掌柜|店主|店家|老板)\w{0,3}在(吗|不|么|嘛)|有(人|客服|人工|真人)(在线|值班|上班)|有没有?(上班|值班|在线)的?人"
    # the after-sales people asked for or looked for: "找售后", "售后在哪" (not 售后服务 / 售后政策: the FAQ's)
    r"|找(个|你们的?)?售后(?!服务|政策|期|保障)|(售后|客服|人工)(的人)?(在哪|呢|人呢)"
    # someone named by what they do, to be put through to or sent: "转个售后专员", "安排同事跟我对接"
    r"|转(个|给)?(售后|专员|客服|同事|经理|主管|领导|真人)|找个?(小哥哥|小姐姐|同事|工作人员|专员)"
    r"|安排[^，。？！?!]{0,8}(同事|人员|客服|专员|销售|经理|人(?=对接|联系|跟进|处理|来|加我|回我|打给我|给我))"
    r"|负责[^，。？！?!]{1,8}的(是|人是)(哪位|谁)"
    r"|(让|叫|请)(他|她|ta|对方|你们的?人)[^，。？！?!]{0,8}(联系|打电话给|回电话给|致电|回复?|加)(我|本人)"
    r"|(致电|回电给?)(我|本人)"
    # the bot sent away, a call or a private chat asked for, "anyone alive?": "机器人走开", "能视频吗", "私聊",
    # "转一下", "有喘气的吗"
    r"|机器人(走开|滚|闪开|一边去|退下)|(能|可以)(不能)?(跟你们|和你们)?(语音|视频)(通话|聊)?(吗|么|嘛|不)|私聊"
    r"|^\W*(麻烦|帮我)?转(一下|下|过去)\W*$|^\W*有没有(工作人员|真人|人工|客服)\W*(在|啊|吗|呀|么)?\W*$|有(没有)?(喘气|活)的|有没有活人"
    # the boss asked for ("叫老板出来", "你们老板呢"; "老板，这个有货吗" only addresses the shop), someone who can
    # decide, staff asked to check ("请工作人员核实一下"), a person to confirm with ("我需要跟人确认")
    r"|(叫|让|喊|找|见)(你们的?)?(老板|掌柜|店主|小二)|(老板|掌柜|店主)(呢|出来)|(能|可以)做主的"
    r"|(请|让|麻烦)(工作人员|同事|客服|人工)(来)?(核实|核对|确认|处理|查|看)|(跟|和|同)(真)?人(确认|沟通|对接)"
    # someone who can settle it, looked for by what they can do ("找个能处理的人", "有没有能拍板的"), the shop's
    # people of one place ("联系一下仓库的人"), "升级处理", the machine sent away ("别让机器回了")
    r"|找(个|一个|位)[^，。？！?!]{0,6}的人|(能|可以)(拍板|说了算|管得了)|升级(处理|投诉)"
    r"|联系(一下|下)?(你们的?)?(仓库|物流|售后|财务|客服|发货)(部门?)?的?(人|同事|工作人员)|别(再)?(让|用)机器(人)?(回|答|敷衍|糊弄|应付)"
    r"|(有|有没有)(客服|人工|真人|小哥哥|小姐姐|工作人员)+(在线|值班|上班)"
    # someone to explain or to help, as the elderly ask ("有没有人给我讲讲", "能不能有个姑娘跟我说说", "可以有人用
    # 英文跟我说吗"); whoever is in charge of it ("我要跟你们管物流的人说", "请审核的人重新看一下", "转给管发票的
    # 同事"); someone with the power to ("一个有权限给我退款的人"); sales ("对接你们大客户经理", "找个业务员");
    # the WeChat of the shop's people; the one from before ("上回那个姑娘还在不在")
    r"|(有没有|能不能有|可以有|有没|能)(个|一个|位)?(人|姑娘|小伙子?|年轻人|小姐姐|小哥哥?|工作人员|员工)"
    r"[^，。？！?!]{0,8}(讲讲|说说|教教?我|帮帮?我|帮我|帮她|帮他|给我讲|跟我说|跟我讲|和我说|帮下手|帮忙|聊聊)"
    r"|有没有[^，。？！?!]{0,6}的(员工|工作人员|真人|活人|同事|客服)"
    r"|(跟|和|同|向|找|叫|让|请)(你们的?)?(管|负责|审核|处理)[^，。？！?!]{0,6}的(人|同事|那位|那个人)"
    r"|转(给|到)[^，。？！?!]{1,8}的(同事|人|工作人员)|有权限[^，。？！?!]{0,8}的人"
    # someone assigned to it ("可以帮我转给专人处理吗"), the shop's people fetched to help ("麻烦找你们的同事帮我跟一
    # 下"), a line opened to them ("帮我接通你们售后的同事")
    r"|(转|请|安排|派|找)(个|给|一位|一个|位)?专人|找(你们|店里)的?(同事|工作人员|专员|客服)(帮|来|跟|处理|看|核实|确认)"
    r"|接通[^，。？！?!]{0,8}(同事|工作人员|客服|售后|人工|经理|主管)"
    r"|找人(协商|商量|沟通|谈|处理|聊)|快叫人|叫个人|(你们|麻烦|请)找(个)?人(?!代)|找(个)?人(给我|给她|给他)?(打电话|打个电话|回电话|教)"
    r"|(对接|联系)(一下|下)?(你们的?)?[^，。？！?!]{0,4}(客户经理|业务员|销售)|找个?(业务员|销售|客户经理)"
    r"|加(一下|下)?(你们的?)?(售后|客服|工作人员|经理|店长)的?微信"
    r"|(主管|经理|负责人|领导|店长)出来|(那个|那位)[^，。？！?!]{0,4}(姑娘|小姐姐|小哥哥?|客服|同事)还?在(不在|吗)"
    r"|有人[^，。？！?!]{0,4}(跟我|和我|给我)(说|讲|聊|解释)|(跟|和|同)(你们|店里|店家)的人.{0,4}(说|聊|沟通|讲)|(让|叫|请|派)(个|一个|位)?(工作人员|同事|客服|专员|店员)"
    r"[^，。？！?!]{0,6}(跟|和|给|联系|打电话)|(要|想要|需要)(一个|个)人(把|来|帮|给我|处理|负责)"
    # someone who can see or do it ("找能看到我账户后台的人"), someone to come out ("除非现在有人出来处理"), to be
    # put through to whoever handles it ("给我接一下管这个的同事", "转交贵司售后主管"), "换个会思考的来", a place
    # in the queue ("帮我排一个", "多久能排到人"), someone who must answer for it ("这个得有人负责吧"), a voice call
    r"|找(个|一个|位)?(能|可以|会)[^，。？！?!]{0,10}的(人|同事)|(个|有|没)人出来|找(个|一个|位)[^，。？！?!]{0,6}的(同事|工作人员)"
    r"|接(一下|下)?[^，。？！?!]{0,4}(管|负责)[^，。？！?!]{0,6}的(人|同事)|转交[^，。？！?!]{0,8}(主管|经理|负责人|同事|人员|售后)"
    r"|换(个|一个)[^，。？！?!]{0,6}的(来|人)|安排一位|请(一位|个|位)(同事|工作人员|客服|店员)"
    r"|(人员|同事|负责人|客服)(联系|回电给|致电|打电话给)(我|本人)|排到人|帮我排(一个|个|上|队)|(帮我|给我|把我)(接|转)进去"
    r"|(得|必须|要|该)有人(负责|处理|管|对账|查|跟进)|找人(查|对账|看看)|有人[^，。？！?!]{0,4}(跟|和|给)(她|他)"
    r"[^，。？！?!]{0,4}(说|讲|聊|解释)|(拨|打)(个|一个)?(语音|视频)|有没有谁(能|可以|来)|有没有真的?人类|约(个|一个)人"
    r"|\b(talk|speak|chat|connect|transfer|put|complain|explain|report|have a word)(s|ed|ing|red|ring)?\b.{0,20}"
    r"\b(human|person|agent|someone|somebody|some1|sum1|staf"
    r"|whoever|representative|reps?|operator|staff|manager|management|owner|boss|supervisor|people|employee"
    r"|customer (service|support|care)"
    r"|(real|live|actual) one)\b"
    # the shop's people by their team: "speak to your after-sales team", "chat with one of your team members"
    r"|\b(talk|speak|chat)\w*\s+(to|with)\s+(one of\s+)?(your|the)\s+([\w-]+\s+)?(team|team members?|colleagues?"
    r"|department)\b|\b(want|need|like) to (speak|talk) (to|with) (them|him|her)\b"
    # someone of the shop's to get in touch: "could a member of your staff contact me", "request a callback"
    r"|\b(someone|somebody|a member of|staff|representative|rep|agent|owner|manager|supervisor|team|customer "
    r"(care|service|support))\b[^.?!]{0,40}\b(contact|call|ring|message|text|e-?mail|reply to|respond to|get back to"
    r"|reach out to|get in touch with)\s+(to\s+)?(me|my (mobile|cell|phone|number))\b"
    r"|\bgive me a (call|ring)\b|\bcall\s?-?back\b"
    # whether anyone is there now: "any humans working today?", "is there a human who can check…"
    r"|\b(any|is there (a|an|any))\s+(real\s+|live\s+)?(humans?|persons?|people|staff|agents?|one|body|reps?)\b"
    r"[^.?!]{0,20}\b(on duty|working|online|available|around|who can|i can|i could)\b"
    r"|\b(some|any)(one|body)\s+(from|at)\s+(the|your)\s+(shop|store|team|company)\b"
    r"(?!\s+(already|just|has|had|was|did|called|rang|phoned|said|told|messaged|e-?mailed|texted|contacted|helped"
    r"|fixed|sorted|replied|answered|got back))"
    # "wheres ur manager", "could I be put in touch with…", "forward this conversation to a human agent"
    r"|\bwhere\W*s?\s*(is\s+)?(ur|your|the)\s+(manager|supervisor|boss)\b|\b(be\s+|me\s+)put\s+in\s+touch\b"
    r"|\bput\s+me\s+in\s+touch\b"
    r"|\b(forward|pass|hand|escalate|send)\w*\b[^.?!]{0,30}\bto\s+(a|an|the|your)\s+(real\s+|live\s+)?(human|person"
    r"|agent|staff member|manager|supervisor)\b"
    r"|\b(get|give|want|need|find|reach)\s+(me\s+)?(a|an|some|the|your|ur)?\s*(real |live |actual )?(human|person"
    r"|agent|representative|rep|operator|supervisor|manager|staff member|boss)\b"
    r"|\b(human|live|real|actual)\s+(agent|support|operator|representative|person|human|people|being)\b"
    r"|\b(human|agent|representative|operator|person)\s*(please|pls|plz|now|!)|\bescalate\b"
    r"|\b(put|get) me in touch with\b|\b(get|put|need|want|have|to|with)\s+(me\s+)?(some(one|body)|a (real )?(person"
    r"|human)|an agent)\s+on the (phone|line)\b|^\W*(some(one|body)|a (real )?(human|person))\s+(please|pls)\s+(look"
    r"|check|help|review)"
    r"|\bis (the|your) (owner|manager|boss|supervisor)\s+(around|there|in|available)\b"
    # someone of the shop's to look at it: "can a human look at this", "please have someone check my order"
    r"|\b(can|could|would|please|pls|have|get|let|need|want)\b[^.?!]{0,12}\b(a (real )?human|a (real )?person"
    r"|some(one|body)|staff|an agent|a staff member)(\s+(who|that)\b[^.?!]{0,30}?)?\s+(please\s+|actually\s+|just\s+"
    r"|properly\s+|personally\s+)?(look|check|review"
    r"|handle|deal|sort|take a look)"
    r"|\breviewed by (a |your )?(staff|human|person|agent|someone|team)\b"
    r"|\b(help|assistance|support)\s+from\s+(a|an|one of your|your)?\s*(real |live |actual )?(human|person|agent|staff"
    r"|representative)\b|\b(need|want|get|like)\s+(me\s+)?(some(one|body)|a person)\s+(from|in|on|at)\b"
    r"|\b(transfer|hand|pass|put)\s+(me|this conversation|this chat)\s+(over|on|to|through)\b"
    r"|\b(transfer|hand|pass|put)\s+(this|it|this conversation)\s+(over|on|through)\b"
    r"|\b(a|your|one of your)\s+(staff member|member of staff|colleague|employee)\b"
    r"|\b(any(one|body)|some(one|body)|humans?|people)\s+(around|alive|available)\b"
    r"|\b(can|could|would|will|may|please|pls|i want|i need|get|let)\b[^.?!]{0,20}\b(a member of|some(one|body) from"
    r"|any(one|body) from|a person from)\s+(your|the)\s+(team|staff|shop|store|company)\b|\bany(one|body) else\W*$"
    r"|\b(no|not|don'?t want|stop)\b.{0,15}\b((chat)?bots?|robots?|automated|ai)\b"
    r"|\b(tired|sick|fed up|done)\s+(of|with)\s+(talking to |chatting with )?(a |this |the |your )?"
    r"((chat)?bots?|robots?|machines?|ai|automated)\b|^\W*(please\s+)?call me(\s+(back|please|pls|asap|now))*\W*$"
    r"|^\W*(hello|hi|hey)?\W*any(one|body)( home)?\W*$"
    # passed on to someone ("flag this to someone who can…", "forward me to the department that…"), someone who
    # can explain or be explained to ("is there someone I can explain this to?"), sorted out by a person
    r"|\b(flag|escalate|pass|forward|refer|transfer|put)\w*\s+(this|it|me|my case)\s+(on\s+|over\s+|through\s+)?"
    r"to\s+(some(one|body)\s+(who|that|senior|in charge|higher)|a (real )?(human|person who)"
    r"|(the|your|a) ([\w-]+\s+)?(department|team|manager|supervisor))\b"
    r"|\bis there (some|any)(one|body)\s+(i|we)\s+(can|could)\s+(talk|speak|explain|complain|chat)\b"
    # sales or an account manager, whoever to speak to, someone of a team to take it over, someone to step in or
    # be brought back, a grown-up to wait for
    r"|\bsales\s?(person|people|team|reps?|side|department|manager|contact)\b|\baccount manager\b"
    r"|\bwho (do|should|can|could) (i|we) (speak|talk|write) (to|with)\b"
    r"|\b(talk|speak|chat|discuss)\b[^.?!]{0,25}\bwith\s+(one of\s+)?(your|the)\s+(team|staff|colleagues|people)\b"
    r"|\b(need|want|like|get|have|let|can|could|may|would|please|pls)\b[^.?!]{0,15}\bsome(one|body)\s+(from|in|on|at)\s+"
    r"(your|the)\s+([\w-]+\s+)?(team|department|staff|office|side|warehouse|shop|store|company)\b"
    r"|\b(need|want)\s+some(one|body)\s+to\s+(fix|check|look|open|verify|sort|handle|call|help|take|investigate"
    r"|deal|review|explain|change|correct|confirm)\b"
    r"|\bstep in\b|\bbring (them|him|her) back\b|\bwhere('?s| is) the (person|agent|lady|guy|man|woman|rep)\b"
    r"|\bis (there )?any(one|body) (actually |really |even )?(there|here|around|alive)\b"
    r"|\bput me in (the|a) (queue|line)\b"
    r"|\bwhoever'?s on (shift|duty)\b|(?<!not )\bwait for (a|an) (grown-?up|adult|real one|human|person)\b"
    r"|\breal (ppl|people) (only|pls|please|now)\b"
    # someone who can, someone to own it or chase it, who can approve, a person available, queued, a voice call,
    # the same person again, "someone give me a straight answer", staff's advice, a person arranged to call
    r"|\b(need|want)\s+some(one|body)\s+(who|that)\s+(can|could)\b|\bwho can (approve|authori[sz]e|decide|sign off)\b"
    r"|\blet (your|the) (boss|manager|supervisor)\b|\b(done|finished)\s+(talking|chatting)\s+(to|with)\b"
    r"|\b(needs|has to|have to|must)\b[^.?!]{0,10}\bsome(one|body)\s+to\b"
    r"|\bsome(one|body)\s+(needs? to|has to|must|should)\s+(own|chase|check|look|fix|sort|reconcile|handle|take)\b"
    r"|\bconnect me\b|\btransfer me (to|over|through)\b|\bqueue me\b|\bvoice (chat|call)\w*\b|\bi'?ll hang on\b"
    r"|\bis (a |an )?(real |live )?(human|person|agent|someone|anyone|anybody) available\b"
    r"|\b(could|can|would)\s+some(one|body)\s+\w+\s+(it|this)\s+for me\b"
    r"|^\W*some(one|body)\s+(give|tell|answer|help|explain)\b"
    r"|\b(recommendation|advice|help|answer|word)\s+from\s+(one of\s+)?your\s+(staff|team|colleagues|people|experts)\b"
    r"|\b(have|let|ask)\s+(your|a|the|someone)\b[^.?!]{0,25}\b(get in touch|contact me|call me|reach out)\b"
    r"|\b(have|get)\s+some(one|body)\s+(answer|reply to|respond to|help|call|contact|email|message|ring)\s+me\b"
    r"|\bget (her|him|them) again\b|\b(talk|speak) to (her|him|them) again\b"
    r"|\barrange for\b[^.?!]{0,20}\b(person|some(one|body)|staff|agent|representative|colleague)"
    r"|\bis there (a|an|any)\s+([\w-]+\s+){0,3}(lady|gentleman|man|woman|person|human|staff|agent|one)\s+(who|that)\s+"
    r"(can|could)\b"
    r"|\b(sorted|handled|dealt with|looked at|checked|reviewed|resolved)\s+(out\s+)?by\s+(some(one|body)|a (real )?"
    r"(person|human)|(your|the) (staff|team))\b"
    # typed in pinyin or its initials, as on Chinese platforms: "rg", "rgkf", "zhuan rengong", "renggong kefu";
    # or one word alone: "Transfer."
    # someone fetched, in the fewest words ("快找人", "来个人", "叫人查一下"; not "找人代付", "家里来人了"), someone of
    # a team asked to act ("叫仓库的人查下", "让管退款的来", "转给管价保的"), someone to help now ("让人帮我开吧",
    # "要人帮我解"), a role asked to get in touch ("请业务经理尽快联系我"), a callback, a call booked ("约个call")
    r"|(快|赶紧|马上)?(找|叫|喊|来)(个|一个|位)?人(?=[，。！!？?~\s]|$|吧|啊|呀|过来|查|看|处理|跟进|解决)"
    r"|(联系|叫|让|请|喊|找)(一下|下)?(你们的?)?(仓库|物流|售后|财务|客服|发货|技术)(部门?)?的?(人|同事|工作人员)"
    r"|(跟|和|同|向|找|叫|让|请)(你们的?)?(管|负责|审核|处理)[^，。？！?!]{0,6}的(来|过来)|转(给|到)(管|负责)[^，。？！?!]{1,6}的"
    r"|(让|叫|请|要|需要)(个|一个)?人(帮我|来帮|来处理|来查|来看)(?!代|收|取|签)"
    r"|(经理|业务员|业务人员|工作人员|负责人|主管|专员|销售)[^，。？！?!]{0,6}((联系|回电给|致电|打电话给)(我|本人)"
    r"|(跟|和|与)(我|我们)联系)"
    # put through to a team or role ("转一下财务"), someone sent or assigned ("派人去查", "安排个专人"), someone
    # who can have a say ("有能说上话的没"), the shop's people begged ("求你们的人帮我催一下"), one of higher rank
    # ("换个级别高的"), whoever is in charge looked for ("你们管事的呢"), a callback booked ("约个回电")
    r"|转(一下|下)?(财务|仓库|店长|店员|物流|技术|质检)|派(个|一个)?人(去|来)?(查|处理|看|跟进|核实)|(安排|要|派|给我)[^，。？！?!]{0,4}专人"
    r"|说(得)?上话的|(求|请|让|叫|麻烦)你们的?人|换(个|一个)((级别|职位|权限)[^，。？！?!]{0,3}|懂行|厉害|管事)的"
    r"|(管事的?|负责人|店长|经理|主管|领导)(呢|在哪)|约(个|一个)?回电"
    r"|给我回(个)?电(?!话号)|约(个|一个)?\s?call"
    # a call booked ("能约个时间电话沟通吗")
    r"|约(个|一个)?时间[^，。？！?!]{0,4}(电话|通话|语音|视频)|电话(沟通|聊)(吗|么|嘛|一下|下)"
    # one of the team asked to get in touch later ("could one of them message me"), someone of a department to
    # help ("仓库那边有人能帮我查一下吗"), a role to deal with ("想直接跟你们销售对接", "跟你们顾问聊聊"), who is on
    # duty now, a colleague asked to reply ("让同事给我留个言")
    r"|\b(could|can|would|will)\s+one of (them|you|your (team|staff|colleagues|people|agents))\s+(please\s+)?"
    r"(message|call|contact|e-?mail|ring|text|reply to|get back to|handle|look|check|help|sort)\b"
    r"|(仓库|物流|售后|财务|客服|技术|发货|店里|你们)(那边|那里|部门|这边)?有(没有)?人(能|可以)?(帮我|给我|替我|帮忙)"
    r"|(跟|和|与|同)(你们的?)?[^，。？！?!]{0,6}(客户经理|业务员|销售|顾问|工作人员|负责人|财务)[^，。？！?!]{0,2}"
    r"(对接|联系|沟通|谈|聊)"
    r"|(现在|今天|这会儿?)(是)?谁(在)?值班|(请|让|叫|麻烦)(同事|工作人员|客服)(给我)?(回我|回复|联系我|留言|留个言|发消息|打电话)"
    r"|(请|让|叫|麻烦)(工作人员|客服)帮我"
    # the same person again ("can I carry on with her?", "还是上次那位同事帮我处理吧", "接着跟她说"), someone with
    # authority, someone of the shop to message or double-check, passed to whoever dealt with it, staff to approve,
    # one of the people to take it on; someone fetched by role ("找个小姑娘跟我说说", "让质检的出来解释一下",
    # "来个工作人员", "哪位同事帮我…"), the shop's people to write at a time, a colleague booked to call
    r"|\b(carry on|continue|keep (talking|chatting)|pick (this|it) up)\b[^.?!]{0,20}\bwith (her|him|them|the same)\b"
    r"|\b(the same|that) (lady|guy|person|agent|colleague|woman|man|girl|rep)\b[^.?!]{0,40}\b(pick (this|it) up"
    r"|take (this|it) (on|over)|continue|again)\b"
    r"|\bsome(one|body)\s+(with|who has)\s+(the\s+|real\s+)?(authority|power|rights?|permission)\b"
    r"|\b(some(one|body)|sb|smb|sum1|some1)\s+(from|on|in|at)\s+(your|ur|the)\s+([\w-]+\s+)?(team|staff|shop|store"
    r"|warehouse)\s+(could\s+|can\s+|would\s+|to\s+)?(double-?check(ed)?|check|confirm|look|verify|review|call|contact"
    r"|message|dm|pm|text|help|go over)\b"
    r"|\b(passed|put|transferred|sent|handed)\s+(back\s+)?(on\s+)?to\s+(whoever|the (person|agent|colleague|lady|guy)"
    r"\s+who)\b"
    r"|\b(need|want)\s+(your\s+|a\s+)?(staff|staff member|manager|supervisor)\s+to\s+(approve|authori[sz]e|check|look"
    r"|review|sign off|confirm|handle|sort)\b"
    r"|还是[^，。？！?!]{0,8}(同事|客服|小姐姐|小哥哥?|工作人员)[^，。？！?!]{0,6}(吧|处理|来)"
    r"|(接着|继续)(跟|和|找)(她|他|ta|那位|那个)"
    r"|找(个|一个|位)?(小姑娘|姑娘|小伙子?|年轻人|师傅)[^，。？！?!]{0,6}(跟我|和我|给我|帮我|教我)"
    r"|(让|叫|请|喊)[^，。？！?!]{1,12}(出来|过来)(解释|说明|处理|说一下|回应|给个说法)"
    r"|来(个|一个|位)(工作人员|同事|客服|真人|活人|店员)|哪位(同事|工作人员|客服|小姐姐|小哥哥?)(帮|能|可以|来)"
    r"|(让|叫|请|麻烦)(你们的?人|你们的?同事|同事|工作人员|客服)[^，。？！?!]{0,14}(联系我|给我(发|打|回|留))"
    r"|约(一下|下)?(你们的?)?(同事|工作人员|客服)"
    r"|\bzhao\s+(ge\s+)?(gong\s?zuo\s?ren\s?yuan|ke\s?fu|ren\s?gong|zhen\s?ren|客服|人工|真人|工作人员)"
    r"|\b(like|want|need|prefer|rather have|could have|can i have)\s+(a (real |live )?(person|human)|a staff member"
    r"|an agent|a member of (your )?staff)\s+to\s+\w+"
    r"|\b(need|want|like)\s+some(one|body)\s+to\s+(apply|contact|find out|look into|redirect|process|approve|chase|call"
    r"|get in touch|ring|phone|email|message|go through|escalate|follow up)\b"
    r"|\bis there (some|any)(one|body)\s+(who|that)\s+(can|could)\b|\bhand\s+(me\s+|this\s+|it\s+)?off\b"
    # the shop's people by other names ("ur csr", "an actual shop assistant", "a customer care official"), asked to
    # attend to the shopper, looped in, reached, or to sort it out; the bot skipped; "not a bot job"
    r"|\b(an?|ur|your|the|actual|real)\s+(csr|shop assistant|sales assistant|customer care (official|officer|agent)"
    r"|service officer)s?\b"
    r"|\battend(ed)? to (me|by)\b|\bloop in\b|\bskip the bot\b|\bnot a (bot job|job for (a|the) bot)\b"
    r"|isn'?t a bot job"
    r"|\b(reach|get (straight |directly |right )?(through )?to)\s+(your|ur|the)\s+([\w-]+\s+)?(team|staff|people"
    r"|colleagues)\s+(directly|right now|now|from here)\b|\bget (straight|directly|right) (through )?to (your|ur|the)\b"
    r"|\b(a|an|one of your|your|ur|yr)\s+(real |actual |live )?(staff( members?)?|member of staff|people|colleagues?"
    r"|team members?|employees?|reps?|representatives?)\s+(to|who can|that can)\s+(sort|review|check|look|confirm|help"
    r"|handle|fix|deal|take)\b"
    r"|\b(can|could|would)\s+(a|an)\s+(real |actual |live )?(staff member|member of staff|human|person|agent"
    r"|employee)\s+(please\s+)?(sort|help|check|look|review|handle|deal|confirm|take)\b"
    r"|\bany(one|body)\s+(in|on|from)\s+(your|ur|the)\s+([\w-]+\s+)?(team|staff)\b"
    r"|\b(talk|speak|chat)\s+(to|with)\s+(ur|yr)\s+(team|staff|people|manager|boss)\b"
    r"|\b(team member|colleague|staff member|person|agent|rep)\s+who\b[^.?!]{0,40}\b(message|contact|call|email"
    r"|reply to)\s+me\b|\b(get|need|want)\s+(me\s+)?(a\s+)?(real|actual)\s+staff\b"
    r"|\b(human|agent|representative|operator|person)\s*[,.]\s*(please|pls|plz)\b|\b(sum1|some1)\s+from\b"
    r"|\b(someone|somebody|representative|rep|agent|manager|team)\b[^.?!]{0,40}\b(contact|call|e-?mail|get back to"
    r"|reach out to|get in touch with)\s+us\b|\bsales\s+representative\b|(?<![A-Za-z])escalate(?![A-Za-z])"
    r"|\b(zhuan\s*)?ren+g?\s*gong(\s*ke\s*fu)?\b|^\W*z?rg(kf)?\W*$|^\W*(transfer|escalate)( me)?\W*$",
    re.IGNORECASE,
)
# Mentions of a person that ask for none: declining one ("不用转人工了", "no need for a human, you answered it"),
# one already reached ("刚才已经转过人工了，处理好了"), praise ("上回那个客服小姐姐很耐心", "great service"). These
# spans are taken out before a request is looked for, so "刚才找过人工了，没解决，再给我转人工" still is one.
_PERSON_ZH = r"(人工客服|人工|真人|客服|工作人员|同事|小姐姐|小哥哥?|团队|售后)"
_NOT_A_REQUEST = _rules(
    r"(人工|真人|客服|转人工)(就|也)?(不用|不必|不需要|算了|免了)|(店|你们)?(员工|客服|工作人员)(多吗|多不多|很多|挺多|多(?=[，。？！?!\s]|$))"
    r"|(上次|上回|之前|昨天|前几天|刚才)的?(人工客服|人工|客服|同事)(说|讲|告诉)"
    r"|(?<![再还])(不用|不需要|不必|无需|没必要|用不着|别|不要|不找|不想找|不转)(再)?(帮我|给我)?(转|找|叫|接|喊|换|麻烦)?(个)?"
    r"(人工|真人|客服|工作人员|同事|人(?=了|啦|啊|[，。！,.!]|$))|不(想|要|用|需要)(跟|和|同)(人|真人|人工|客服)(说话|聊|沟通)"
    # comparisons: "机器人比人工回得快", "you're better than most human agents"
    r"|比[^，。！？,.!?]{0,4}(人工|真人|客服)[^，。！？,.!?]{0,6}(快|好|强|靠谱|方便|专业)"
    r"|\b(faster|better|quicker|easier|nicer|smarter) than\b[^.?!]{0,25}\b(persons?|humans?|agents?|people|staff)\b"
    r"|\b(are you|r u) hiring\b|\b(customer service|support) (jobs?|positions?|roles?|vacanc\w+)\b"
    r"|\b(do(es)?|are)\s+(a\s+)?(real\s+|actual\s+)?(people|humans?|person|someone|staff)\s+(ever\s+|actually\s+|really\s+)?(read|check|review"
    r"|moderate|write|approve|look at|answer|repl|respond)\w*\b"
    r"|\bno need to (reply|respond|answer)\b|(不用|无需|不必)回复"
    # whether a person will read a message left ("留言会有真人看吗"); a click made by mistake ("点错了，点到转人工了")
    r"|会有(真人|人工|客服|人)(来)?(看|回|处理|回复)|(点错|误点|不小心点|手滑点)[^。！？!?]{0,12}"
    r"|[^.?!]{0,40}\b(by accident|by mistake)\b|\b(accidentally|mis-?clicked)\b[^.?!]{0,40}"
    # whether people see the chat ("客服能看到这些聊天记录吗")
    r"|(人工客服|人工|真人|客服|工作人员)[^，。？?]{0,6}(看到|看得到|看见|读到)[^，。？?]{0,4}(聊天|对话|记录|消息)"
    # the bot praised ("机器人回答得挺清楚的")
    r"|(机器人|你)[^，。！？,.!?]{0,4}(回答|回复|说|讲)得?(挺|很|真|蛮|非常|特别)?(清楚|好|明白|详细|到位)"
    r"|(机器人|你)[^，。！？,.!?]{0,3}(也)?(挺|很|蛮|真|还)(好|不错|方便|快)|机器人[^，。？！?!]{0,6}(好玩|有意思|有趣|可爱|聪明)"
    r"|推荐了?[^，。？！?!]{0,6}(同事|朋友)|(上次|上回|之前|昨天|前几天)(转|找)(人工|客服|真人)"
    r"|\bpass on (my|our) thanks\b|\b(in-house|outsourced)\b"
    r"|\b(agent|person|lady|guy|rep|staff member)\s+(i|we)\s+(spoke|talked|chatted)\s+(to|with)\b"
    # whether one has to ("修改地址必须找人工吗"), what a colleague said ("客服之前说过会补发"), the team's size
    r"|(必须|一定要|非得|只能|需要|得)(要)?(找|转|联系|通过)(人工|真人|客服)[^，。！？,.!?]{0,6}(吗|么|嘛|才)"
    r"|(人工客服|人工|同事|客服|工作人员)(之前|刚才|已经)?(说过|说了|说(?=[会要是能可让已\d])|讲过|告诉过?我|答应过?我?)"
    r"|(上次|上回|之前|昨天|前几天|刚才)(跟|和|同)(人工客服|人工|客服|真人)[^，。？！?!]{0,6}"
    r"|\b(claim\w*|pretend\w*) to be\b[^.?!]{0,30}|(自称|冒充|假冒|假装)[^，。？！?!]{0,10}|外包|自己的员工"
    r"|\b(colleague|agent|staff|staff member|rep|representative|customer service|support)\s+(already\s+)?(said|told me"
    r"|promised)\b"
    r"|(客服|团队|工作人员)[^，。！？,.!?]{0,4}(有)?(几|多少)个?人"
    r"|(已经|刚才|刚刚|上次|上回|之前|昨天|前几天)[^，。！？,.!?]{0,6}(转过|找过|联系过|问过|聊过|沟通过|说过|谈过|反映过|转了|找了)(了)?(人工|真人|客服)?"
    r"|(?<!还是)(上次|上回|之前|刚才|刚刚|昨天|前几天)[^，。！？,.!?]{0,6}" + _PERSON_ZH
    + r"[^，。！？,.!?]{0,4}帮(我|忙)"
    + r"|" + _PERSON_ZH
    + r"[^，。！？,.!?]{0,6}(很|特别|挺|超|太|非常|真)"
    r"(好|耐心|专业|棒|赞|给力|热情|负责|细心|贴心|快|慢|差|凶|敷衍|靠谱)"
    r"|(当|做)(过)?客服"
    r"|\bno need (for|of|to)\b[^.?!]{0,20}\b(humans?|person|agents?|people|some(one|body)|any(one|body)|transfer\w*"
    r"|escalat\w*)\b|\bno (human|person|agent|rep)s? (needed|necessary|required)\b"
    r"|\b(don'?t|do not|no need to|won'?t)\s+(need\s+(to\s+)?)?(transfer|connect|escalate|put)\s+me\b"
    r"|\b(don'?t|do not)\s+(need|want)\s+(a|an|the|any)?\s*(human|person|agent|real person|rep)\b"
    r"|\b(do|would|will)\s+i\s+(have|need)\s+to\s+(talk|speak|chat|call|contact|go through)\b[^.?!]{0,25}"
    r"|\bhow many (people|staff|agents|employees|humans)\b"
    r"|\bworks? (in|as|at)\b[^.?!]{0,12}\b(customer service|support)\b"
    r"|\b(already|just)\s+(spoke|talked|chatted|been)\s+(to|with)\s+(one of\s+)?(a|an|the|your)?\s*"
    r"(human|person|agent|someone|staff|team|rep|colleagues?)\b"
    # (unless asked for again: "could I speak to the person who helped me?")
    r"|(?<!to the )(?<!with the )(?<!to that )(?<!same )\b(person|agent|lady|guy|girl|woman|man|staff member|rep)"
    r"\s+who\s+"
    r"(helped|answered|replied|served|talked"
    r"|spoke)\b"
    r"|(^|\b(your|the)\s+)(staff|team|agents?|people|reps?|support|customer service)\b[^.?!]{0,20}\b(nice|helpful|great"
    r"|friendly|kind|amazing|awesome|lovely|brilliant|excellent|fantastic|patient)\b"
    r"|\b(great|good|excellent|amazing|awesome|lovely|fantastic)\s+(service|support|job|work)\b"
    # work done by hand ("刻字是人工刻的还是机器刻的", "这个茶是人工采摘的吗"), a person not to be troubled or to call
    # ("不想麻烦真人", "你们不用回电", "我现在不转"), a past chat or a later one ("I spoke to a colleague of yours
    # yesterday", "I'll talk to your team tomorrow", "if a human is needed later I'll ask")
    r"|人工(刻|织|缝|打包|采|摘|种|烧|磨|雕|编|剪|上釉|制作|做的|检|挑|包装|绣|画|装|贴|焊|手)"
    r"|(手工|机器)[^，。？！?!]{0,4}还是人工|人工[^，。？！?!]{0,4}还是(手工|机器)"
    r"|(不想|不用|不必|没必要|不需要)麻烦[^，。！？,.!?]{0,4}(真人|人工|客服|同事|工作人员|员工|人)|(不用|不必|无需|别|不需要)(人|你们|客服)?(给我)?(回电|打电话|来电)"
    r"|(现在|先|暂时|目前)不转"
    r"|比[^，。！？,.!?]{0,6}(人工|真人|客服)[^，。！？,.!?]{0,6}(清楚|耐心|及时|明白|详细)"
    r"|(人工|真人|客服)[^，。！？,.!?]{0,6}(没|不如)(你|机器人)"
    r"|\bno (staff|people|one|humans?|persons?|agents?|reps?) (needed|necessary|required)\b"
    r"|\brather not (talk|speak|deal|chat)\b"
    r"|\b(i|we)\s+(spoke|talked|chatted|had a (great |good |nice |long )?chat)\s+(to|with)\b[^.?!]{0,40}"
    r"|\b(talk|speak|chat)\b[^.?!]{0,25}\b(later|tomorrow|next time|another time)\b"
    r"|\bif (a|an) (human|person|agent) is needed\b"
    # someone else to pay ("找人代付"), a shop's assistant in a store, how to reach a person later ("找人工是在哪里
    # 点"), whether the bot hands over by itself, the people talked to before, whether one must talk to a person
    r"|找人(代|帮我代)|(实体店|门店|线下)[^，。？！?!]{0,10}(店员|导购)|(找|转)人工(是|要)?(在)?(哪里|哪儿|哪)"
    r"|(会|能)(不会|不能)?自动转(给|到)?(人工|真人|客服|人)?|(聊|找|问)过(好几次|几次|很多次|好多次)|(需要|要|得)(跟|和|找)人(说|讲)(吗|么|嘛)"
    r"|(人工|真人)[^，。！？,.!?]{0,6}比(机器人|你)|\bnever mind (about )?(talking|speaking|the (human|agent|person))\b"
    r"|\b(already|just)\s+(spoke|talked|chatted|been)\s+(to|with)\s+(customer service|support|your colleague)\b"
    r"|\b(don'?t|do not)\s+need\s+to\s+(speak|talk)\b"
    r"|\b(don'?t|do not)\s+want\s+to\s+(speak|talk|chat)\s+(to|with)\s+(a\s+|an\s+|the\s+|any\s+)?(real\s+)?(humans?"
    r"|persons?|agents?|reps?|some(one|body)|any(one|body)|people)\b|\b(last|yesterday'?s|last week'?s) chat with\b"
    r"|\bpass me (on )?to (some(one|body)|a (human|person))\s+automatically\b"
    # thanks passed on ("please tell her thanks", "帮我跟打包的同事说一声"), one who already sorted it, one's own
    # colleague ("a colleague of mine recommended you")
    r"|\b(tell|give)\s+(her|him|them)\s+(my\s+|our\s+)?thanks\b|\bthank (her|him|them) for me\b"
    r"|(?<!to the )(?<!with the )\b(colleague|agent|staff member|rep)\b[^.?!]{0,20}\b(sorted|fixed|handled|solved"
    r"|resolved)\b"
    r"|\b(colleague|co-?worker|friend)s? of (mine|ours)\b"
    r"|\bmy (colleague|co-?worker)s?\b(?! (needs?|wants?) to (talk|speak))"
    r"|帮我(跟|和|向)[^，。？！?!]{0,8}(说一声|说声|道个?谢|说谢谢|转达)"
    # "real people or not", whether people read the reviews, a courier who called, one meant to ask and did not need to
    r"|\b(real (people|person|humans?)|humans?|(a )?bot) or not\b|不管是不是(真人|人工|机器人?|人)"
    r"|(评价|评论|留言板|反馈)[^，。？！?!]{0,6}有(真人|人工|人)(在)?看(吗|么|嘛)"
    # the language to be spoken ("speak to me in simpler English", "跟我说中文就行"), thanks to the shop's people
    # ("多谢你哋啲同事"), a perk asked about ("金卡会员有人工客服优先吗"), no reply wanted ("不用回我"), whom one is
    # talking to ("我现在是在跟人工聊天吗")
    r"|\b(speak|talk|write|reply|answer)\s+(to\s+me\s+)?in\s+(simpler|simple|plain|easy|easier|chinese|english"
    r"|mandarin|cantonese)\b|(跟|和|对)我(说|讲)(中文|英文|英语|普通话|粤语|简单)"
    r"|用(中文|英文|英语|普通话|粤语|繁体|简体)(回复?|说|讲|聊|沟通|回答)"
    r"|(谢谢|多谢|感谢)(你们|你哋|贵店)?(的|啲)?" + _PERSON_ZH
    + r"|(人工|客服)[^，。？！?!]{0,4}优先|(不用|无需|不必)回(我|了)"
    r"|是在?(跟|和)(人工|真人|人|机器人?|AI)(聊|说话|对话)"
    r"|(快递|顺丰|中通|小哥|快递员|师傅)[^，。？！?!]{0,8}(给我打|打给我)(了)?(个)?电话|本来想(转|找)(人工|真人|客服)",
    re.IGNORECASE,
)
_WEAK_REQUEST = re.compile(
    r"真人|活人|人工(?!智能)|^(\W*(你们)?(有没有人(在)?|有人(在)?(吗|么|嘛|没)|人呢|人都去哪了?))+\W*$"
    r"|\breal (person|human)\b"
    r"|^\W*(human|agent|representative|operator|person)\W*$",
    re.IGNORECASE,
)
# "Are you a real person?" asks what the bot is; it is not a request for one.
_IDENTITY_QUESTION = re.compile(
    r"^\W*(am i|are you|r u|is this|is it|is that)\b"
    r"|你是|是不是|是真人(吗|在)|真人[^，。？?]{0,4}还是|人工还是|还是机器人|是机器人|(人工|真人)(和|跟|与)机器人",
    re.IGNORECASE,
)
# "人工客服几点上班" / "anyone there at 8am?" ask when people are there (a FAQ), not for one now.
_HOURS_QUESTION = re.compile(
    r"几点|什么时候|何时|(?<!我在)(?<!我)(上班|下班)|营业|节假日|过年|春节|国庆|假期|放假|(?<!上)周末|(?<!上)周[一二三四五六日天]|早上|晚上|凌晨|中午|午休"
    r"|(多久|多长时间)[^，。？?]{0,3}(回复|回|答复)|(回复|回消息)[^，。？?]{0,4}(多久|多长时间)"
    r"|\bhow (long|fast|quickly|soon)\b[^.?!]{0,25}\b(reply|respond|answer|get back)"
    # …but "for an hour", "3 hours", "all evening" are how long the shopper has waited, not when people work
    r"|\b(what time|(?<!an )(?<!\d )(?<!\d)(?<!few )(?<!of )hours?|weekends?|holidays?|(?<!all )(?<!whole )(mornings?"
    r"|evenings?|nights?)|lunch)\b|^\W*when\b"
    r"|\bwhen (do|does|are|is|will|can|would)\b"
    r"|\b(mon|tues|wednes|thurs|fri|satur|sun)days?\b|\b\d{1,2}\s*(am|pm|:\d\d)\b|\bchristmas|\bnew year|\beaster\b"
    r"|\bwill there be\b|\bwhen i (get|come|am|'m) (home|back|off|free)\b",
    re.IGNORECASE,
)
_ASKS_NOW = re.compile(r"转人工|找人工|要人工|我要|找客服|(?<!不是)现在|马上|(?<!不)急|等不了|等不及|今晚"
                       r"|给我回(个)?电|回电给我"
                       r"|(打|回)(个)?电话给我|给我(回|打)(个)?电话"
                       r"|约(个|一个)人|(?<!not )\b(right )?now\b|\basap\b"
                       # someone at work, unless another day is named ("周末你们有人上班吗" asks about hours)
                       r"|^(?!.*(周末|周[一二三四五六日天]|节假日|假期|放假|过年|春节|国庆|明天|早上|晚上)).*有人(在)?上班(吗|没|么|不)"
                       r"|\burgent(ly)?\b|\btonight\b"
                       # "now" in other words ("at this hour", "这个点还有人吗"); a place in the queue, a callback asked
                       # for a time ("call me tomorrow morning"): a person wanted, the time only says when
                       r"|\bat this (hour|time)\b|\bthis (late|early)\b|\bwithin (the|an) hour\b"
                       r"|这个点|这么晚|这会儿?|此刻|\bqueue me\b"
                       r"|\b(call|ring|phone|contact|message|text|e-?mail|dm) (me|my (mobile|cell|phone|number))\b"
                       r"|(让|叫|请|麻烦)[^，。？！?!]{0,8}(同事|工作人员|客服|你们的?人)[^，。？！?!]{0,14}(回我|回复我|联系我"
                       r"|给我回|给我留|给我发|给我打)|约(一下|下)?(你们的?)?(同事|工作人员|客服)|有没有在(上班|值班|线)的"
                       r"|\b(pick|take) (this|it) (up|over|on) again\b|\bcarry on with (her|him|them)\b"
                       r"|\bone of (them|you|your (team|staff|colleagues|people|agents)) (please )?"
                       r"(message|call|contact|e-?mail|text|ring|reply to|get back to)\b",
                       re.IGNORECASE)
_ENGLISH_IDENTITY = re.compile(
    r"^\W*(am i|are you|r u|is this|is it|is that)\b(?! possible)(?!.*\b(connect|transfer)\b)"
    r"|\bor (is it|just|only)\b[^.?!]{0,12}\b(a |the )?bots?\b", re.I)
# What the bot is, asked with the words of a request ("背后是真人在看吗", "is this a real person?"): no request.
_WHAT_THE_BOT_IS = re.compile(r"是(不是)?真人(吗|在)|真人[^，。？?]{0,4}还是|人工还是|还是(机器人|AI)|外包"
                              r"|背后(是|有)(真)?人|(人工|真人)(和|跟|与)机器人|\bthought you were\b"
                              r"|\bor (is it|just|only)\b[^.?!]{0,12}\b(a |the )?bots?\b"
                              r"|\b(are|is) (you|this|it) (a )?(real|human|bot|robot|person|machine|ai)\b", re.I)
# Words a request for a person turns on, as typed in a hurry ("spaek to an agnet", "humna pls"): a word of 5+
# letters one slip (a letter swapped, missing, extra or wrong) from one of these is read as it.
_REQUEST_WORDS = ("agent", "human", "person", "people", "speak", "representative", "operator", "supervisor",
                  "manager", "someone", "transfer", "connect")
_WORD = re.compile(r"[A-Za-z]{5,}")


def _one_slip(word: str, target: str) -> bool:
    """Optimal-string-alignment distance ≤ 1: one letter swapped with its neighbour, missing, extra or wrong."""
    if word == target:
        return True
    if abs(len(word) - len(target)) > 1:
        return False
    i = 0
    while i < min(len(word), len(target)) and word[i] == target[i]:
        i += 1
    if len(word) == len(target):
        swapped = word[i:i + 2] == target[i:i + 2][::-1] and word[i + 2:] == target[i + 2:]
        return swapped or word[i + 1:] == target[i + 1:]
    longer, shorter = (word, target) if len(word) > len(target) else (target, word)
    return longer[i + 1:] == shorter[i:]


# The words a request turns on as shoppers also type them, read as the words: in pinyin or its initials ("kefu",
# "kf在不在", "zrg", "zhen ren", "找个ren"), mistyped by the pinyin IME ("人攻", "克服在吗"), in Cantonese ("搵个
# 职员", "有冇人"). (Chinese characters count as word characters, so no \b.)
_SPELLINGS = ((re.compile(r"客\s*fu|(?<![a-z])ke\s*fu(?![a-z])", re.IGNORECASE), "客服"),
              (re.compile(r"(?<![a-z])zhen\s*ren(?![a-z])", re.IGNORECASE), "真人"),
              (re.compile(r"(?<![个私主])人[攻公功宫](?![司寓园])"), "人工"),  # slips of the pinyin IME
              (re.compile(r"克服(?=\s*(在|呢|出来|$|[！!？?，,]))"), "客服"),
              (re.compile(r"(?<![a-z0-9])z?rgkf(?![a-z0-9])", re.IGNORECASE), "人工客服"),
              (re.compile(r"(?<![a-z0-9])kf(?=\s*(在|呢|出来|人|$|[！!？?，,]))", re.IGNORECASE), "客服"),
              (re.compile(r"(?<![a-z0-9])zrg(?![a-z0-9])", re.IGNORECASE), "转人工"),
              (re.compile(rf"(?<=[{HAN_CHARS}])ren(?![a-z])", re.IGNORECASE), "人"),
              # Cantonese as typed in Hong Kong, Macau and Guangdong, after `mainland_chinese` (搵 → 找, 有冇 → 有没,
              # 唔该 → 麻烦…): "有没" asks as "有没有" does, 倾偈 is to chat, 职员 are staff
              (re.compile("有没(?!有)"), "有没有"), (re.compile("倾(?=偈|下|吓|一下)"), "聊"),
              (re.compile("职员"), "工作人员"),
              (re.compile("寻(?=个|一个|你们)"), "找"),  # Shanghainese
              (re.compile("部机"), "机器"),
              (re.compile("同仁"), "同事"),  # Taiwan
              # the nouns and verbs of a request in toneless pinyin ("wo yao zhao ni men de gong zuo ren yuan")
              # (the spaces around them go too: "找你们的工作人员")
              *((re.compile(rf"\s*(?<![a-z]){pinyin}(?![a-z])\s*", re.IGNORECASE), words) for pinyin, words in (
                  (r"gong\s*zuo\s*ren\s*yuan", "工作人员"), (r"tong\s*shi", "同事"), (r"shou\s*hou", "售后"),
                  (r"ren\s*gong", "人工"), (r"ni\s*men(\s*de)?", "你们的"), (r"jie\s*tong", "接通"),
                  (r"zhao\s*ge\s*ren", "找个人"), (r"zhao(\s*ge)?(?=\s*(你们|工作人员|同事|售后|人工))", "找"))))


def _without_slips(text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        word = match.group().lower()
        return next((t for t in _REQUEST_WORDS if _one_slip(word, t)), match.group())

    for spelling, words in _SPELLINGS:
        text = spelling.sub(words, text)
    return _WORD.sub(fix, text)


_SENTENCE_END = re.compile(r"(?<=[.?!。？！\n])\s*")


def is_explicit_human_request(text: str) -> bool:
    """A request for a person in the message or in one of its sentences ("are you a bot? I need a human"); not a
    question about when people are there, nor a person declined, already reached or praised. A sentence that
    tells when something happened does not make another one a question about hours ("Tracking says delivered
    on Monday. … I need somebody to open an investigation"). Traditional characters read as simplified."""
    return _asks_for_a_person(mainland_chinese(text or ""))


def _asks_for_a_person(read: str) -> bool:
    """`is_explicit_human_request` of a text already read as mainland Chinese."""
    read = _NOT_A_REQUEST.sub(" ", read)
    return any(_sentence_asks_for_a_person(sentence) for sentence in {read, *_SENTENCE_END.split(read)})


def _sentence_asks_for_a_person(text: str) -> bool:
    if not text.strip() or _asks_when_people_are_there(text):
        return False
    text = _without_slips(text)
    return any(_requests_a_person(part) for part in {text, *split_questions(text)})


def mentions_a_person_without_asking(text: str) -> bool:
    """People are mentioned, none is asked for ("不用转人工了", "人工客服周末上班吗", "your team was great", "背后是
    真人在看吗"): the classifier's request-for-a-person intent, which learned the words rather than the ask, does
    not count."""
    read = mainland_chinese(text or "")
    return _asks_something_else(read) and not _asks_for_a_person(read)


def _asks_something_else(text: str) -> bool:
    """When, whether, what the bot is, or a person declined, reached or praised: words of a request that ask none."""
    return bool(_asks_when_people_are_there(text) or _NOT_A_REQUEST.search(text) or _WHAT_THE_BOT_IS.search(text))


def _asks_when_people_are_there(text: str) -> bool:
    """"人工客服几点上班", "how fast do agents reply": when, not a person now."""
    return bool(_HOURS_QUESTION.search(text)) and not _ASKS_NOW.search(text)


def _requests_a_person(text: str) -> bool:
    if _STRONG_REQUEST.search(text) and not _ENGLISH_IDENTITY.search(text):
        return True
    return bool(_WEAK_REQUEST.search(text)) and not _IDENTITY_QUESTION.search(text)


def faq_base(hit: dict[str, Any]) -> str:
    """"chitchat/ask_name" → "chitchat" (a Rasa retrieval intent); entries of data/faq.yml → "faq"."""
    return hit["id"].split("/")[0] if "/" in hit["id"] else FAQ_INTENT


@dataclass
class Decision:
    """What the bot makes of one message: the intent its policies act on, and whether it may answer alone."""

    intent: str | None  # after the decision: the human intent for a request, NLU_FALLBACK when unsure
    confidence: float
    classifier_intent: str | None  # what the classifier said, before the decision
    nlu_reason: str | None = None  # low_intent_confidence | small_margin
    faq_reason: str | None = None  # low_faq_score | small_faq_margin
    explicit_request: bool = False
    complaint: bool = False
    candidates: list[dict[str, Any]] = field(default_factory=list)
    faq_hit: dict[str, Any] | None = None  # the entry to answer with, when the FAQ is confident
    # A message that asks several things: the entry the bot is sure of for each question, in order (2 or more).
    faq_answers: list[dict[str, Any]] = field(default_factory=list)
    clarify: list[dict[str, Any]] = field(default_factory=list)  # unsure, but it is likely one of these: ask

    @property
    def nlu_confident(self) -> bool:
        return self.nlu_reason is None

    @property
    def faq_confident(self) -> bool:
        return self.faq_reason is None

    @property
    def says_faq(self) -> bool:
        """The intent classifier is confident this is a question for the FAQ."""
        return self.classifier_intent == FAQ_INTENT and self.nlu_confident

    @property
    def hand_over(self) -> bool:
        """A person should take over now, whatever the rules say."""
        return self.explicit_request or self.complaint

    @property
    def answers(self) -> bool:
        """The bot may answer alone: a person is not asked for and the classifier or the FAQ is sure."""
        return not self.hand_over and self.intent != NLU_FALLBACK

    def reason(self, requested_by_dialogue: bool = False) -> str:
        """Why a person takes over; `requested_by_dialogue` when a rule or story led there (a "yes" to "shall I
        get you a person?")."""
        if self.complaint:
            return COMPLAINT
        if self.explicit_request or requested_by_dialogue:
            return EXPLICIT_REQUEST
        return self.nlu_reason or self.faq_reason or EXPLICIT_REQUEST


class EscalationPolicy:
    """The thresholds and intent names of one bot, applied to one message at a time."""

    def __init__(self, settings: KefuSettings, thresholds: Thresholds, intents: Collection[str]) -> None:
        self.settings = settings
        self.thresholds = thresholds
        self.human_intent = next((i for i in settings.human_request_intents if i in intents), None)

    def decide(self, text: str, parse: dict[str, Any], hits: list[dict[str, Any]] | None = None) -> Decision:
        """The decision for one parsed message and its FAQ hits (best first)."""
        hits = hits if hits is not None else parse.get("faq") or []
        text = mainland_chinese(text or "")  # the rules are written in simplified characters
        top = parse.get("intent") or {}
        nlu_reason = self.nlu_rejection(parse)
        confident_intent = top.get("name") if nlu_reason is None else None
        decision = Decision(
            intent=top.get("name"),
            confidence=float(top.get("confidence") or 0.0),
            classifier_intent=top.get("name"),
            nlu_reason=nlu_reason,
            # the classifier's request counts unless the text asks something else (the rules, already asked, saw no
            # request: `mentions_a_person_without_asking` without asking them again)
            explicit_request=_asks_for_a_person(text)
            or (confident_intent in self.settings.human_request_intents and not _asks_something_else(text)
                and self._request_beats_faq(float(top.get("confidence") or 0.0), hits)),
            complaint=confident_intent in self.settings.complaint_intents,
            candidates=candidates(parse, hits),
        )
        decision.faq_reason = self.faq_rejection(hits, decision.says_faq)
        if decision.faq_confident and hits:
            decision.faq_hit = hits[0]
        decision.faq_answers = self.answers_per_question(parse.get("parts") or [], hits, decision.says_faq)
        if decision.faq_answers and decision.faq_hit is None:
            decision.faq_hit, decision.faq_reason = decision.faq_answers[0], None
        elif decision.faq_hit is None:
            # the intent classifier sure it is a question for the FAQ is a second opinion: then any likely entry
            # is worth a "do you mean …?" (one click) rather than "could you rephrase?" (typing it again)
            decision.clarify = self.to_offer(hits, self.thresholds.faq_offer if decision.says_faq else None)
        # Like Rasa's FallbackClassifier, but an explicit request for a person or a confident FAQ match wins.
        if decision.explicit_request and self.human_intent:
            decision.intent, decision.confidence = self.human_intent, 1.0
        elif decision.faq_hit is not None and decision.faq_hit.get("untrained") and not decision.complaint:
            # an entry published since training (bot/knowledge/): the intent classifier, never having seen its
            # questions, may call them anything (out_of_scope…); the FAQ's confident answer decides
            decision.intent, decision.confidence = faq_base(decision.faq_hit), float(decision.faq_hit["score"])
        elif not decision.nlu_confident and decision.faq_hit is not None:
            decision.intent, decision.confidence = faq_base(decision.faq_hit), float(decision.faq_hit["score"])
        elif not decision.nlu_confident:
            decision.intent = NLU_FALLBACK
        elif decision.intent in self.settings.human_request_intents and not decision.explicit_request:
            # the classifier's request for a person, which the text does not make: the FAQ's confident answer, or the
            # classifier's next intent, if sure
            decision.intent, decision.confidence = (
                (faq_base(decision.faq_hit), float(decision.faq_hit["score"])) if decision.faq_hit is not None
                else self.next_intent(parse))
        return decision

    def _request_beats_faq(self, confidence: float, hits: list[dict[str, Any]]) -> bool:
        """The classifier's request for a person, made in words the rules don't know, against a confident FAQ
        answer: it wins from `thresholds.human_over_faq`. Below, the two disagree and the answer is given (the
        shopper can still ask for a person): "有人加我微信说是你们客服…" or "白天家里没人，想让邻居帮忙收" name
        people, and the classifier, which learned requests told with a story, is only fairly sure of them."""
        faq_sure = bool(hits) and hits[0]["score"] >= self.thresholds.faq
        return not faq_sure or confidence >= self.thresholds.human_over_faq

    def next_intent(self, parse: dict[str, Any]) -> tuple[str, float]:
        """The best intent that is not a request for a person, or the fallback when it is not sure enough."""
        ranking = [r for r in parse.get("intent_ranking") or []
                   if r.get("name") not in self.settings.human_request_intents]
        if ranking and float(ranking[0].get("confidence") or 0.0) >= self.thresholds.intent:
            return ranking[0]["name"], float(ranking[0]["confidence"])
        return NLU_FALLBACK, 0.0

    def nlu_rejection(self, parse: dict[str, Any]) -> str | None:
        """low_intent_confidence below `thresholds.intent` (or no intent at all), small_margin when the best other
        intent is within `thresholds.ambiguity` of it, else None."""
        intent = parse.get("intent") or {}
        top = float(intent.get("confidence") or 0.0)
        if intent.get("name") is None or top < self.thresholds.intent:
            return LOW_INTENT_CONFIDENCE
        others = [float(r.get("confidence") or 0.0) for r in parse.get("intent_ranking") or []
                  if r.get("name") != intent.get("name")]
        if top - max(others, default=0.0) < self.thresholds.ambiguity:
            return SMALL_MARGIN
        return None

    def faq_threshold(self, intent_says_faq: bool) -> float:
        """The FAQ score needed to answer: lower when the intent classifier, a second opinion, is sure it is one."""
        t = self.thresholds
        if intent_says_faq and t.faq_with_intent is not None:
            return min(t.faq, t.faq_with_intent)
        return t.faq

    def faq_rejection(self, hits: list[dict[str, Any]], intent_says_faq: bool = False) -> str | None:
        if not hits or hits[0]["score"] < self.faq_threshold(intent_says_faq):
            return LOW_FAQ_SCORE
        if len(hits) > 1 and hits[1]["id"] != hits[0]["id"] and \
                hits[0]["score"] - hits[1]["score"] < self.thresholds.faq_margin:
            return SMALL_FAQ_MARGIN
        return None

    def answers_per_question(self, parts: list[dict[str, Any]], hits: list[dict[str, Any]],
                             intent_says_faq: bool) -> list[dict[str, Any]]:
        """For a message split into its clauses (`parse["parts"]`, each with its own FAQ hits): the entry the
        bot is sure of for each clause that asks something, when that gives two or more different entries; else [].

        Read alone, a clause can make the FAQ sure of the wrong thing, so the whole message (`hits`) has a say:
        - a clause that only tells the situation ("my cart is ¥85 right now, will I pay for delivery?", "它是生日
          礼物") is not answered on its own;
        - a clause without a topic of its own ("能寄新疆不 要多久": how long to Xinjiang, not how long delivery
          takes in general) is about what the message is about: it is answered only with the whole message's
          best entry (on the blind dev sets its own best was right in 16 of 16 clauses where it was that
          entry, in 2 of 30 elsewhere);
        - the whole message's likely reading must be one of the answers ("想在杯子上印个名字 能做吗 多少钱" is
          one question about engraving, whatever "多少钱" alone looks like)."""
        best = hits[0]["id"] if hits else None
        sure = [part["faq"][0] for part in parts if part.get("faq") and part.get("asks", True)
                and self.faq_rejection(part["faq"], intent_says_faq) is None
                and (not part.get("elliptic") or part["faq"][0]["id"] == best)]
        distinct = list({hit["id"]: hit for hit in sure}.values())
        if len(distinct) < 2:
            return []
        likely = best if hits and hits[0]["score"] >= self.thresholds.faq_clarify else None
        return distinct if likely is None or likely in {hit["id"] for hit in distinct} else []

    def to_offer(self, hits: list[dict[str, Any]], at_least: float | None = None) -> list[dict[str, Any]]:
        """The entries to ask "do you mean …?" about when the bot is not sure enough to answer: the likely ones
        among the best three, if together they are at least `at_least` (default `thresholds.faq_clarify`) likely
        to hold the right answer; else [] (nothing worth asking)."""
        at_least = self.thresholds.faq_clarify if at_least is None else at_least
        offered = [h for h in hits[:MAX_OFFERED] if h["score"] >= self.thresholds.faq_offer]
        if offered and sum(h["score"] for h in offered) >= at_least:
            return offered
        return []

    def hands_over_after(self, fallbacks_before: int) -> bool:
        """Whether one more fallback, after `fallbacks_before` in a row, should become a handoff instead."""
        return self.settings.escalate_on_fallback and fallbacks_before + 1 >= self.thresholds.max_fallbacks


def candidates(parse: dict[str, Any], hits: list[dict[str, Any]], k: int = 3) -> list[dict[str, Any]]:
    """The bot's top guesses for the agent: FAQ answers first, then intents, each with a score."""
    out = [
        {"kind": "faq", "id": h["id"], "text": h["answer"], "question": h.get("question"),
         "score": round(h["score"], 4)}
        for h in hits[:k]
    ]
    for item in (parse.get("intent_ranking") or [])[: k - len(out)]:
        out.append({"kind": "intent", "id": item["name"], "text": None, "score": round(item["confidence"], 4)})
    return out
