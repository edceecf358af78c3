"""The demo shop as a Rasa 3.6 project, so that Rasa trains and serves the same shop as kefu (benchmarks/vs_rasa.py).

Reads this repository's config.yml, domain.yml and data/ with kefu's own loaders (bot/formats/) and writes

    OUT/config.yml  OUT/domain.yml  OUT/credentials.yml  OUT/data/nlu.yml  OUT/data/rules.yml  OUT/data/stories.yml

then prints what it wrote. Run:

    .venv/bin/python benchmarks/rasa_export.py /tmp/shop-rasa [--diet-epochs 10] [--selector-epochs 30]
    cd /tmp/shop-rasa && RASA_TELEMETRY_ENABLED=false /work/rasavenv/bin/rasa train && \\
        RASA_TELEMETRY_ENABLED=false /work/rasavenv/bin/rasa run --enable-api -p 5405

What carries over as it is: the intents and their examples (entity annotations, synonyms, regexes, lookup tables),
the responses with their zh / en variations, the slots with their mappings, the three forms (Rasa runs forms itself,
asking with the utter_ask_… responses and filling slots from their mappings), the rules and stories, the policies
(RulePolicy, MemoizationPolicy) and the fallback thresholds (FallbackClassifier).

What changes, and why:
- data/faq.yml becomes Rasa retrieval intents: one `faq/<entry>_<language>` intent per entry and language (its
  phrasings in that language) with an `utter_faq/<entry>_<language>` response (the answer in that language), a
  ResponseSelector for `faq` and the rule `faq → utter_faq`. One key per language because Rasa has no per-message
  language detection: kefu's engine sets the `language` slot on every message, Rasa never does, so a single key
  with zh / en variations would always answer in English. A phrasing that is already an example of another
  intent (or of another entry) is kept once, under the first.
- Rasa 3.x takes one `language` per pipeline: the pipeline is `language: zh` with JiebaTokenizer (jieba also
  splits English on spaces and punctuation), RegexFeaturizer, LexicalSyntacticFeaturizer, CountVectorsFeaturizer
  on words and on char_wb 1–4-grams (typos, Chinese without a dictionary), DIETClassifier, EntitySynonymMapper,
  ResponseSelector and FallbackClassifier, each with Rasa's default settings except the epochs: DIET trains
  `--diet-epochs` (default 10) and the ResponseSelector `--selector-epochs` (default 30), where Rasa's defaults
  are 300 and 300, so that training takes tens of minutes rather than hours on 2 cores (on the shop's ~8,000
  examples an epoch took 80–110 s for DIET and 20–60 s for the ResponseSelector on a shared 2-core machine at load
  5–9: a whole `rasa train` ≈ 35 min). Epochs change what Rasa learns, not how fast it answers, and the benchmark
  measures speed; with these, Rasa answers the benchmark's Chinese FAQ questions right and some English ones with
  a neighbouring entry. jieba returns the spaces between English words as tokens too (Rasa 3.6 keeps them),
  so English messages are about twice as many tokens long for DIET as with WhitespaceTokenizer.
- kefu's custom actions (they read kefu's order, ticket and identity stores: action_order_status,
  action_start_return, action_create_ticket, action_ticket_status, action_skip_review) become plain responses
  `utter_<action>` saying what kefu would do there; the form validation actions (validate_…) are dropped (Rasa
  then takes any value its mappings extract), action_ask_return_item becomes the response utter_ask_return_item,
  and kefu's built-in action_handoff becomes utter_handoff. So no action server is needed.
- Slots only actions set (mappings `type: custom`: return_outcome, customer_id, …) stay in the domain, but the
  `slot_was_set` steps for them leave the stories and the rules conditioned on them are dropped (no action sets
  them in Rasa). The `language` slot is never set in Rasa, so non-FAQ replies come in the default (English)
  variation.
- Rules with more than one user message (Rasa refuses them: "use stories for these cases") become stories.
- Two rules are added: `faq → utter_faq` and `nlu_fallback → utter_default` (kefu falls back on its own).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.formats.faq_data import LANGUAGES, FAQEntry  # noqa: E402
from bot.formats.nlu_data import Example, NLUData  # noqa: E402
from bot.formats.project import Project, load_project  # noqa: E402
from bot.formats.stories import Step, Story  # noqa: E402

DIET_EPOCHS = 10
SELECTOR_EPOCHS = 30
BUILT_IN_REPLACEMENTS = {"action_handoff": "utter_handoff"}  # kefu's built-in actions Rasa does not have


class _Block(str):
    """A string YAML writes as a literal block (`examples: |`)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Block, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, "|"))


