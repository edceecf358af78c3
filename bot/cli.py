"""`kefu …`: train, run, shell, test, evaluate, actions, data validate (Rasa's commands, same flags); agents, faq."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bot.formats.yaml_io import DataError

if TYPE_CHECKING:
    from bot.server import ServerSettings


class CommandError(Exception):
    """An ordinary mistake: printed as one line ("Error: …"), exit status 1, no traceback."""


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _project_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="config.yml", type=Path, help="NLU pipeline and policies")
    parser.add_argument("--domain", default="domain.yml", type=Path, help="domain file or folder")
    parser.add_argument("--data", default=[Path("data")], type=Path, nargs="+", help="training data files or folders")


def _load_project(args: argparse.Namespace):
    from bot.formats.project import load_project

    _config_exists(args.config)
    return load_project(args.config, args.domain, list(args.data))


def _config_exists(config: Path) -> None:
    """Without config.yml the defaults apply (as in Rasa); a --config that names a missing file is a mistake."""
    if config != Path("config.yml") and not config.exists():
        raise CommandError(f"{config}: config file not found (pass --config)")


def cmd_train(args: argparse.Namespace) -> int:
    from bot.model import archive_fingerprint, fingerprint_of, latest_archive, prune, train

    project = _load_project(args)
    latest = latest_archive(args.out)
    if latest and not args.force and archive_fingerprint(latest) == fingerprint_of(project):
        print(f"Nothing changed since {latest}: no training needed (use --force to retrain).")
        return 0
    print("Training the bot (the demo shop: about 2–3 minutes on 2 cores; the first run also loads the embedding "
          "model).", flush=True)
    stages = StageClock()
    path = train(project, args.out, progress=stages,
                 fixed_name=f"{args.fixed_model_name}.tar.gz" if args.fixed_model_name else None)
    prune(args.out, keep=args.keep)
    print(f"Your bot is trained in {stages.summary()}: {path}")
    return 0


class StageClock:
    """Training's progress callback: each line with the time since training began, and, at the end, how long each
    stage took. A stage is a line of the trainer's own ("indexing 83 FAQ entries"); lines of a part ("NLU: …",
    "FAQ: …") are steps inside the current stage."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.stages: list[tuple[str, float]] = []  # (stage, when it began)

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        if not _STEP.match(message):
            self.stages.append((message, now))
        print(f"[{now - self.started:5.1f}s] {message}", flush=True)

    def summary(self) -> str:
        """"71.3 s (training NLU… 40.2 s, indexing… 30.1 s, …)"."""
        now = time.perf_counter()
        ends = [began for _, began in self.stages[1:]] + [now] if self.stages else []
        parts = [f"{_first_words(stage)} {end - began:.1f} s" for (stage, began), end in zip(self.stages, ends,
                                                                                               strict=True)]
        return f"{now - self.started:.1f} s" + (f" ({', '.join(parts)})" if parts else "")


_STEP = re.compile(r"^[A-Za-z]+: ")


def _first_words(stage: str) -> str:
    return " ".join(stage.split()[:2]) + "…"


def _ensure_model(args: argparse.Namespace) -> None:
    """`kefu run` and `kefu shell` train first when the project has no usable model for its current files."""
    if getattr(args, "model", None) is None and Path("domain.yml").exists():
        ns = argparse.Namespace(config=Path("config.yml"), domain=Path("domain.yml"), data=[Path("data")],
                                out=Path("models"), force=False, fixed_model_name=None, keep=5)
        cmd_train(ns)


def _one_thread_per_call() -> None:
    """Serving: one BLAS thread per call (OpenBLAS's count is the process's). A shopper's message gains nothing
    from more; under load a thread team waits for cores other requests hold (a 1×896 by 896×8,000 product took
    11 ms with OpenBLAS's two threads on a busy machine, 0.7 ms with one), and workers forked from this process
    must not inherit a thread pool. OpenMP's count is per thread: this sets the main thread's, the FAQ search
    sets its own (bot/faq/index.py)."""
    import faiss  # noqa: F401 — loaded first, so that the limit reaches its own OpenBLAS and OpenMP
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def cmd_run(args: argparse.Namespace) -> int:
    from bot.limits import raise_open_files_limit
    from bot.server import ServerSettings

    _ensure_model(args)
    _one_thread_per_call()
    raise_open_files_limit()  # a chat socket is a file descriptor: thousands of them, not the usual 1,024
    token = args.auth_token or os.environ.get("KEFU_AUTH_TOKEN")
    settings = ServerSettings.for_project(Path("."), model_path=args.model, auth_token=token,
                                          public_url=args.public_url)
    if args.workers > 1:
        return _run_workers(args, settings)
    print(f"Loading the model ({args.model or 'the newest in models/'}), the embedding model and the stores…",
          flush=True)
    with _serving_store(settings):
        _serve(settings, args.host, args.port, reuse_port=args.reuse_port)
    return 0


