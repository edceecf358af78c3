"""`kefu test`: replay the project's test conversations (Rasa test stories) and NLU test data, write reports.

As `rasa test` does, a story is replayed on its own events: its user turns (with the story's intents and
entities), `slot_was_set` and `active_loop` steps drive the tracker, and at each action — including the
`action_listen` before every user turn and at the end — the bot's prediction is compared with the story's.
Custom actions are not run, so a bot's tests need no action server; a form the bot predicts where the story
has something else counts as rejected, as in Rasa. The user texts go through the NLU for the intent report
(with `--e2e` a wrong intent also fails the story). `--run-actions` instead talks to the running bot turn by
turn, custom actions and all. Reports follow Rasa's names: intent_report.json, intent_confusion_matrix.png,
failed_test_stories.yml, story_report.json.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.dialogue import events as ev
from bot.dialogue.engine import HANDOFF_ACTION
from bot.dialogue.policies import expand_stories
from bot.dialogue.states import LISTEN, story_events
from bot.formats.nlu_data import parse_nlu
from bot.formats.project import yaml_files
from bot.formats.stories import Step, Story, parse_stories
from bot.formats.yaml_io import load_yaml

TEST_FILE_PREFIX = "test_"
IGNORED_ACTIONS = {"action_listen", "action_extract_slots", "action_session_start"}


@dataclass
class StoryResult:
    story: Story
    passed: bool = True
    # (step line, expected, predicted) for each mismatch
    mismatches: list[tuple[int | None, str, str]] = field(default_factory=list)
    intents: list[tuple[str, str]] = field(default_factory=list)  # (expected, predicted)
    intent_errors: list[tuple[int | None, str, str]] = field(default_factory=list)  # as mismatches


def test_story_files(path: Path) -> list[Path]:
    """The test-story files under `path`, as Rasa finds them: YAML files named `test_*` (a file named on the command
    line is taken as it is). Folders below `path` that hold a bot of their own (a domain.yml) are other bots' and
    are skipped, so fixture bots inside a project's tests/ are not run against the project's model."""
    if path.is_file():
        return [path]
    nested = [d.parent for d in path.rglob("domain.yml") if d.parent != path]
    return [f for f in yaml_files(path) if f.name.startswith(TEST_FILE_PREFIX)
            and not any(bot in f.parents for bot in nested)]


def load_test_stories(path: Path) -> list[Story]:
    stories: list[Story] = []
    for file in test_story_files(path):
        content = load_yaml(file)
        if isinstance(content, dict):
            stories += parse_stories(content.get("stories"), str(file), "stories")
            stories += parse_stories(content.get("rules"), str(file), "rules")
    return stories


def _predicted_intent(parse: dict[str, Any]) -> str:
    name = (parse.get("intent") or {}).get("name") or ""
    hits = parse.get("faq") or []
    if hits and "/" in hits[0]["id"] and hits[0]["id"].split("/")[0] == name:
        return hits[0]["id"]  # a retrieval intent: compare its full name
    return name


def _intent_matches(expected: str, predicted: str) -> bool:
    return expected == predicted or ("/" not in expected and predicted.split("/")[0] == expected)


class _NoActions:
    """Replayed stories never run custom actions (as `rasa test`)."""

    def knows(self, name: str) -> bool:
        return False

    async def run(self, name, tracker, domain):
        raise AssertionError(f"{name} would run during a replay")


def _replay_story(engine, story: Story, parses: dict[str, dict[str, Any]], e2e: bool) -> StoryResult:
    """Rasa's `_predict_tracker_actions`: the story's events drive the tracker; predictions are compared."""
    from bot.dialogue.tracker import Tracker

    result = StoryResult(story)
    domain = engine.domain
    for steps in expand_stories([story]):
        sources: list[Step] = []
        events = story_events(steps, domain, sources=sources)
        tracker = Tracker.from_events(f"test-{uuid.uuid4().hex}", [], domain)
        first = True
        for i, (event, step) in enumerate(zip(events, sources, strict=True)):
            kind = event.get("event")
            if kind == "action" and not (i == 0 and event["name"] == LISTEN):
                expected = event["name"]
                predicted = engine.next_action(tracker, first).action
                if predicted != expected and predicted == tracker.active_loop and predicted in domain.forms:
                    tracker.apply(ev.action_execution_rejected(predicted))  # the form let something else answer
                    predicted = engine.next_action(tracker, first).action
                if predicted != expected:
                    result.passed = False
                    result.mismatches.append((step.line, expected, predicted))
                tracker.apply(event)
                if expected == HANDOFF_ACTION:  # kefu's own action: a person takes over, the form ends
                    tracker.apply(ev.handoff_requested("test_story", []))
                    if tracker.active_loop:
                        tracker.apply(ev.active_loop(None))
                first = False
            elif kind == "user":
                _gold_user_turn(event, step, parses, result, e2e)
                tracker.apply(event)
                first = True
            else:
                tracker.apply(event)
    return result


def _gold_user_turn(event: dict[str, Any], step: Step, parses: dict[str, dict[str, Any]], result: StoryResult,
                    e2e: bool) -> None:
    """Compare the NLU's intent with the story's, and give the story's user event what else the NLU found
    (language, FAQ candidates) for the bot's own decisions."""
    parse = parses.get(step.text or "") if step.text is not None else None
    if parse is None:
        return
    predicted = _predicted_intent(parse)
    if step.intent:
        result.intents.append((step.intent, predicted))
        if not _intent_matches(step.intent, predicted):
            result.intent_errors.append((step.line, f"intent: {step.intent}", f"intent: {predicted}"))
            if e2e:
                result.passed = False
                result.mismatches.append(result.intent_errors[-1])
    gold = event["parse_data"]
    if not step.intent:  # an end-to-end test step: the NLU says what the user meant
        gold["intent"] = dict(parse.get("intent") or {})
        gold["entities"] = gold["entities"] or list(parse.get("entities") or [])
    gold["intent_ranking"] = [dict(gold["intent"])]
    gold.update({k: parse[k] for k in ("language", "faq") if k in parse})