def dump(data: dict[str, Any]) -> str:
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10**6)


def block(lines: list[str]) -> _Block:
    return _Block("".join(f"- {line}\n" for line in lines))


# -- NLU -------------------------------------------------------------------------------------------------------------

def annotated(example: Example) -> str:
    """An example's text with its entities marked up again ([KF20240001](order_id), [顺丰]{"entity": …})."""
    out, cursor = [], 0
    for entity in sorted(example.entities, key=lambda e: e.start):
        surface = example.text[entity.start:entity.end]
        out.append(example.text[cursor:entity.start])
        extra = {k: v for k, v in (("role", entity.role), ("group", entity.group)) if v}
        if entity.value == surface and not extra:
            out.append(f"[{surface}]({entity.entity})")
        else:
            spec = {"entity": entity.entity, "value": entity.value, **extra}
            inner = ", ".join(f'"{k}": "{v}"' for k, v in spec.items())
            out.append(f"[{surface}]{{{inner}}}")
        cursor = entity.end
    out.append(example.text[cursor:])
    return "".join(out).replace("\n", " ").strip()


def faq_key(entry: FAQEntry, language: str) -> str:
    return f"{entry.id}_{language}" if language in LANGUAGES else entry.id


def faq_intents(faq: list[FAQEntry], default_language: str) -> tuple[dict[str, list[str]], dict[str, str]]:
    """`faq/<key>` → phrasings, and `utter_faq/<key>` → answer, one key per entry and language."""
    examples: dict[str, list[str]] = {}
    answers: dict[str, str] = {}
    for entry in faq:
        for language, phrasings in entry.questions.items():
            if not phrasings:
                continue
            key = faq_key(entry, language)
            examples[f"faq/{key}"] = phrasings
            answers[f"utter_faq/{key}"] = entry.answer(language if language in LANGUAGES else default_language)
    return examples, answers


def nlu_blocks(nlu: NLUData, faq_examples: dict[str, list[str]]) -> tuple[list[dict[str, Any]], int]:
    """The `nlu:` list, and how many duplicate texts were left out (a text is an example of one intent only)."""
    by_intent: dict[str, list[str]] = {}
    seen: set[str] = set()
    dropped = 0
    pairs = [(e.intent, annotated(e), e.text) for e in nlu.examples]
    pairs += [(intent, text, text) for intent, texts in faq_examples.items() for text in texts]
    for intent, text, plain in pairs:
        if plain.strip().lower() in seen:
            dropped += 1
            continue
        seen.add(plain.strip().lower())
        by_intent.setdefault(intent, []).append(text)
    blocks: list[dict[str, Any]] = [{"intent": i, "examples": block(t)} for i, t in by_intent.items()]
    synonyms: dict[str, list[str]] = {}
    for variant, canonical in nlu.synonyms.items():
        if variant != canonical.lower():
            synonyms.setdefault(canonical, []).append(variant)
    blocks += [{"synonym": c, "examples": block(v)} for c, v in synonyms.items()]
    blocks += [{"regex": n, "examples": block(p)} for n, p in nlu.regexes.items()]
    blocks += [{"lookup": n, "examples": block(v)} for n, v in nlu.lookups.items()]
    return blocks, dropped


# -- domain ----------------------------------------------------------------------------------------------------------