def _serve(settings: ServerSettings, host: str, port: int, reuse_port: bool) -> None:
    """Serve until stopped; "kefu serving on …" is printed once the port answers, after everything has loaded."""
    from aiohttp import web

    from bot.access_log import AccessLog
    from bot.server import create_app

    app = create_app(settings)  # a channel's bad settings fail here, before we claim to be serving
    app.on_startup.append(_settle_collector)  # after the model, stores and channels are up (bot/collector.py)
    url = f"http://{host}:{port}"
    try:
        web.run_app(app, host=host, port=port, reuse_port=reuse_port or None, access_log_class=AccessLog,
                    print=lambda _started: print(f"kefu serving on {url}  (shop {url}/, agent console "
                                                 f"{url}/console; Ctrl-C stops)", flush=True))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror} — choose another port "
                               "with --port N (or KEFU_PORT, or make run PORT=N)") from None
        raise


async def _settle_collector(_app: object) -> None:
    from bot.collector import settle_for_serving

    settle_for_serving()


def _run_workers(args: argparse.Namespace, settings: ServerSettings) -> int:
    """`kefu run --workers N`: the model is loaded once, then N workers are forked from it (bot/workers.py)."""
    import dataclasses

    from bot.model import ModelError
    from bot.workers import WorkersError, serve

    def load() -> Callable[[str], None]:
        try:
            model_path = settings.resolve_model()
            print(f"Loading the model ({model_path}) once for {args.workers} workers…", flush=True)
            loaded = dataclasses.replace(settings, model_path=model_path, preloaded_model=settings.load_model())
        except ModelError as exc:
            raise CommandError(str(exc)) from None
        return lambda redis_url: _serve(dataclasses.replace(loaded, redis_url=redis_url), args.host, args.port,
                                        reuse_port=True)

    try:
        return serve(args.workers, args.host, args.port, load, settings.redis_url, _store_path(settings).parent)
    except WorkersError as exc:
        raise CommandError(str(exc)) from None


def _store_path(settings: ServerSettings) -> Path:
    """The embedded store's file (`kefu.db` in the project unless settings say otherwise)."""
    return settings.db_path or settings.project_dir / "kefu.db"


def _serving_store(settings: ServerSettings) -> contextlib.AbstractContextManager[None]:
    """With the embedded store, hold its serving lock: a second `kefu run` on the file gets one clear line."""
    if settings.redis_url:
        return contextlib.nullcontext()
    from bot.stores.serving_lock import serving

    return serving(_store_path(settings))


def cmd_shell(args: argparse.Namespace) -> int:
    from bot.agent import UserMessage
    from bot.app_keys import AGENT
    from bot.language import conversation_language
    from bot.notices import describe
    from bot.server import ServerSettings, create_app

    _ensure_model(args)

    async def chat() -> None:
        from aiohttp import web

        app = create_app(ServerSettings.for_project(Path("."), model_path=args.model))
        runner = web.AppRunner(app)
        await runner.setup()  # runs the lifecycle: model, stores, agent
        agent = app[AGENT]
        conversation = f"shell-{uuid.uuid4().hex[:8]}"
        language = agent.model.config.kefu.default_language
        print("Chat with the bot (Ctrl-D or /stop to quit).")
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    text = await loop.run_in_executor(None, input, "Your input ->  ")
                except EOFError:
                    break
                if text.strip() in ("/stop", "/quit"):
                    break
                if not text.strip():
                    continue
                stored = await agent.handle(UserMessage(conversation, text, "cmdline", conversation))
                language = conversation_language(stored, language)
                for event in stored:
                    if event.get("event") == "bot" and event.get("text"):
                        print(event["text"])
                        for button in (event.get("data") or {}).get("buttons") or []:
                            print(f"  [{button.get('title')}]")
                    elif event.get("event") == "agent_message":
                        print(f"[{event.get('agent_name') or event.get('agent')}] {event.get('text')}")
                    elif described := describe(event, language):
                        print(f"({described})")
        finally:
            await runner.cleanup()

    asyncio.run(chat())
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from bot.story_tests import run_tests

    _ensure_model(args)
    return run_tests(model_path=args.model, stories=args.stories, nlu=args.nlu, out=args.out,
                     fail_on_prediction_errors=args.fail_on_prediction_errors, run_actions=args.run_actions,
                     e2e=args.e2e)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from bot.config import load_config
    from bot.evaluate import evaluate, main_table

    _config_exists(args.config)
    report = evaluate(args.train, args.test, load_config(args.config), args.out, oos_label=args.oos_label,
                      text_column=args.text_column, label_column=args.label_column)
    print(main_table(report))
    print(f"Report written to {args.out / 'report.json'}")
    return 0


