"""The NLU pipeline as a shopper would notice it: the right intent in Chinese and English, off-topic messages
handed to the fallback, entities pulled out, and a saved model that parses exactly like the trained one.

Real models throughout (MiniLM, spaCy, jieba); one pipeline is trained per module on the small bilingual bot
below, whose test phrasings are not in its training data.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from bot.config import Config, KefuSettings, Thresholds
from bot.dialogue.escalation import EscalationPolicy
from bot.formats.nlu_data import Example, NLUData, parse_nlu
from bot.formats.yaml_io import DataError, load_yaml_text
from bot.language import detect_language
from bot.nlu import background
from bot.nlu.featurizers import ExampleRows, Features, NgramTfidf, char_wb_ngrams
from bot.nlu.pipeline import ARRAYS_FILE, META_FILE, ModelError, NLUPipeline
from bot.nlu.tokenizer import make_doc, tokenize

NLU_YML = r"""
version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
    - hey
    - hello, anyone here?
    - good evening
    - 你好
    - 您好
    - 早上好
    - 嗨，在吗
    - 哈喽
    - 晚上好
- intent: goodbye
  examples: |
    - bye
    - goodbye
    - see you later
    - thanks, bye
    - that's all, bye bye
    - have a nice day
    - 再见
    - 拜拜
    - 好的，再见
    - 下次见
    - 没事了，谢谢再见
    - 先这样，拜拜
- intent: human_handoff
  examples: |
    - I want to talk to a human
    - let me speak to a real person
    - transfer me to an agent
    - can I chat with customer service staff
    - get me a human please
    - I need a live agent
    - 转人工
    - 我要找人工客服
    - 帮我转接客服人员
    - 有没有真人客服
    - 我想和人工聊
    - 叫你们的客服来
- intent: shipping
  examples: |
    - when will my order ship
    - where is my package
    - how long does delivery take
    - has my order [12345678](order_id) been shipped
    - track my parcel
    - my delivery hasn't arrived yet
    - 什么时候发货
    - 我的快递到哪了
    - 订单 [20240115001](order_id) 发货了吗
    - 物流信息怎么查
    - 几天能到
    - 包裹还没收到
- intent: refund
  examples: |
    - I want a refund
    - how do I return this item
    - can I get my money back
    - I'd like to return my [shoes](product) for a refund
    - refund for a damaged [phone](product)
    - the item is broken, I want to return it
    - 我要退款
    - 怎么退货
    - 可以退钱吗
    - 我想退掉这个[手机](product)
    - 东西坏了要退货
    - 退款多久到账
- intent: payment
  examples: |
    - can I pay with [paypal](payment_method)
    - which payment methods do you accept
    - do you take [credit card](payment_method)
    - can I pay by [wechat pay](payment_method)
    - is [alipay](payment_method) supported
    - payment options
    - 可以用[支付宝](payment_method)付款吗
    - 支持哪些支付方式
    - 能用[微信支付](payment_method)吗
    - 可以刷[信用卡](payment_method)吗
    - 怎么付款
    - 付款方式有哪些
- synonym: credit card
  examples: |
    - visa
    - mastercard
    - 信用卡
- lookup: color
  examples: |
    - red
    - navy blue
    - 红色
    - 深蓝色
- regex: coupon
  examples: |
    - \bSAVE\d{2}\b
