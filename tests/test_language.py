"""Traditional and simplified Chinese: read as one, answered in the shopper's own script."""

from __future__ import annotations

import opencc

from bot.language import mainland_chinese, traditional, writes_traditional
from bot.simplified_only import CHARACTERS


def test_traditional_characters_are_read_as_simplified_and_keep_their_length():
    assert mainland_chinese("請問可以幫我轉給專人處理嗎？") == "请问可以帮我转给专人处理吗？"
    assert mainland_chinese("where is KF20240001") == "where is KF20240001"
    assert all(len(mainland_chinese(t)) == len(t) for t in ["乾隆年間的頭髮", "麵包", "後來發現"])


def test_written_cantonese_is_read_in_the_mandarin_words_of_the_phrasings():
    assert mainland_chinese("寄香港使唔使俾關稅㗎") == "寄香港要不要给关税的"
    assert mainland_chinese("你哋有冇貨") == "你们有没货"
    assert mainland_chinese("沒關係，我再等等") == "没关系，我再等等", "係 in 關係 is Mandarin"
    assert mainland_chinese("碌卡碌唔到") == "刷卡刷不到"
    assert mainland_chinese("最近好忙碌") == "最近好忙碌", "碌 in 忙碌 is busy, not a card swiped"
    assert mainland_chinese("平咗三十蚊") == "降了三十元"
    assert mainland_chinese("蚊帳幾多錢") == "蚊帐多少钱", "a 蚊 after no number is a mosquito"


def test_taiwan_shop_words_are_read_as_the_mainland_says_them():
    assert mainland_chinese("統編填錯了，保固多久") == "税号填错了，保修多久"
    assert mainland_chinese("折價券跟點數可以一起用嗎") == "优惠券跟积分可以一起用吗"
    assert mainland_chinese("七天鑑賞期") == "七天无理由"


def test_the_script_a_shopper_writes_is_told_by_their_newest_message_that_tells():
    assert writes_traditional(["請問運費多少錢"])
    assert not writes_traditional(["请问运费多少钱"])
    assert writes_traditional(["好的", "OK", "請問運費多少錢"]), "'好的' reads the same in both scripts"
    assert not writes_traditional(["好的", "请问运费多少钱", "請問運費多少錢"])
    assert not writes_traditional(["好的"]) and not writes_traditional([])


def test_replies_are_written_in_traditional_characters_for_those_who_write_them():
    assert traditional("满 99 元包邮，退货后 1–3 个工作日退款") == "滿 99 元包郵，退貨後 1–3 個工作日退款"
    assert traditional("Free shipping over ¥99") == "Free shipping over ¥99"


def test_the_simplified_only_characters_are_those_opencc_converts():
    """bot/simplified_only.py is a constant made with OpenCC's s2t (see there): it must still be what s2t says."""
    s2t = opencc.OpenCC("s2t")
    found = {ch for i in [*range(0x4E00, 0xA000), *range(0x3400, 0x4DC0)] if s2t.convert(ch := chr(i)) != ch}
    assert found == CHARACTERS