def _parse_texts(model, texts: list[str]) -> dict[str, dict[str, Any]]:
    """Every user text of the test stories through the NLU and FAQ, in one batch."""
    from bot.parsing import BatchedParser, parse_payload

    parser = BatchedParser(model, executor=None)  # type: ignore[arg-type]
    out: dict[str, dict[str, Any]] = {}
    plain = []
    for text in dict.fromkeys(texts):
        payload = parse_payload(text, model.config.kefu.default_language)
        if payload is not None:
            out[text] = payload
        else:
            plain.append(text)
    if plain:
        out.update(zip(plain, parser.parse_now(plain), strict=True))
    return out


def _replay(model_path: Path | None, stories: list[Story], nlu_texts: list[tuple[str, str]], e2e: bool):
    from bot.dialogue.engine import DialogueEngine
    from bot.model import load_model
    from bot.server import ServerSettings

    model = load_model(ServerSettings.for_project(Path("."), model_path=model_path).resolve_model())
    engine = DialogueEngine(model.domain, model.rules, model.memo, model.config.kefu,
                            model.config.effective_thresholds(), _NoActions(), learned=model.learned)
    texts = [s.text for story in stories for s in story.steps if s.kind == "user" and s.text is not None]
    parses = _parse_texts(model, texts + [t for t, _ in nlu_texts])
    story_results = [_replay_story(engine, story, parses, e2e) for story in stories]
    return story_results, [(label, parses[text]) for text, label in nlu_texts]


async def _run_story(agent, story: Story) -> StoryResult:
    from bot.agent import UserMessage

    result = StoryResult(story)
    conversation = f"test-{uuid.uuid4().hex}"
    pending: list[Step] = []  # expected actions of the current turn
    turn_actions: list[str] = []

    def compare() -> None:
        for i, step in enumerate(pending):
            predicted = turn_actions[i] if i < len(turn_actions) else "action_listen"
            if predicted != step.action:
                result.passed = False
                result.mismatches.append((step.line, step.action, predicted))
                return
        pending.clear()

    steps = [s for s in story.steps if s.kind in ("user", "action")]
    for step in steps:
        if step.kind == "action":
            pending.append(step)
            continue
        compare()
        if not result.passed:
            break
        text = step.text if step.text is not None else f"/{step.intent}"
        events = await agent.handle(UserMessage(conversation, text, "test", conversation))
        user = next((e for e in events if e.get("event") == "user"), {})
        predicted = _predicted_intent(user.get("parse_data") or {})
        if step.intent:
            result.intents.append((step.intent, predicted))
            if not _intent_matches(step.intent, predicted):
                result.passed = False
                result.mismatches.append((step.line, f"intent: {step.intent}", f"intent: {predicted}"))
        turn_actions = [e["name"] for e in events if e.get("event") == "action" and e["name"] not in IGNORED_ACTIONS]
    if result.passed:
        compare()
    return result