"""

# Phrasings that are not in the training data above.
HELD_OUT = [
    ("hey, is somebody there?", "greet"),
    ("good afternoon", "greet"),
    ("你好呀", "greet"),
    ("您好，请问在吗", "greet"),
    ("ok, bye for now", "goodbye"),
    ("see you next time", "goodbye"),
    ("拜拜啦", "goodbye"),
    ("那就这样吧，再见", "goodbye"),
    ("please connect me with a human agent", "human_handoff"),
    ("I'd rather talk to a real person", "human_handoff"),
    ("我要人工服务", "human_handoff"),
    ("转接人工客服", "human_handoff"),
    ("where is my parcel now?", "shipping"),
    ("how many days until my order arrives", "shipping"),
    ("我的包裹什么时候到", "shipping"),
    ("快递到哪里了", "shipping"),
    ("I want my money back for these shoes", "refund"),
    ("how can I return a product", "refund"),
    ("怎么申请退款", "refund"),
    ("我想退货", "refund"),
    ("do you accept visa?", "payment"),
    ("what payment options do you have", "payment"),
    ("能用信用卡付款吗", "payment"),
    ("有哪些付款方式", "payment"),
]

# Off-topic for a shop; none of them is in the built-in off-topic list (checked below).
OUT_OF_SCOPE = [
    "what's the weather tomorrow",
    "明天天气怎么样",
    "recommend a stock",
    "推荐一只股票",
    "tell me a joke",
    "讲个笑话",
    "who won the world cup",
    "how do I cook rice",
    "北京有什么好玩的",
    "who painted the Mona Lisa",
    "怎么学好英语",
]


@pytest.fixture(scope="module")
def config() -> Config:
    return Config()


@pytest.fixture(scope="module")
def data() -> NLUData:
    return parse_nlu(load_yaml_text(NLU_YML)["nlu"], "test-nlu.yml")


@pytest.fixture(scope="module")
def pipeline(config: Config, data: NLUData) -> NLUPipeline:
    nlu = NLUPipeline(config)
    nlu.train(data)
    return nlu


def rejection_reason(parse: dict, thresholds: Thresholds) -> str | None:
    """The classifier's half of the bot's escalation decision (EscalationPolicy, as the engine applies it)."""
    return EscalationPolicy(KefuSettings(), thresholds, []).nlu_rejection(parse)


def decided(parse: dict, thresholds: Thresholds) -> str | None:
    """What the bot does: the intent it acts on, or None for fallback/escalation."""
    return None if rejection_reason(parse, thresholds) else parse["intent"]["name"]


# ---------------------------------------------------------------------------------------------- language
@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("where is my order?", "en"),
        ("我的订单到哪了", "zh"),
        ("退货要几天 refund", "zh"),
        ("order KF20240001 退款", "zh"),
        ("I love my new 手机 so much", "en"),
        ("12345678", "en"),
        ("", "en"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_detect_language_default_for_text_without_letters() -> None:
    assert detect_language("12345 ???", default="zh") == "zh"


def test_tokenize_chinese_with_jieba_and_english_with_spacy() -> None:
    assert tokenize("我想退货", "zh") == ["我", "想", "退货"]
    assert tokenize("Where's my order?", "en") == ["Where", "'s", "my", "order", "?"]


# ---------------------------------------------------------------------------------------------- intents
@pytest.mark.parametrize(("text", "intent"), HELD_OUT)
def test_held_out_phrasings_get_their_intent(pipeline: NLUPipeline, config: Config, text: str, intent: str) -> None:
    parse = pipeline.parse(text)
    assert decided(parse, config.effective_thresholds()) == intent, parse["intent_ranking"][:3]


@pytest.mark.parametrize("text", OUT_OF_SCOPE)
def test_out_of_scope_questions_fall_back(pipeline: NLUPipeline, config: Config, text: str) -> None:
    assert text not in background.EXAMPLES
    parse = pipeline.parse(text)
    assert rejection_reason(parse, config.effective_thresholds()) is not None, parse["intent_ranking"][:3]


def test_parse_result_has_rasa_shape(pipeline: NLUPipeline) -> None:
    parse = pipeline.parse("我要找人工客服")
    assert set(parse) >= {"text", "intent", "intent_ranking", "entities", "language"}
    assert parse["text"] == "我要找人工客服"
    assert parse["language"] == "zh"
    ranking = parse["intent_ranking"]
    assert ranking[0] == parse["intent"]
    assert [r["name"] for r in ranking] == sorted(
        (r["name"] for r in ranking), key=lambda n: -next(r["confidence"] for r in ranking if r["name"] == n)
    )
    assert {r["name"] for r in ranking} == set(pipeline.intents)  # the hidden off-topic class never shows
    assert all(0.0 <= r["confidence"] <= 1.0 for r in ranking)
    assert sum(r["confidence"] for r in ranking) <= 1.0 + 1e-6


def test_retrieval_intents_train_their_base_intent(config: Config) -> None:
    data = NLUData(
        examples=[
            Example("how long does shipping take", "faq/shipping_time"),
            Example("发货要多久", "faq/shipping_time"),
            Example("do you ship abroad", "faq/international"),
            Example("hello", "greet"),
            Example("hi there", "greet"),
            Example("你好", "greet"),
        ]
    )
    nlu = NLUPipeline(config)
    nlu.train(data)
    assert sorted(nlu.intents) == ["faq", "greet"]
    assert nlu.parse("how long is shipping")["intent"]["name"] == "faq"


def test_single_intent_and_no_intent(config: Config) -> None:
    one = NLUPipeline(config)
    one.train(NLUData(examples=[Example("hello", "greet"), Example("你好", "greet")]))
    parse = one.parse("anything at all")
    assert parse["intent"] == {"name": "greet", "confidence": 1.0}
    none = NLUPipeline(config)
    none.train(NLUData())
    parse = none.parse("hello")
    assert parse["intent"] == {"name": None, "confidence": 0.0}
    assert parse["intent_ranking"] == []
    assert rejection_reason(parse, config.effective_thresholds()) == "low_intent_confidence"


def test_parse_batch_matches_parse(pipeline: NLUPipeline) -> None:
    texts = [t for t, _ in HELD_OUT[:8]] + OUT_OF_SCOPE[:4]
    batch = pipeline.parse_batch(texts)
    single = [pipeline.parse(t) for t in texts]
    for b, s in zip(batch, single, strict=True):
        assert b["intent"]["name"] == s["intent"]["name"]
        assert b["intent"]["confidence"] == pytest.approx(s["intent"]["confidence"], abs=1e-3)
        assert b["entities"] == s["entities"]


def test_concurrent_parses_agree_with_sequential_ones(pipeline: NLUPipeline) -> None:
    texts = [t for t, _ in HELD_OUT] * 3
    expected = [pipeline.parse(t)["intent"]["name"] for t in texts]
    with ThreadPoolExecutor(6) as pool:
        got = [p["intent"]["name"] for p in pool.map(pipeline.parse, texts)]
    assert got == expected


# ---------------------------------------------------------------------------------------------- fallback
def test_rejection_reasons() -> None:
    thresholds = Thresholds(intent=0.45, ambiguity=0.08)

    def parse(*confidences: float) -> dict:
        ranking = [{"name": f"i{n}", "confidence": c} for n, c in enumerate(confidences)]
        return {"intent": ranking[0], "intent_ranking": ranking}

    assert rejection_reason(parse(0.9, 0.05), thresholds) is None
    assert rejection_reason(parse(0.3, 0.1), thresholds) == "low_intent_confidence"
    assert rejection_reason(parse(0.5, 0.45), thresholds) == "small_margin"
    assert rejection_reason(parse(0.6), thresholds) is None


# ---------------------------------------------------------------------------------------------- entities
def entities(pipeline: NLUPipeline, text: str) -> list[tuple[str, object]]:
    return [(e["entity"], e["value"]) for e in pipeline.parse(text)["entities"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("where is order 98765432?", [("order_id", "98765432")]),
        ("订单号：202401150001 还没发货", [("order_id", "202401150001")]),
        ("my order #A1B2C3D4 is late", [("order_id", "A1B2C3D4")]),
        ("call me on 138 1234 5678", [("phone", "13812345678")]),
        ("my number is +44 20 7946 0958", [("phone", "+442079460958")]),
        ("联系电话13912345678", [("phone", "13912345678")]),
        ("write to me at li.wei@example.com", [("email", "li.wei@example.com")]),
        ("I paid $49.99", [("amount", "$49.99")]),
        ("退了 299元 还没到账", [("amount", "299元")]),
        ("it cost 1,299 yuan", [("amount", "1,299 yuan")]),
    ],
)
def test_builtin_entities(pipeline: NLUPipeline, text: str, expected: list) -> None:
    assert entities(pipeline, text) == expected


def test_amount_carries_number_and_currency(pipeline: NLUPipeline) -> None:
    (amount,) = pipeline.parse("退款 ¥199.5")["entities"]
    assert amount["additional_info"] == {"value": 199.5, "unit": "CNY"}
    assert amount["extractor"] == "BuiltinEntityExtractor"


def test_entity_offsets_point_at_the_text(pipeline: NLUPipeline) -> None:
    text = "我要退这双 navy blue 的 shoes，订单 12345678，用 paypal 付的"
    found = pipeline.parse(text)["entities"]
    assert [e["entity"] for e in found] == ["color", "product", "order_id", "payment_method"]
    for ent in found:
        assert text[ent["start"] : ent["end"]].lower() == str(ent["value"]).lower(), ent


def test_lookup_regex_annotations_and_synonyms(pipeline: NLUPipeline) -> None:
    assert ("color", "Navy Blue") in entities(pipeline, "do you have it in Navy Blue?")  # the text, as Rasa
    assert ("color", "深蓝色") in entities(pipeline, "这件有深蓝色的吗")
    assert ("coupon", "SAVE20") in entities(pipeline, "can I use code SAVE20")
    assert ("product", "shoes") in entities(pipeline, "my shoes arrived broken")  # annotated in training
    assert ("product", "手机") in entities(pipeline, "手机屏幕碎了")
    paid = pipeline.parse("可以刷信用卡吗")["entities"]
    assert [(e["entity"], e["value"]) for e in paid] == [("payment_method", "credit card")]  # synonym mapped
    assert paid[0]["processors"] == ["EntitySynonymMapper"]
    assert ("color", "red") not in entities(pipeline, "I ordered a shirt")  # whole words only


def test_traditional_characters_are_read_like_simplified_ones(pipeline: NLUPipeline) -> None:
    """Shoppers in Hong Kong, Macau and Taiwan write 快遞 where the examples say 快递: the same intent, their own
    text kept, entities found and given in their characters (as Rasa gives the text)."""
    simplified, traditional = pipeline.parse("我的快递到哪了"), pipeline.parse("我的快遞到哪了")
    assert traditional["text"] == "我的快遞到哪了" and traditional["language"] == "zh"
    assert traditional["intent"] == simplified["intent"] and traditional["intent"]["name"] == "shipping"
    assert ("color", "深藍色") in entities(pipeline, "這件有深藍色的嗎")
    assert ("payment_method", "支付寶") in entities(pipeline, "可以用支付寶付款嗎")
    assert ("payment_method", "credit card") in entities(pipeline, "可以刷信用卡嗎")


def test_bot_regex_takes_precedence_over_builtin(config: Config) -> None:
    data = parse_nlu(
        load_yaml_text(
            """