def cmd_actions(args: argparse.Namespace) -> int:
    from rasa_sdk import endpoint
    from rasa_sdk.executor import ActionExecutor

    sys.path.insert(0, str(Path(".").resolve()))
    executor = ActionExecutor()
    executor.register_package(args.actions)
    endpoint.run(executor, port=args.port)
    return 0


def _names(value: str | None) -> list[str] | None:
    """"zh, en" → ["zh", "en"]; empty → None (the default)."""
    names = [x.strip() for x in (value or "").split(",") if x.strip()]
    return names or None


def _read_password(args: argparse.Namespace) -> str:
    """From stdin with --password-stdin (scripts), else asked twice without echo."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        command = f"kefu agents {args.agents_command} {args.name} --password-stdin"
        raise CommandError(f"no terminal to ask for the password: pipe it in, e.g. `echo \"$PASSWORD\" | {command}`")
    try:
        first = getpass.getpass("Password: ")
        again = getpass.getpass("Repeat password: ")
    except (EOFError, KeyboardInterrupt):
        raise CommandError("no password given; nothing changed") from None
    if again != first:
        raise CommandError("the passwords differ; nothing changed")
    return first


def cmd_agents(args: argparse.Namespace) -> int:
    """Console accounts, in the same store `kefu run` uses (SQLite file or REDIS_URL)."""
    from bot.server import ServerSettings
    from bot.stores import create_stores
    from handoff.agents import AccountError, AgentDirectory

    settings = ServerSettings.for_project(Path("."))

    async def run() -> int:
        stores = create_stores(settings.redis_url, settings.db_path or settings.project_dir / "kefu.db",
                               redis_prefix=settings.endpoints.redis_prefix())
        directory = AgentDirectory(stores.kv)
        try:
            if args.agents_command in ("add", "passwd"):
                existing = await directory.get(args.name)
                if args.agents_command == "passwd" and existing is None:
                    print(f"Error: no agent named {args.name!r}", file=sys.stderr)
                    return 1
                password = _read_password(args)
                if args.agents_command == "passwd":
                    await directory.set_password(args.name, password)
                    print(f"Password of {args.name} changed; the agent's open sessions have ended.")
                    return 0
                account = await directory.add(args.name, password, name=args.display_name,
                                              languages=_names(args.languages), groups=_names(args.groups),
                                              capacity=args.capacity, role="admin" if args.admin else args.role)
                print(f"Agent {account.username} added ({account.role}; languages {','.join(account.languages)}; "
                      f"groups {','.join(account.groups) or 'any'}; up to {account.capacity} chats at once).")
            elif args.agents_command == "list":
                for account in await directory.all():
                    presence = await directory.presence(account.username)
                    print(f"{account.username:20} {account.name:20} {account.role:6} {','.join(account.languages):6}"
                          f" {','.join(account.groups) or '-':20} {account.capacity:3}  {presence.status}")
            elif args.agents_command == "remove":
                if not await directory.remove(args.name):
                    print(f"Error: no agent named {args.name!r}", file=sys.stderr)
                    return 1
                print(f"Agent {args.name} removed.")
            return 0
        except AccountError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        finally:
            await stores.close()

    return asyncio.run(run())


def _embedded_store(action: str) -> Path:
    """The project's SQLite store file; backups and restores are for the embedded store only."""
    from bot.server import ServerSettings

    settings = ServerSettings.for_project(Path("."))
    if settings.redis_url:
        raise CommandError(f"the store is Redis (REDIS_URL or endpoints.yml): {action} it with Redis's own files, "
                           "see README, 'Backups and data deletion'")
    return _store_path(settings)


