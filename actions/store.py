"""The demo shop's data for the custom actions: orders, customers, tickets and the returns the bot starts.

Read-only demo data lives in data/shop/ (orders.json, customers.json, tickets.json); each file can be replaced
by a real export through an environment variable (KEFU_SHOP_ORDERS, KEFU_SHOP_CUSTOMERS, KEFU_SHOP_TICKETS).

Dates: the demo files were written on one day (their `as_of`) and every date in them is moved forward by the
days since then, so the demo behaves the same whenever it runs (an order "delivered 3 days ago" stays within the
7-day return window). KEFU_SHOP_TODAY=YYYY-MM-DD pins "today" (tests do: then the dates are as written). A file
without `as_of` — a real export — is used as it is.

What the bot writes (returns it starts, tickets it opens) goes to `ShopState`: in memory by default (gone when the
process ends — fine for a demo), or a JSON file named by KEFU_SHOP_STATE. Tickets are read through `tickets()`:
when the handoff side's ticket store exists, that one function is all that changes.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "shop"
ORDERS_ENV = "KEFU_SHOP_ORDERS"
CUSTOMERS_ENV = "KEFU_SHOP_CUSTOMERS"
TICKETS_ENV = "KEFU_SHOP_TICKETS"
TODAY_ENV = "KEFU_SHOP_TODAY"
STATE_ENV = "KEFU_SHOP_STATE"
CHINA = timezone(timedelta(hours=8))  # the shop's dates are China time

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class StoreError(RuntimeError):
    """The shop's data cannot be read (missing file, bad JSON): the action says the lookup is unavailable."""


def today() -> date:
    """Today in China time, or KEFU_SHOP_TODAY."""
    pinned = os.environ.get(TODAY_ENV)
    if pinned:
        return date.fromisoformat(pinned)
    return datetime.now(CHINA).date()


def parse_date(value: Any) -> date | None:
    if isinstance(value, str) and _DATE.match(value):
        return date.fromisoformat(value)
    return None