def custom_actions(project: Project) -> list[str]:
    """Actions Rasa could only run with kefu's action server."""
    return [a for a in project.domain.actions if not a.startswith("utter_")]


def replacement(action: str, project: Project) -> str | None:
    """The response that stands in for `action` in Rasa (None: the action is left out)."""
    if action in BUILT_IN_REPLACEMENTS:
        return BUILT_IN_REPLACEMENTS[action]
    if action not in custom_actions(project):
        return action
    if action.startswith("validate_"):
        return None
    if action.startswith("action_ask_"):
        return "utter_ask_" + action.removeprefix("action_ask_")
    return "utter_" + action.removeprefix("action_")


def placeholder_responses(project: Project) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for action in custom_actions(project):
        name = replacement(action, project)
        if name and name not in project.domain.responses:
            text = (f"(kefu runs its custom action {action} here; the Rasa export answers with this plain response)"
                    if not action.startswith("action_ask_") else
                    f"(kefu asks for {action.removeprefix('action_ask_')} with its custom action {action} here)")
            out[name] = [{"text": text}]
    return out


def action_only_slots(project: Project) -> set[str]:
    """Slots only actions set (every mapping `type: custom`), except `language` (the responses' condition)."""
    return {name for name, slot in project.domain.slots.items()
            if name != "language" and slot.mappings and all(m.get("type") == "custom" for m in slot.mappings)}


def domain(project: Project, faq_answers: dict[str, str]) -> dict[str, Any]:
    data = project.domain.as_dict()
    data["responses"] = {**data["responses"], **placeholder_responses(project),
                         **{name: [{"text": text}] for name, text in faq_answers.items()}}
    data["actions"] = [a for a in data["actions"] if a not in custom_actions(project)]
    if not data["actions"]:
        del data["actions"]
    if "faq" not in data["intents"] and faq_answers:
        data["intents"].append("faq")
    return data


# -- rules and stories -----------------------------------------------------------------------------------------------

def step_yaml(step: Step, project: Project) -> dict[str, Any] | None:
    """One step as Rasa writes it (None: the step is left out of the export)."""
    if step.kind == "user":
        out: dict[str, Any] = {"intent": step.intent}
        if step.entities:
            out["entities"] = [{e["entity"]: e["value"]} if set(e) == {"entity", "value"} else e["entity"]
                               if set(e) == {"entity"} else e for e in step.entities]
        return out
    if step.kind == "action":
        action = replacement(step.action or "", project)
        return {"action": action} if action else None
    if step.kind == "slot_was_set":
        slots = [{k: v} for k, v in step.slots.items() if k not in action_only_slots(project)]
        return {"slot_was_set": slots} if slots else None
    if step.kind == "active_loop":
        return {"active_loop": step.loop}
    if step.kind == "checkpoint":
        return {"checkpoint": step.checkpoint}
    if step.kind == "or":
        return {"or": [s for s in (step_yaml(a, project) for a in step.alternatives) if s]}
    raise ValueError(f"the export does not write {step.kind!r} steps")


def story_yaml(story: Story, project: Project, as_rule: bool | None = None) -> dict[str, Any]:
    as_rule = story.is_rule if as_rule is None else as_rule
    out: dict[str, Any] = {"rule" if as_rule else "story": story.name}
    if story.conversation_start:
        out["conversation_start"] = True
    if story.condition and as_rule:
        out["condition"] = [s for s in (step_yaml(c, project) for c in story.condition) if s]
    out["steps"] = [s for s in (step_yaml(step, project) for step in story.steps) if s]
    if not story.wait_for_user_input and as_rule:
        out["wait_for_user_input"] = False
    return out


def multi_turn(rule: Story) -> bool:
    """Rasa refuses rules with more than one user message ("use stories for these cases"); kefu takes them."""
    return sum(step.kind == "user" for step in rule.steps) > 1