def cmd_backup(args: argparse.Namespace) -> int:
    from bot.stores.backup import BackupError, backup

    db_path = _embedded_store("back up")
    try:
        saved = backup(db_path, args.file)
    except BackupError as exc:
        raise CommandError(str(exc)) from None
    print(f"Backed up {db_path} to {args.file}: {saved}.")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from bot.stores.backup import BackupError, contents, restore
    from bot.stores.serving_lock import serving_pid

    db_path = _embedded_store("restore")
    try:
        if (pid := serving_pid(db_path)) is not None:
            raise CommandError(f"kefu{f' (pid {pid})' if pid else ''} is serving {db_path}: stop it before "
                               "restoring (nothing changed)")
        if db_path.exists() and not args.yes:
            raise CommandError(f"{db_path} exists ({contents(db_path)}); restoring replaces all of it with "
                               f"{args.file}: run again with --yes (nothing changed)")
        saved = restore(args.file, db_path)
    except BackupError as exc:
        raise CommandError(f"{exc} (nothing changed)") from None
    print(f"Restored {db_path} from {args.file}: {saved}.")
    return 0


def cmd_faq(args: argparse.Namespace) -> int:
    """The live knowledge of a running shop (its store: SQLite file or REDIS_URL) as data/faq.yml, and back."""
    from bot.knowledge import faq_yaml
    from bot.knowledge.versions import KnowledgeVersions, LiveEntry, PublishConflict, changed_ids, live_wins
    from bot.model import ModelError, archive_faq
    from bot.server import ServerSettings
    from bot.stores import create_stores

    settings = ServerSettings.for_project(Path("."), model_path=args.model)
    if args.faq_command == "import":
        entries = faq_yaml.read(args.file)  # checked before anything is opened or changed

    async def served(versions: KnowledgeVersions) -> tuple[int, list[LiveEntry]]:
        """The newest published version, and what the bot serves (the newer of it and the trained model)."""
        head, at = await versions.head_at()
        try:
            trained, trained_at = archive_faq(settings.resolve_model())
        except ModelError:  # no trained model: the store's version is all there is
            trained, trained_at = [], 0.0
        if head and live_wins(at, trained_at):
            version = await versions.load(head)
            if version is not None:
                return head, version.entries
        return head, [LiveEntry(e) for e in trained]

    async def run() -> int:
        stores = create_stores(settings.redis_url, settings.db_path or settings.project_dir / "kefu.db",
                               redis_prefix=settings.endpoints.redis_prefix())
        try:
            versions = KnowledgeVersions(stores.kv)
            head, current = await served(versions)
            if args.faq_command == "export":
                template = args.out if args.out and args.out.is_file() else Path("data/faq.yml")
                text = faq_yaml.dump(current, template.read_text(encoding="utf-8") if template.is_file() else None)
                if args.out:
                    args.out.write_text(text, encoding="utf-8")
                    print(f"{len(current)} FAQ entries (version {head}) written to {args.out}", file=sys.stderr)
                else:
                    sys.stdout.write(text)
                return 0
            if not changed_ids(current, entries):
                print(f"{args.file} is what the bot serves already (version {head}): nothing published.")
                return 0
            author = args.author or f"cli:{os.environ.get('USER') or 'unknown'}"
            try:
                version = await versions.publish(entries, author, args.summary or f"import of {args.file.name}",
                                                 based_on=head, previous=current)
            except PublishConflict as exc:
                raise CommandError(str(exc)) from None
            print(f"Published version {version.number} ({len(entries)} entries, {len(version.changed)} changed: "
                  f"{', '.join(version.changed[:10]) or 'none'}); running workers serve it within seconds.")
            return 0
        finally:
            await stores.close()

    return asyncio.run(run())


