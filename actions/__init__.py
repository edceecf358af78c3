"""Custom actions of the kefu demo shop (rasa-sdk), run in-process or on an action server (`kefu actions`).

orders.py   the order-status form's validation and action_order_status (plus checks shared with returns)
returns.py  the return form: which item, why, its condition; eligibility and the RMA (action_start_return)
tickets.py  ticket status (with its form) and review tickets the bot opens (action_create_ticket)
identity.py who the shopper is (channel metadata or a phone / e-mail check) and their language
store.py    the demo shop's data in data/shop/ and what the bot writes (returns, tickets)
texts.py    bilingual message helpers
"""
