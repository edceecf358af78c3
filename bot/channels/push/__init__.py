"""What the push channels (WeChat, Messenger) share, one idea per module (docs/channels.md §0):

| module | what |
|---|---|
| `channel` | `PushChannel` and `PushSettings`, the base: the platform API, forwarder and sweep while the app runs |
| `serial` | ordered work per conversation (`KeyedSerial`) and background tasks (`TaskSet`) |
| `inbox` | messages acknowledged to the platform but not yet answered (`Inbox`) |
| `claims` | who sends each notice and agent reply (`claim`, `turn_output`, `is_forwarded`) |
| `forwarder` | the bus forwarder with its catch-up (`BusForwarder`, `forwarding`) |
| `text` | splitting long texts (`split_text`, `utf8_len`) |
| `documents` | read-modify-write of shared key/value documents (`update_document`) |
"""