def cmd_forget(args: argparse.Namespace) -> int:
    """Erase one conversation everywhere kefu keeps it (a shopper asked for their data to be deleted)."""
    import getpass

    from bot.channels.erasure import upload_dir
    from bot.erasure import ConversationEraser
    from bot.server import ServerSettings
    from bot.stores import create_stores
    from bot.stores.serving_lock import serving_pid
    from handoff.service import HandoffService
    from handoff.settings import load_settings

    settings = ServerSettings.for_project(Path("."))
    cid = args.conversation_id
    if not settings.redis_url and (pid := serving_pid(_store_path(settings))) is not None:
        raise CommandError(f"kefu{f' (pid {pid})' if pid else ''} is serving {_store_path(settings)}: erase through it "
                           f"so it forgets the conversation in memory too — an admin's DELETE /api/agent/conversations/"
                           f"{cid} or the console's \"Delete conversation data\" (nothing changed)")

    async def run() -> int:
        stores = create_stores(settings.redis_url, _store_path(settings),
                               redis_prefix=settings.endpoints.redis_prefix())
        try:
            events = await stores.trackers.events(cid)
            if not events:
                raise CommandError(f"no conversation {cid!r} in the store (nothing changed)")
            if not args.yes:
                _confirm(f"Erase conversation {cid} ({len(events)} events) and everything kept about it, for good?")
            handoff = HandoffService(stores, load_settings(settings.project_dir / "handoff.yml"))
            eraser = ConversationEraser(stores, handoff, upload_dir(settings.endpoints.channels, settings.project_dir))
            removed = await eraser.erase(cid, f"cli:{getpass.getuser()}")
            if removed is None:  # erased meanwhile by someone else
                raise CommandError(f"no conversation {cid!r} in the store (nothing changed)")
            print(f"Erased conversation {cid}: " + ", ".join(f"{what.replace('_', ' ')} {n}"
                                                             for what, n in removed.items() if n) + ".")
            return 0
        finally:
            await stores.close()

    return asyncio.run(run())


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise CommandError("no terminal to confirm: pass --yes (nothing changed)")
    try:
        answer = input(f"{question} [y/N] ")
    except (EOFError, KeyboardInterrupt):
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError("not confirmed (nothing changed)")