def _failed_story_yaml(result: StoryResult) -> dict[str, Any]:
    steps = []
    for step in result.story.steps:
        entry = _step_yaml(step)
        for line, _expected, predicted in result.mismatches:
            if line == step.line:
                entry["predicted"] = predicted
        steps.append(entry)
    return {"story": result.story.name, "steps": steps}


def _step_yaml(step: Step) -> dict[str, Any]:
    if step.kind == "user":
        return {k: v for k, v in (("user", step.text), ("intent", step.intent)) if v is not None}
    if step.kind == "action":
        return {"action": step.action}
    if step.kind == "slot_was_set":
        return {"slot_was_set": [{k: v} for k, v in step.slots.items()]}
    if step.kind == "active_loop":
        return {"active_loop": step.loop}
    return {step.kind: step.checkpoint}


async def _evaluate(model_path: Path | None, stories: list[Story], nlu_texts: list[tuple[str, str]]):
    from aiohttp import web

    from bot.app_keys import AGENT
    from bot.server import ServerSettings, create_app

    with tempfile.TemporaryDirectory(prefix="kefu-test-") as tmp:
        settings = ServerSettings.for_project(Path("."), model_path=model_path, db_path=Path(tmp) / "test.db")
        settings.redis_url = None  # tests never touch the production store
        app = create_app(settings)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            agent = app[AGENT]
            story_results = [await _run_story(agent, story) for story in stories]
            nlu_results = [(label, (await agent.parse(text))) for text, label in nlu_texts]
        finally:
            await runner.cleanup()
    return story_results, nlu_results


def _intent_report(pairs: list[tuple[str, str]], out: Path) -> dict[str, Any]:
    from sklearn.metrics import classification_report, confusion_matrix

    if not pairs:
        return {}
    y_true = [a.split("/")[0] for a, _ in pairs]
    y_pred = [b.split("/")[0] for _, b in pairs]
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    (out / "intent_report.json").write_text(json.dumps(report, indent=2))
    labels = sorted(set(y_true) | set(y_pred))
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = max(5, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("expected")
    ax.set_title("Intent confusion matrix")
    fig.tight_layout()
    fig.savefig(out / "intent_confusion_matrix.png", dpi=100)
    plt.close(fig)
    return report


def run_tests(model_path: Path | None, stories: Path, nlu: Path | None, out: Path,
              fail_on_prediction_errors: bool = False, run_actions: bool = False, e2e: bool = False) -> int:
    test_stories = load_test_stories(stories) if stories.exists() else []
    nlu_texts: list[tuple[str, str]] = []
    if nlu:
        for file in yaml_files(nlu):
            content = load_yaml(file)
            if isinstance(content, dict):
                nlu_texts += [(e.text, e.intent) for e in parse_nlu(content.get("nlu"), str(file)).examples]
    if run_actions:
        story_results, nlu_results = asyncio.run(_evaluate(model_path, test_stories, nlu_texts))
    else:
        story_results, nlu_results = _replay(model_path, test_stories, nlu_texts, e2e)

    out.mkdir(parents=True, exist_ok=True)
    pairs = [p for r in story_results for p in r.intents]
    pairs += [(label, _predicted_intent(parse)) for label, parse in nlu_results]
    report = _intent_report(pairs, out)
    failed = [r for r in story_results if not r.passed]
    (out / "failed_test_stories.yml").write_text(
        yaml.safe_dump({"stories": [_failed_story_yaml(r) for r in failed]}, allow_unicode=True, sort_keys=False)
        if failed else "# None of the test stories failed - all good!\n"
    )
    summary = {
        "conversations": len(story_results),
        "passed": len(story_results) - len(failed),
        "failed": len(failed),
        "conversation_accuracy": (len(story_results) - len(failed)) / len(story_results) if story_results else None,
        "intent_accuracy": report.get("accuracy"),
        "failed_stories": [
            {"story": r.story.name, "source": r.story.source,
             "mismatches": [{"line": ln, "expected": e, "predicted": p} for ln, e, p in r.mismatches]}
            for r in failed
        ],
    }
    (out / "story_report.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    for r in failed:
        for line, expected, predicted in r.mismatches:
            print(f"FAILED {r.story.name} ({r.story.source.rsplit(':', 1)[0]}:{line}): "
                  f"expected {expected}, predicted {predicted}")
    print(f"{summary['passed']} passed, {summary['failed']} failed (test conversations); "
          f"intent accuracy {report.get('accuracy', float('nan')):.3f}; reports in {out}/")
    return 1 if failed and fail_on_prediction_errors else 0
