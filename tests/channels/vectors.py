"""docs/channels.md Appendix A: the WeChat safe-mode vectors (cross-checked with wechatpy 1.8.18)."""

INBOUND_PLAIN = ("<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName><FromUserName><![CDATA["
                 "oTESTUSER0000000000000000001]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><!["
                 "CDATA[text]]></MsgType><Content><![CDATA[你好，我要退货]]></Content><MsgId>24000000000000001</MsgId>"
                 "</xml>")
INBOUND_ENCRYPT = (
    "Q3stYC6hdFzMh9T8HCvyDM6Fos5hy46sSdD5yevTOxEkb3On298ggFcfUSGhtk7CdnWNKbqN6wuwgKrV9Galezgqu1sKyymTpa8ZKYa8EeHm12fQ"
    "amqGl8L9Ph1ogdxXDc0leWxw9mWEPEpC3dwy4wvqVwIYKHfGEB4t5+gZheyARN7fplMgRtXvrt6pDSttwlPYpsPzORC8NS+TmiWovoxYNtPuE3R"
    "qev2k+/Yx6XkmZQsmXFJ17eHEjpRWd9DIByPYSl2q/I1N6D9v8XEYLd+aH4EIwg0g8kR8o+xZK1l2c5hAodTLsKipizMpZ5ulP9oVotVoMvx7s6"
    "FzkZyOoFTBU5DKEHOTYFIp5YaEHuSbqtahnnuh7tPZ5lN9hX0AeUuKve3huUDCMnDqEAY8Nku4MmTqzpPxsoT42Wq6LnZdOx13yPedJ9anM3npm"
    "QKgiAjCyS8Ua7yWE8HZXv1YHQ==")
REPLY_PLAIN = ("<xml><ToUserName><![CDATA[oTESTUSER0000000000000000001]]></ToUserName><FromUserName><![CDATA["
               "gh_0123456789ab]]></FromUserName><CreateTime>1700000001</CreateTime><MsgType><![CDATA[text]]>"
               "</MsgType><Content><![CDATA[已收到]]></Content></xml>")
REPLY_ENCRYPT = (
    "DpQeJfnf/MGZ/+GTIspwVGrHr0TgXKEoqOlCrZou6qr2wT+uQ+ptF95dkUA0j785LHEOHSFC985oCK3HzNUznnwy+YkajUTs/YdpFtrXvAQ8F5sR"
    "2adXdeuad+S45gKS0ZIsctTopRbnrwRgjXfB3Msfq5NwXiWVH4i9dzuAk+6SN1Z3zdoz0Mtu7r39dEcRf7Nl2bLiC78FIVA3bymTTBzG5p444Jh"
    "5D9EX3jCu/lkgJB/eKr6cbyqzh9b/GEgGJTv2iXw/JUJT+4F0x+QDkhBh5kwTFCwNO4yUOkTIEnHbXQb8gKDOcICsxifHTUvTCYJJ44ar9ab3KT"
    "cQpNHeBIvOeJNgW5Rf5ppnv354T7cKRN5SLdvNYEBGMEYtfJ3K")