nlu:
- intent: order_status
  examples: |
    - where is [KF20240001](order_id)
    - 订单[KF20240002](order_id)到哪了
- intent: greet
  examples: |
    - hello
    - 你好
- regex: order_id
  examples: |
    - KF\\d{8}
"""
        )["nlu"],
        "x.yml",
    )
    nlu = NLUPipeline(config)
    nlu.train(data)
    found = nlu.parse("where is KF20249999, not order 12345678")["entities"]
    assert [(e["entity"], e["value"], e["extractor"]) for e in found] == [
        ("order_id", "KF20249999", "RegexEntityExtractor")
    ]


# ---------------------------------------------------------------------------------------------- persistence
def test_persist_and_load_parse_identically(pipeline: NLUPipeline, config: Config, tmp_path: Path) -> None:
    pipeline.persist(tmp_path)
    assert (tmp_path / META_FILE).is_file() and (tmp_path / ARRAYS_FILE).is_file()
    loaded = NLUPipeline.load(tmp_path, config)
    assert loaded.intents == pipeline.intents
    texts = [t for t, _ in HELD_OUT] + OUT_OF_SCOPE + ["可以刷信用卡吗 SAVE20 138 1234 5678"]
    for text in texts:
        assert loaded.parse(text) == pipeline.parse(text)


def test_truncated_model_file_gives_a_clear_error(pipeline: NLUPipeline, config: Config, tmp_path: Path) -> None:
    pipeline.persist(tmp_path)
    arrays = tmp_path / ARRAYS_FILE
    arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])
    with pytest.raises(ModelError, match="corrupt or truncated"):
        NLUPipeline.load(tmp_path, config)


def test_corrupt_meta_file_gives_a_clear_error(pipeline: NLUPipeline, config: Config, tmp_path: Path) -> None:
    pipeline.persist(tmp_path)
    meta = tmp_path / META_FILE
    meta.write_text(meta.read_text(encoding="utf-8")[:100], encoding="utf-8")
    with pytest.raises(ModelError, match=r"nlu_meta\.json.*corrupt or truncated"):
        NLUPipeline.load(tmp_path, config)


def test_missing_model_file_gives_a_clear_error(config: Config, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing"):
        NLUPipeline.load(tmp_path, config)


def test_model_trained_with_another_embedding_model_is_refused(
    pipeline: NLUPipeline, tmp_path: Path
) -> None:
    pipeline.persist(tmp_path)
    other = Config.model_validate({"kefu": {"embedding": {"model": "/opt/some-other-model"}}})
    with pytest.raises(ModelError, match="retrain"):
        NLUPipeline.load(tmp_path, other)


def test_ngrams_whose_python_strings_share_their_bytes_keep_their_own_columns() -> None:
    """Python's str hash reads a string's internal form, in which '杯' and 'og' are the same two bytes: looked up by
    that hash, a cup would have read as the end of 'dog'."""
    tfidf = NgramTfidf(lambda text: char_wb_ngrams(text, (1, 2)))
    tfidf.fit(["杯", "dog"], max_features=100)
    cup, og, cat = tfidf.columns(["杯", "og", "猫"]).tolist()
    assert cup >= 0 and og >= 0 and cup != og and cat == -1
    assert tfidf.terms[cup] == "杯" and tfidf.terms[og] == "og"


def test_training_rows_kept_by_encoder_block_compare_like_the_whole_matrix() -> None:
    """The novelty check's training rows are kept one encoder's columns at a time; a message meets them exactly as
    it would the whole matrix, whatever its language."""
    rng = np.random.default_rng(0)
    dense = np.zeros((6, 5), dtype=np.float32)
    dense[:3, :2] = rng.random((3, 2))  # rows of the first encoder's language
    dense[3:5, 2:] = rng.random((2, 3))  # the second's
    sparse = sp.random(6, 7, density=0.4, random_state=1, format="csr", dtype=np.float32)
    train = Features(dense, sparse)
    rows = ExampleRows.of(train, [(0, 2), (2, 5)])
    languages = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=np.float32)
    messages = Features(rng.random((3, 5), dtype=np.float32) * languages,
                        sp.random(3, 7, density=0.5, random_state=2, format="csr", dtype=np.float32))
    exact = messages.similarity(train).max(axis=1)
    assert np.allclose(rows.nearest(messages), exact, atol=1e-6)
    # with a bar to reach: exact below it; at or above it wherever the exact value is
    for enough in (0.0, float(np.median(exact)), float(exact.max()) + 1):
        found = rows.nearest(messages, enough)
        assert np.allclose(found[exact < enough], exact[exact < enough], atol=1e-6)
        assert (found[exact >= enough] >= enough - 1e-6).all() and (found <= exact + 1e-6).all()
    assert np.array_equal(rows.features().dense, dense)
    assert sum(len(r) for _, _, r, _ in rows.blocks) == 5  # the empty row is kept in no block
    with pytest.raises(ValueError, match="do not cover"):
        ExampleRows.of(train, [(0, 2)])


def test_model_error_is_not_a_data_error() -> None:
    assert not issubclass(ModelError, DataError)  # callers can tell "your files" from "your model"


# ---------------------------------------------------------------------------------------------- several questions
@pytest.mark.parametrize(("text", "questions"), [
    ("几天到，运费多少", ["几天到", "运费多少"]),
    ("寄到乌鲁木齐要几天，运费多少", ["寄到乌鲁木齐要几天", "运费多少"]),
    ("能开发票吗？还有能用花呗吗", ["能开发票吗？", "能用花呗吗"]),
    ("how long does delivery take and also how much is shipping", ["how long does delivery take",
                                                                    "how much is shipping"]),
    ("what payment methods do you accept, and can I pay in installments",
     ["what payment methods do you accept", "can I pay in installments"]),
    ("how long does shipping take and how much does it cost", ["how long does shipping take",
                                                              "how much does it cost"]),
    # one question, or too short to tell: kept whole
    ("where is my order KF20240001, it is late", ["where is my order KF20240001, it is late"]),
    ("你好，我想问一下退货怎么弄", ["你好，我想问一下退货怎么弄"]),
    ("退货要几天 refund", ["退货要几天 refund"]),
    ("ok, thanks", ["ok, thanks"]),
    ("can I return it and get my money back", ["can I return it and get my money back"]),
    # 另外 / 还有 as "extra" or "still", not "besides"
    ("就一个杯子，还要另外收运费吗", ["就一个杯子", "还要另外收运费吗"]),
    ("这件外套还有没有M码", ["这件外套还有没有M码"]),
    ("退货怎么弄 另外 发票怎么开", ["退货怎么弄", "发票怎么开"]),
])
def test_a_message_is_split_into_the_questions_it_asks(text: str, questions: list[str]) -> None:
    from bot.nlu.clauses import split_questions

    assert split_questions(text) == questions


@pytest.mark.parametrize(("text", "asks"), [
    # each clause asks something: each gets its answer
    ("几天到，运费多少", [True, True]),
    ("两张券能一起用吗 积分又怎么抵扣", [True, True]),  # a space between Chinese clauses splits too
    ("forgot my password, also how do i stop all the promo texts", [True, True]),  # "also": another matter
    ("一直登录不上去，还有怎么退订你们的短信", [True, True]),
    # a clause that tells the situation is not a question of its own
    ("买的马克杯想直接丢洗碗机里，会不会出问题啊", [False, True]),
    ("My cart is ¥85 right now, will I have to pay extra for delivery?", [False, True]),
    ("can u wrap it up nice? its a bday present", [True, False]),
    ("发货了吗 等了三天了啥消息都没有", [True, False]),  # 啥…都: "no news at all", not a question
    ("我要的那个颜色一直缺货，什么时候补", [False, True]),  # 我要的: "the one I want", not a request
    ("想要的杯子没货了 会补吗", [False, True]),
    ("这单能开发票吗，寄的是圆通还是韵达", [True, True]),  # a choice asked is a question
    ("换了个浏览器，是不是缓存还是不行", [False, True]),
    ("昨天重新下单了，试了两次还是不行", [False, False]),
])
def test_only_clauses_that_ask_something_are_answered_on_their_own(text: str, asks: list[bool]) -> None:
    from bot.nlu.clauses import clauses

    assert [clause.asks for clause in clauses(text)] == asks


@pytest.mark.parametrize(("text", "elliptic"), [
    ("能寄新疆不 要多久", [False, True]),  # how long to Xinjiang: the clause names no topic of its own
    ("想在杯子上刻字 能做吗 多少钱", [False, True, True]),
    ("can you engrave the mug, and how much does it cost", [False, True]),
    ("几天到，运费多少", [False, False]),  # a first clause refers to nothing before it
    ("你们衣服码偏小吗 能不能机洗", [False, False]),
    ("how long does delivery take and which courier do you use", [False, False]),
])
def test_a_clause_without_a_topic_of_its_own_is_told_apart(text: str, elliptic: list[bool]) -> None:
    from bot.nlu.clauses import clauses

    assert [clause.elliptic for clause in clauses(text)] == elliptic


def test_a_message_is_compared_with_its_languages_rows_only_and_the_scores_do_not_change(
        pipeline: NLUPipeline) -> None:
    """Novelty compares a message with every training example; reading only its encoder's block of columns
    (zeros elsewhere) must find the same nearest example, and so the same confidences, as the whole product."""
    examples = pipeline._examples
    assert examples is not None and len(examples.blocks) == 2  # English and Chinese read by their own encoders
    whole = examples.features()
    texts = ["where is my parcel", "我的包裹到哪了", "KF20240001", "refund 退款"]
    tokens = [[t.text for t in make_doc(text, detect_language(text)) if not t.is_space] for text in texts]
    queries = pipeline._featurizer.transform(texts, tokens, pipeline.embedder.encode(texts))
    for i in range(len(texts)):
        query = queries.rows(np.array([i]))
        assert np.allclose(examples.nearest(query), query.similarity(whole).max(axis=1), atol=1e-5)