def _shift_dates(value: Any, days: int) -> Any:
    """Every YYYY-MM-DD string in `value` (nested dicts and lists), `days` later."""
    if isinstance(value, dict):
        return {k: _shift_dates(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift_dates(v, days) for v in value]
    if isinstance(value, str) and _DATE.match(value):
        return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
    return value


def _read(path: Path, key: str) -> list[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    records = data.get(key, []) if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise StoreError(f"{path}: '{key}' must be a list")
    as_of = parse_date(data.get("as_of")) if isinstance(data, dict) else None
    if as_of is not None:
        records = _shift_dates(records, (today() - as_of).days)
    return [r for r in records if isinstance(r, dict) and r.get("id")]


def _path(env: str, name: str) -> Path:
    return Path(os.environ.get(env) or DATA_DIR / name)


def orders_file() -> Path:
    return _path(ORDERS_ENV, "orders.json")


def load_orders(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """Orders by upper-case id. Raises StoreError when the file is missing or not valid JSON."""
    return {str(o["id"]).upper(): o for o in _read(path or orders_file(), "orders")}


def load_customers(path: Path | None = None) -> dict[str, dict[str, Any]]:
    return {str(c["id"]): c for c in _read(path or _path(CUSTOMERS_ENV, "customers.json"), "customers")}


def find_order(order_id: str, orders: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The order with this number; 8 bare digits also match our "KF" number with those digits."""
    key = order_id.upper()
    found = orders.get(key)
    if found is None and key.isdigit() and len(key) == 8:
        found = orders.get("KF" + key)
    return found


# -- what the bot writes: returns and tickets ----------------------------------------------------------------------


@dataclass
class ShopState:
    """Returns and tickets the bot created, in memory or in a JSON file (KEFU_SHOP_STATE)."""

    path: Path | None = None
    returns: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.path and self.path.is_file():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise StoreError(f"cannot read {self.path}: {exc}") from exc
            self.returns = list(data.get("returns") or [])
            self.tickets = list(data.get("tickets") or [])

    def _save(self) -> None:
        if not self.path:
            return
        payload = json.dumps({"returns": self.returns, "tickets": self.tickets}, ensure_ascii=False, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _next_number(prefix: str, day: date, taken: set[str]) -> str:
        stem = f"{prefix}-{day.strftime('%Y%m%d')}-"
        used = [int(n[len(stem):]) for n in taken if n.startswith(stem) and n[len(stem):].isdigit()]
        return f"{stem}{max(used, default=0) + 1:04d}"

    def add_return(self, record: dict[str, Any], existing: set[str]) -> dict[str, Any]:
        """Store a return; gives it the next RMA number of the day (RMA-YYYYMMDD-NNNN)."""
        with self._lock:
            taken = existing | {r["rma"] for r in self.returns}
            record = {**record, "rma": self._next_number("RMA", today(), taken), "created_at": today().isoformat()}
            self.returns.append(record)
            self._save()
        return record

    def add_ticket(self, record: dict[str, Any], existing: set[str]) -> dict[str, Any]:
        """Store a ticket; gives it the next number of the day (T-YYYYMMDD-NNNN)."""
        with self._lock:
            taken = existing | {t["id"] for t in self.tickets}
            day = today().isoformat()
            record = {**record, "id": self._next_number("T", today(), taken), "created_at": day, "updated_at": day,
                      "status": "pending"}
            self.tickets.append(record)
            self._save()
        return record


_states: dict[str, ShopState] = {}
_states_lock = threading.Lock()


def shop_state() -> ShopState:
    """The process's ShopState for the current KEFU_SHOP_STATE (one per file, so tests can each use their own)."""
    key = os.environ.get(STATE_ENV) or ""
    with _states_lock:
        state = _states.get(key)
        if state is None:
            state = _states[key] = ShopState(Path(key) if key else None)
        return state


def returns_of(order_id: str) -> list[dict[str, Any]]:
    """Open returns of an order: the ones in the orders file and the ones the bot started."""
    order = find_order(order_id, load_orders())
    listed = list((order or {}).get("returns") or [])
    return listed + [r for r in shop_state().returns if r.get("order_id") == (order or {}).get("id", order_id)]


def start_return(order: dict[str, Any], item_skus: list[str], reason: str, customer_id: str | None,
                 conversation_id: str) -> dict[str, Any]:
    existing = {str(r.get("rma")) for o in load_orders().values() for r in o.get("returns") or []}
    return shop_state().add_return(
        {"order_id": order["id"], "items": item_skus, "reason": reason, "customer_id": customer_id,
         "conversation_id": conversation_id, "status": "approved"},
        existing,
    )


# -- tickets ---------------------------------------------------------------------------------------------------------


class TicketBook(Protocol):
    """Where tickets come from. The demo reads data/shop/tickets.json plus the tickets the bot opened; the
    handoff side's ticket store (messages left for the shop) will implement the same two calls."""

    def get(self, ticket_id: str) -> dict[str, Any] | None: ...

    def create(self, *, customer_id: str | None, conversation_id: str, contact: str | None,
               subject: dict[str, str], details: str, language: str) -> dict[str, Any]: ...


class DemoTickets:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or _path(TICKETS_ENV, "tickets.json")

    def _seeded(self) -> dict[str, dict[str, Any]]:
        return {str(t["id"]).upper(): t for t in _read(self.path, "tickets")}

    def get(self, ticket_id: str) -> dict[str, Any] | None:
        key = ticket_id.upper()
        created = {str(t["id"]).upper(): t for t in shop_state().tickets}
        return created.get(key) or self._seeded().get(key)

    def create(self, *, customer_id: str | None, conversation_id: str, contact: str | None,
               subject: dict[str, str], details: str, language: str) -> dict[str, Any]:
        record = {"customer_id": customer_id, "conversation_id": conversation_id, "contact": contact,
                  "subject": subject, "details": details, "language": language, "updates": []}
        return shop_state().add_ticket(record, set(self._seeded()))


def tickets() -> TicketBook:
    """The ticket store the actions use (swap this for the handoff side's store when it lands)."""
    return DemoTickets()
