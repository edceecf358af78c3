"""Real mail servers for the e-mail tests: Debian's dovecot (IMAP) run as an ordinary process on a free port with a
throw-away mailbox and configuration in the test's directory, and an aiosmtpd SMTP server on 127.0.0.1 that
keeps every mail sent to it (it can be told to refuse, as a server that is down would)."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aioimaplib import aioimaplib
from aiosmtpd.controller import Controller

USER = "service@shop.test"
PASSWORD = "imap-test-password"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3) as sock:
            return sock.recv(64).startswith(b"* OK")
    except OSError:
        return False


class Dovecot:
    """dovecot -F with its own config: plaintext IMAP on 127.0.0.1, one user, maildir under `workdir`."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary, self.workdir = binary, workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._configure()

    def _configure(self) -> None:
        root = os.getuid() == 0
        for sub in ("run", "state", "home"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        (self.workdir / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        if root:  # dovecot will not run its login or mail processes as root: its package's own users
            mail_user = pwd.getpwnam("dovecot")
            uid, gid = mail_user.pw_uid, mail_user.pw_gid
            users = "service auth {\n  user = dovecot\n}\nservice auth-worker {\n  user = dovecot\n}\n"
            os.chmod(self.workdir, 0o755)
            for parent in self.workdir.parents:  # the auth process must reach the passwd file
                if parent == Path("/"):
                    break
                os.chmod(parent, os.stat(parent).st_mode | 0o111)
            shutil.chown(self.workdir / "home", uid, gid)
        else:
            uid, gid = os.getuid(), os.getgid()
            me = pwd.getpwuid(uid).pw_name
            users = (f"default_internal_user = {me}\ndefault_login_user = {me}\n"
                     f"default_internal_group = {os.getgid()}\n")
        (self.workdir / "passwd").chmod(0o644)
        (self.workdir / "dovecot.conf").write_text(f"""
base_dir = {self.workdir}/run
state_dir = {self.workdir}/state
log_path = {self.workdir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
{users}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.workdir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.workdir}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
""")

    def start(self) -> None:
        log = (self.workdir / "stdout.log").open("ab")
        self.proc = subprocess.Popen([self.binary, "-F", "-c", str(self.workdir / "dovecot.conf")],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 15
        while self.proc.poll() is None and time.monotonic() < deadline and not _answers(self.port):
            time.sleep(0.05)
        if not _answers(self.port):
            logs = "".join(p.read_text(errors="replace")[-2000:] for p in
                           (self.workdir / "dovecot.log", self.workdir / "stdout.log") if p.exists())
            raise RuntimeError(f"dovecot did not start on 127.0.0.1:{self.port}:\n{logs}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def env(self, **extra: str) -> dict[str, str]:
        return {"EMAIL_ADDRESS": USER, "EMAIL_IMAP_HOST": "127.0.0.1", "EMAIL_IMAP_PORT": str(self.port),
                "EMAIL_IMAP_TLS": "false", "EMAIL_IMAP_PASSWORD": PASSWORD, **extra}

    async def client(self) -> aioimaplib.IMAP4:
        for _attempt in range(5):  # a busy machine: dovecot's auth process may answer a first login late
            client = aioimaplib.IMAP4("127.0.0.1", self.port, timeout=120)  # a 70 MB APPEND takes a while
            await client.wait_hello_from_server()
            login = await client.login(USER, PASSWORD)
            if login.result == "OK":
                return client
            await asyncio.sleep(0.5)
        raise AssertionError(f"dovecot refused the test login: {login.lines[-1:]}")

    async def append(self, *mails: bytes | EmailMessage, folder: str = "INBOX") -> None:
        """Deliver mail into the mailbox as a mail server would (IMAP APPEND, unseen)."""
        client = await self.client()
        try:
            for mail in mails:
                raw = mail.as_bytes(policy=policy.SMTP) if isinstance(mail, EmailMessage) else mail
                response = await client.append(raw, mailbox=folder)
                assert response.result == "OK", response.lines[-1:]
        finally:
            await client.logout()

    async def unseen(self, folder: str = "INBOX") -> int:
        client = await self.client()
        try:
            await client.select(folder)
            found = await client.search("UNSEEN", charset=None)
            return len(bytes(found.lines[0]).split())
        finally:
            await client.logout()


@dataclass
class Caught:
    sender: str
    recipients: list[str]
    raw: bytes
    message: EmailMessage = field(init=False)

    def __post_init__(self) -> None:
        self.message = BytesParser(policy=policy.default).parsebytes(self.raw)  # type: ignore[assignment]

    def __getitem__(self, header: str) -> str:
        return str(self.message.get(header, ""))

    def text(self) -> str:
        text = self.message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        return text.replace("\r\n", "\n")

    def html(self) -> str | None:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else None  # type: ignore[union-attr]


class SmtpCatcher:
    """aiosmtpd on 127.0.0.1 keeping what it is sent; `refuse = True` makes it answer 451 like a busy server."""

    def __init__(self) -> None:
        self.caught: list[Caught] = []
        self.refuse = False
        self.refuse_next = 0  # refuse this many more mails, then take them
        self.attempts = 0
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.refuse or self.refuse_next > 0:
            self.refuse_next -= 1
            return "451 4.3.0 try again later"
        self.caught.append(Caught(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 OK"

    def env(self, **extra: str) -> dict[str, str]:
        return {"EMAIL_SMTP_HOST": "127.0.0.1", "EMAIL_SMTP_PORT": str(self.port), "EMAIL_SMTP_TLS": "none",
                **extra}

    def to(self, address: str) -> list[Caught]:
        return [c for c in self.caught if address in c.recipients]

    async def wait_for(self, check, timeout_s: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while not (result := check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"not caught in time; caught: {[c['Subject'] for c in self.caught]}")
            await asyncio.sleep(0.05)
        return result


class PrintingCatcher(SmtpCatcher):
    """The demo's catcher: shows each mail kefu sends."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        mail = self.caught[-1]
        print(f"\n--- kefu sent to {', '.join(mail.recipients)}: {mail['Subject']}\n{mail.text()}", flush=True)
        return answer


def demo() -> None:
    """A local test mailbox for trying the channel: dovecot and a catcher that prints what kefu sends."""
    import tempfile

    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    work = Path(tempfile.mkdtemp(prefix="kefu-mailbox-"))
    dovecot = Dovecot(binary, work)
    dovecot.start()
    catcher = PrintingCatcher()
    catcher.controller.start()
    listen = free_port()
    env = {**dovecot.env(), **catcher.env(), "EMAIL_LISTEN_PORT": str(listen)}
    print("Test mailbox running. In another shell:\n")
    print("  " + " ".join(f"{k}={v}" for k, v in env.items()) + " .venv/bin/kefu run\n")
    print("then write to the shop (kefu's SMTP listener delivers it like a forwarding rule):\n")
    print(f"  .venv/bin/python -c \"import smtplib; smtplib.SMTP('127.0.0.1', {listen}).sendmail('you@example.com', "
          f"['{USER}'], 'From: you@example.com\\r\\nSubject: hi\\r\\n\\r\\nHow long does shipping take?')\"\n")
    print("Ctrl-C stops the mailbox.")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))  # stop dovecot too
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        catcher.controller.stop()
        dovecot.stop()


if __name__ == "__main__":
    demo()