def cmd_validate(args: argparse.Namespace) -> int:
    from bot.formats.policies import check_policies
    from bot.formats.project import yaml_files

    project = _load_project(args)
    files = [*yaml_files(args.domain), *(f for root in args.data for f in yaml_files(root))]
    warnings = check_policies(files)  # answers that state a declared policy differently: worth a look, not fatal
    for warning in warnings:
        print(f"Warning: {warning}", file=sys.stderr)
    print(f"Data is valid: {len(project.nlu.examples)} NLU examples, {len(project.domain.intents)} intents, "
          f"{len(project.rules)} rules, {len(project.stories)} stories, {len(project.faq)} FAQ entries"
          + (f" ({len(warnings)} warning{'s' * (len(warnings) != 1)} above)." if warnings else "."))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kefu", description="Bilingual customer-service bot with human handoff")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from config.yml, domain.yml and data/")
    _project_args(p)
    p.add_argument("--out", default=Path("models"), type=Path)
    p.add_argument("--force", action="store_true", help="retrain even if nothing changed")
    p.add_argument("--fixed-model-name", default=None)
    p.add_argument("--keep", type=int, default=5, help="model archives to keep")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="serve the bot over HTTP")
    p.add_argument("--host", default=os.environ.get("KEFU_HOST", "127.0.0.1"))
    p.add_argument("-p", "--port", type=int, default=int(os.environ.get("KEFU_PORT", "5005")))
    p.add_argument("-m", "--model", type=Path, default=None)
    p.add_argument("--auth-token", default=None, help="protects the HTTP API with ?token=T")
    p.add_argument("--enable-api", action="store_true", help="accepted for Rasa compatibility (always on)")
    p.add_argument("--reuse-port", action="store_true", help="let several workers share the port")
    p.add_argument("--workers", type=_positive_int, default=int(os.environ.get("KEFU_WORKERS", "1")),
                   help="serving processes on the port (or KEFU_WORKERS); more than one share Redis")
    p.add_argument("--public-url", default=None,
                   help="where browsers reach this server, e.g. https://shop.example (or KEFU_PUBLIC_URL)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("shell", help="chat with the bot in the terminal")
    p.add_argument("-m", "--model", type=Path, default=None)
    p.set_defaults(func=cmd_shell)

    p = sub.add_parser("test", help="run test stories and NLU tests, write reports")
    p.add_argument("-m", "--model", type=Path, default=None)
    p.add_argument("-s", "--stories", type=Path, default=Path("tests"))
    p.add_argument("-u", "--nlu", type=Path, default=None, help="NLU test data (default: none)")
    p.add_argument("--out", type=Path, default=Path("results"))
    p.add_argument("--fail-on-prediction-errors", action="store_true")
    p.add_argument("--e2e", action="store_true", help="a wrongly classified user message also fails its story")
    p.add_argument("--run-actions", action="store_true",
                   help="talk to the bot turn by turn, running custom actions (in-process or on the action server) "
                        "instead of replaying the stories' own events")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("evaluate", help="train NLU on one labelled set, score another")
    p.add_argument("--train", required=True, type=Path)
    p.add_argument("--test", required=True, type=Path)
    p.add_argument("--config", default=Path("config.yml"), type=Path)
    p.add_argument("--oos-label", default="oos")
    p.add_argument("--out", default=Path("results/evaluate"), type=Path)
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("actions", help="run the project's custom actions as a Rasa action server")
    p.add_argument("-p", "--port", type=int, default=5055)
    p.add_argument("--actions", default="actions")
    p.set_defaults(func=cmd_actions)

    p = sub.add_parser("agents", help="agent console accounts")
    agents_sub = p.add_subparsers(dest="agents_command", required=True)
    a = agents_sub.add_parser("add", help="add an agent account")
    a.add_argument("name", help="the login name")
    a.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    a.add_argument("--languages", default="zh,en", help="languages the agent serves (zh,en)")
    a.add_argument("--groups", default="", help="skill groups, e.g. returns,payment (none: any group)")
    a.add_argument("--capacity", type=int, default=None, help="chats at once (default from handoff.yml)")
    a.add_argument("--display-name", default=None, help="the name shoppers see (default: NAME)")
    a.add_argument("--admin", action="store_true", help="may read and act on every conversation")
    a.add_argument("--role", choices=("agent", "editor", "admin"), default="agent",
                   help="editor: also publishes FAQ changes in the console's Knowledge page (admins do too)")
    a.set_defaults(func=cmd_agents)
    a = agents_sub.add_parser("passwd", help="set an agent's password")
    a.add_argument("name")
    a.add_argument("--password-stdin", action="store_true")
    a.set_defaults(func=cmd_agents)
    a = agents_sub.add_parser("list", help="list the agent accounts")
    a.set_defaults(func=cmd_agents)
    a = agents_sub.add_parser("remove", help="remove an agent account")
    a.add_argument("name")
    a.set_defaults(func=cmd_agents)

    p = sub.add_parser("backup", help="copy the embedded SQLite store to FILE (safe while kefu runs)")
    p.add_argument("file", type=Path)
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="replace the embedded SQLite store with a backup (kefu must be stopped)")
    p.add_argument("file", type=Path)
    p.add_argument("--yes", action="store_true", help="replace an existing store")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("faq", help="the live FAQ of a running shop, as data/faq.yml")
    faq_sub = p.add_subparsers(dest="faq_command", required=True)
    f = faq_sub.add_parser("export", help="write the FAQ the bot serves (stdout, or --out FILE)")
    f.add_argument("--out", type=Path, default=None, help="file to write (its comments are kept where possible)")
    f.add_argument("-m", "--model", type=Path, default=None)
    f.set_defaults(func=cmd_faq)
    f = faq_sub.add_parser("import", help="publish a faq.yml as the new live version (replaces the live FAQ)")
    f.add_argument("file", type=Path)
    f.add_argument("--author", default=None, help="who the version is attributed to (default cli:$USER)")
    f.add_argument("--summary", default=None, help="what changed (default: import of FILE)")
    f.add_argument("-m", "--model", type=Path, default=None)
    f.set_defaults(func=cmd_faq)

    p = sub.add_parser("forget", help="erase a conversation everywhere (a shopper asked for their data to go)")
    p.add_argument("conversation_id")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("data", help="check the training data")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    v = data_sub.add_parser("validate")
    _project_args(v)
    v.set_defaults(func=cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("jieba", "sentence_transformers", "httpx", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return args.func(args) or 0
    except (DataError, CommandError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from bot.channels.settings import ConfigError
        from bot.model import ModelError
        from bot.stores.serving_lock import StoreInUse

        if isinstance(exc, ModelError | FileNotFoundError | ConfigError | StoreInUse):
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