def rules(project: Project) -> list[dict[str, Any]]:
    action_only = action_only_slots(project)
    kept = [r for r in project.rules
            if not any(c.kind == "slot_was_set" and set(c.slots) & action_only for c in r.condition)]
    out = [story_yaml(r, project) for r in kept if not multi_turn(r)]
    if project.faq:
        out.append({"rule": "Answer a FAQ question (ResponseSelector)",
                    "steps": [{"intent": "faq"}, {"action": "utter_faq"}]})
    out.append({"rule": "Fall back when NLU is not sure (FallbackClassifier)",
                "steps": [{"intent": "nlu_fallback"}, {"action": "utter_default"}]})
    return out


# -- config ----------------------------------------------------------------------------------------------------------

def config(project: Project, diet_epochs: int, selector_epochs: int) -> dict[str, Any]:
    thresholds = project.config.effective_thresholds()
    return {
        "recipe": "default.v1",
        "language": "zh",
        "assistant_id": f"{project.config.assistant_id or 'kefu'}-rasa-export",
        "pipeline": [
            {"name": "JiebaTokenizer"},
            {"name": "RegexFeaturizer"},
            {"name": "LexicalSyntacticFeaturizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
            {"name": "DIETClassifier", "epochs": diet_epochs, "constrain_similarities": True},
            {"name": "EntitySynonymMapper"},
            {"name": "ResponseSelector", "retrieval_intent": "faq", "epochs": selector_epochs,
             "constrain_similarities": True},
            {"name": "FallbackClassifier", "threshold": thresholds.intent,
             "ambiguity_threshold": thresholds.ambiguity},
        ],
        "policies": [dict(p) for p in project.config.policies or []] or [{"name": "RulePolicy"}],
    }


def export(project_dir: Path, out: Path, diet_epochs: int = DIET_EPOCHS,
           selector_epochs: int = SELECTOR_EPOCHS) -> dict[str, int]:
    """Write the Rasa project into `out`; returns counts of what it holds."""
    project = load_project(project_dir / "config.yml", project_dir / "domain.yml", [project_dir / "data"])
    faq_examples, faq_answers = faq_intents(project.faq, project.config.kefu.default_language)
    nlu, dropped = nlu_blocks(project.nlu, faq_examples)
    (out / "data").mkdir(parents=True, exist_ok=True)
    header = "# Written by benchmarks/rasa_export.py from kefu's demo shop: edit the shop, not this file.\n"
    files = {
        "config.yml": config(project, diet_epochs, selector_epochs),
        "domain.yml": {"version": "3.1", **domain(project, faq_answers)},
        "credentials.yml": {"rest": None},
        "data/nlu.yml": {"version": "3.1", "nlu": nlu},
        "data/rules.yml": {"version": "3.1", "rules": rules(project)},
        "data/stories.yml": {"version": "3.1", "stories": [story_yaml(s, project) for s in project.stories] + [
            story_yaml(r, project, as_rule=False) for r in project.rules if multi_turn(r) and not r.condition]},
    }
    for name, data in files.items():
        (out / name).write_text(header + dump(data), encoding="utf-8")
    return {"intents": len(project.nlu.intents), "examples": len(project.nlu.examples),
            "faq entries": len(project.faq), "faq keys": len(faq_examples),
            "faq phrasings": sum(map(len, faq_examples.values())), "duplicates left out": dropped,
            "actions replaced or dropped": len(custom_actions(project)), "rules": len(files["data/rules.yml"]["rules"]),
            "stories": len(files["data/stories.yml"]["stories"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="directory to write the Rasa project into")
    parser.add_argument("--project", type=Path, default=ROOT, help="the kefu project to export (default: the shop)")
    parser.add_argument("--diet-epochs", type=int, default=DIET_EPOCHS, help="DIETClassifier epochs")
    parser.add_argument("--selector-epochs", type=int, default=SELECTOR_EPOCHS, help="ResponseSelector epochs")
    args = parser.parse_args()
    counts = export(args.project.resolve(), args.out, args.diet_epochs, args.selector_epochs)
    print(f"Rasa 3.6 project in {args.out}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
