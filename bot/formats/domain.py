"""The Rasa 3.x domain: intents, entities, slots (with mappings), responses, actions, forms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.formats.yaml_io import DataError, line_of, plain

# Actions every Rasa bot has without declaring them.
DEFAULT_ACTIONS = [
    "action_listen",
    "action_restart",
    "action_session_start",
    "action_default_fallback",
    "action_deactivate_loop",
    "action_revert_fallback_events",
    "action_default_ask_affirmation",
    "action_default_ask_rephrase",
    "action_two_stage_fallback",
    "action_unlikely_intent",
    "action_back",
    "action_extract_slots",
    "action_handoff",  # ours: appends handoff_requested
]
DEFAULT_INTENTS = ["restart", "back", "out_of_scope", "session_start", "nlu_fallback"]
SLOT_TYPES = {"text", "bool", "categorical", "float", "list", "any"}
# Rasa also resolves a slot type by its class path; these are its own slot classes, so their plain types.
RASA_SLOT_CLASSES = {f"rasa.shared.core.slots.{cls}": name for cls, name in [
    ("TextSlot", "text"), ("BooleanSlot", "bool"), ("CategoricalSlot", "categorical"), ("FloatSlot", "float"),
    ("ListSlot", "list"), ("AnySlot", "any")]}


@dataclass
class Slot:
    name: str
    type: str = "any"
    initial_value: Any = None
    values: list[str] = field(default_factory=list)
    influence_conversation: bool = True
    mappings: list[dict[str, Any]] = field(default_factory=list)

    def coerce(self, value: Any) -> Any:
        if value is None:
            return None
        if self.type == "bool" and isinstance(value, str):
            return value.strip().lower() in {"true", "yes", "1", "y"}
        if self.type == "float":
            try:
                return float(value)
            except (TypeError, ValueError):
                return value
        return value


@dataclass
class Form:
    name: str
    required_slots: list[str]
    ignored_intents: list[str] = field(default_factory=list)


@dataclass
class Domain:
    intents: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    slots: dict[str, Slot] = field(default_factory=dict)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    forms: dict[str, Form] = field(default_factory=dict)
    session_config: dict[str, Any] = field(default_factory=dict)
    # intents whose `use_entities` / `ignore_entities` limit the entities the policies see: intent -> entities
    intent_entities: dict[str, list[str]] = field(default_factory=dict)
    # where each name was declared, for error messages: name -> "file:line"
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def action_names(self) -> list[str]:
        """Every action the bot can run: defaults, responses, custom actions and forms."""
        names = DEFAULT_ACTIONS + list(self.responses) + self.actions + list(self.forms)
        return list(dict.fromkeys(names))

    def featurized_entities(self, intent: str | None, names: list[str]) -> list[str]:
        """The entity labels the policies see after `intent` (Rasa: the domain's entities, less what the intent's
        `use_entities` / `ignore_entities` leave out)."""
        wanted = self.intent_entities.get(intent or "")
        return [n for n in names if (n.split("#")[0] in self.entities or not self.entities)
                and (wanted is None or n in wanted or n.split("#")[0] in wanted)]

    @property
    def all_intents(self) -> list[str]:
        return list(dict.fromkeys(self.intents + DEFAULT_INTENTS))

    def merge(self, other: Domain) -> None:
        self.intents = list(dict.fromkeys(self.intents + other.intents))
        self.intent_entities.update(other.intent_entities)
        self.entities = list(dict.fromkeys(self.entities + other.entities))
        self.slots.update(other.slots)
        self.responses.update(other.responses)
        self.actions = list(dict.fromkeys(self.actions + other.actions))
        self.forms.update(other.forms)
        self.session_config = other.session_config or self.session_config
        for key, value in other.sources.items():
            self.sources.setdefault(key, value)

    def as_dict(self) -> dict[str, Any]:
        """Rasa's domain JSON (what an action server receives)."""
        return {
            "version": "3.1",
            "intents": [{i: {"use_entities": self.intent_entities[i]}} if i in self.intent_entities else i
                        for i in self.intents],
            "entities": self.entities,
            "slots": {
                name: {
                    "type": slot.type,
                    "initial_value": slot.initial_value,
                    "influence_conversation": slot.influence_conversation,
                    "mappings": slot.mappings,
                    **({"values": slot.values} if slot.values else {}),
                }
                for name, slot in self.slots.items()
            },
            "responses": self.responses,
            "actions": self.actions,
            "forms": {
                name: {"required_slots": form.required_slots, "ignored_intents": form.ignored_intents}
                for name, form in self.forms.items()
            },
            "session_config": self.session_config,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Domain:
        return parse_domain(data, "<model>")


def _names(items: Any, key: str, path: str) -> tuple[list[str], dict[str, str]]:
    if items is None:
        return [], {}
    if not isinstance(items, list):
        raise DataError(f"'{key}' must be a list", path, line_of(items))
    names, sources = [], {}
    for item in items:
        name = next(iter(item)) if isinstance(item, dict) and item else item
        if not isinstance(name, str):
            raise DataError(f"each entry of '{key}' must be a name", path, line_of(items))
        names.append(str(name))
        sources[f"{key}:{name}"] = f"{path}:{line_of(name) or line_of(item) or line_of(items)}"
    return names, sources


def _mapping(value: Any, what: str, path: str, near: Any = None) -> dict:
    """A mapping, or {} for an empty value; anything else is a DataError naming `what`."""
    if value is None or value is False:
        return {}
    if not isinstance(value, dict):
        raise DataError(f"{what} must be a mapping", path, line_of(value) or line_of(near))
    return value


def _list(value: Any, what: str, path: str, near: Any = None) -> list:
    """A list, or [] for an empty value; anything else is a DataError naming `what`."""
    if value is None or value is False:
        return []
    if not isinstance(value, list):
        raise DataError(f"{what} must be a list", path, line_of(value) or line_of(near))
    return value


def _intent_entities(items: Any, entities: list[str], path: str) -> dict[str, list[str]]:
    """`- intent: {use_entities: [...] | true | false, ignore_entities: [...]}` → the entities it keeps."""
    out: dict[str, list[str]] = {}
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not item or not isinstance(next(iter(item.values())), dict):
            continue
        name, spec = next(iter(item.items()))
        use = spec.get("use_entities", True)
        kept = list(entities) if use is True else [str(e) for e in _list(use, f"intent {name!r}: use_entities", path)]
        ignored = {str(e) for e in _list(spec.get("ignore_entities"), f"intent {name!r}: ignore_entities", path)}
        if use is not True or ignored:
            out[str(name)] = [e for e in kept if e not in ignored]
    return out


def _parse_response(name: str, variations: Any, path: str) -> list[dict[str, Any]]:
    if not isinstance(variations, list) or not variations:
        raise DataError(
            f"response {name!r} must be a non-empty list of variations (- text: …)", path, line_of(variations)
        )
    out = []
    for variation in variations:
        if not isinstance(variation, dict):
            raise DataError(f"response {name!r}: each variation must be a mapping", path, line_of(variations))
        if not any(k in variation for k in ("text", "image", "custom", "buttons", "attachment")):
            raise DataError(f"response {name!r}: a variation needs 'text' (or image/custom/buttons)",
                            path, line_of(variation))
        out.append(plain(variation))
    return out


def parse_domain(data: Any, path: str) -> Domain:
    if data is None:
        return Domain()
    if not isinstance(data, dict):
        raise DataError("a domain file must be a mapping (intents:, responses:, …)", path, line_of(data))
    domain = Domain()
    domain.intents, intent_src = _names(data.get("intents"), "intents", path)
    domain.entities, entity_src = _names(data.get("entities"), "entities", path)
    domain.intent_entities = _intent_entities(data.get("intents"), domain.entities, path)
    domain.actions, action_src = _names(data.get("actions"), "actions", path)
    domain.sources.update(intent_src | entity_src | action_src)

    slots = data.get("slots") or {}
    if not isinstance(slots, dict):
        raise DataError("'slots' must be a mapping of slot name to settings", path, line_of(slots))
    for name, spec in slots.items():
        spec = _mapping(spec, f"slot {name!r}", path, slots)
        slot_type = str(spec.get("type", "any"))
        slot_type = RASA_SLOT_CLASSES.get(slot_type, slot_type)
        if slot_type not in SLOT_TYPES and "." not in slot_type:
            raise DataError(
                f"slot {name!r} has unknown type {slot_type!r} (use one of {sorted(SLOT_TYPES)})", path, line_of(spec)
            )
        mappings = spec.get("mappings")
        if mappings is None:
            mappings = [{"type": "from_entity", "entity": name}] if name in domain.entities else []
        domain.slots[str(name)] = Slot(
            name=str(name),
            type=slot_type,
            initial_value=plain(spec.get("initial_value")),
            values=[str(v) for v in _list(spec.get("values"), f"slot {name!r}: values", path, spec)],
            influence_conversation=bool(spec.get("influence_conversation", slot_type != "any")),
            mappings=plain(mappings),
        )
        domain.sources[f"slots:{name}"] = f"{path}:{line_of(spec) or line_of(slots)}"

    responses = data.get("responses") or {}
    if not isinstance(responses, dict):
        raise DataError("'responses' must be a mapping of utter_… names to variations", path, line_of(responses))
    for name, variations in responses.items():
        domain.responses[str(name)] = _parse_response(str(name), variations, path)
        domain.sources[f"responses:{name}"] = f"{path}:{line_of(variations) or line_of(responses)}"

    forms = data.get("forms") or {}
    if not isinstance(forms, dict):
        raise DataError("'forms' must be a mapping of form name to required_slots", path, line_of(forms))
    for name, spec in forms.items():
        spec = _mapping(spec, f"form {name!r}", path, forms)
        required = spec.get("required_slots", [])
        if isinstance(required, dict):  # Rasa 2 style mapping of slot -> mappings
            required = list(required)
        domain.forms[str(name)] = Form(
            str(name),
            [str(s) for s in _list(required, f"form {name!r}: required_slots", path, spec)],
            [str(i) for i in _list(spec.get("ignored_intents"), f"form {name!r}: ignored_intents", path, spec)],
        )
        domain.sources[f"forms:{name}"] = f"{path}:{line_of(spec) or line_of(forms)}"

    session = _mapping(data.get("session_config"), "'session_config'", path, data)
    domain.session_config = {
        "session_expiration_time": session.get("session_expiration_time", 60),
        "carry_over_slots_to_new_session": session.get("carry_over_slots_to_new_session", True),
    }
    return domain
