"""Logging in and out, the console's pages and assets, and the agent's own status."""

from __future__ import annotations

import base64
import hashlib
import html
from pathlib import Path

from aiohttp import web

from bot.http import HTTPError, read_json
from handoff.agents import AgentAccount
from handoff.console.web import (
    COOKIE,
    CSP,
    agent_api,
    current_agent,
    handoff,
    json_response,
    refusals_as_http,
    same_origin,
    secure_headers,
    session_token,
)

routes = web.RouteTableDef()

STATIC = Path(__file__).resolve().parent.parent / "static" / "console"
ASSETS = {"app.js": "application/javascript", "knowledge.js": "application/javascript", "console.css": "text/css"}

_LOGIN_TEXT = {
    "en": {"title": "kefu — agent console", "heading": "Agent console", "username": "Username",
           "password": "Password", "submit": "Log in", "error": "Wrong username or password.",
           "other": "中文", "other_lang": "zh", "hint": "Accounts are made with: kefu agents add NAME"},
    "zh": {"title": "kefu 客服工作台", "heading": "客服工作台", "username": "用户名", "password": "密码",
           "submit": "登录", "error": "用户名或密码错误。", "other": "English", "other_lang": "en",
           "hint": "用 kefu agents add 用户名 创建账号"},
}


async def _authenticate(request: web.Request, username: str, password: str) -> AgentAccount | None:
    with refusals_as_http():  # too many wrong passwords: 429
        return await handoff(request).agents.authenticate(username, password, client=request.remote or "unknown")


def _set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    response.set_cookie(COOKIE, token, max_age=int(handoff(request).settings.session_ttl_s), path="/",
                        httponly=True, samesite="Strict", secure=request.secure)


def _page_language(request: web.Request) -> str:
    chosen = request.query.get("lang") or request.cookies.get("kefu_lang")
    if chosen in ("zh", "en"):
        return chosen
    return "zh" if request.headers.get("Accept-Language", "").lower().startswith("zh") else "en"


def _login_page(request: web.Request, error: bool = False, status: int = 200) -> web.Response:
    language = _page_language(request)
    words = {k: html.escape(v) for k, v in _LOGIN_TEXT[language].items()}
    page = (STATIC / "login.html").read_text(encoding="utf-8")
    style = (STATIC / "login.css").read_text(encoding="utf-8")
    page = page.replace("{{style}}", style).replace("{{lang}}", language)
    page = page.replace("{{error}}", f'<p class="error" role="alert">{words["error"]}</p>' if error else "")
    for key, value in words.items():
        page = page.replace("{{" + key + "}}", value)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    response = web.Response(text=page, content_type="text/html", status=status)
    return secure_headers(response, CSP.replace("style-src 'self'", f"style-src 'sha256-{digest}'"))


@routes.get("/console/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    return _login_page(request)


@routes.post("/console/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    """The login page's form (works without JavaScript): cookie and back to the console, or the page again."""
    if not same_origin(request):
        raise HTTPError(403, "request from another site refused")
    if request.content_type != "application/x-www-form-urlencoded":  # what the page's form sends; never files
        raise HTTPError(415, "send the login form as application/x-www-form-urlencoded")
    try:
        form = await request.post()
    except (ValueError, UnicodeDecodeError):
        raise HTTPError(400, "the login form could not be read") from None
    account = await _authenticate(request, str(form.get("username", "")), str(form.get("password", "")))
    if account is None:
        return _login_page(request, error=True, status=401)
    response = web.HTTPSeeOther("/console")
    _set_cookie(request, response, await handoff(request).agents.open_session(account.username))
    raise response


@routes.get("/console")
async def console_page(request: web.Request) -> web.StreamResponse:
    token, _ = session_token(request)
    if not token or await handoff(request).agents.session_user(token) is None:
        raise web.HTTPFound("/console/login")
    return secure_headers(web.FileResponse(STATIC / "index.html"))


@routes.get("/console/{asset}")
async def console_asset(request: web.Request) -> web.StreamResponse:
    name = request.match_info["asset"]
    await current_agent(request)
    if name not in ASSETS:
        raise HTTPError(404, "not found")
    response = web.Response(body=(STATIC / name).read_bytes(), content_type=ASSETS[name], charset="utf-8")
    return secure_headers(response)


@routes.post("/api/agent/login")
async def api_login(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("username"), str) \
            or not isinstance(body.get("password"), str):
        raise HTTPError(400, 'body must be {"username": "…", "password": "…"}')
    account = await _authenticate(request, body["username"], body["password"])
    if account is None:
        raise HTTPError(401, "wrong username or password")
    token = await handoff(request).agents.open_session(account.username)
    response = json_response({"token": token, "agent": account.public()})
    _set_cookie(request, response, token)
    return response


@routes.post("/api/agent/logout")
@agent_api
async def api_logout(request: web.Request, account: AgentAccount) -> web.Response:
    service = handoff(request)
    token, _ = session_token(request)
    if token:
        await service.agents.close_session(token)
    await service.roster.set_status(account, "offline")
    response = json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/api/agent/me")
@agent_api
async def api_me(request: web.Request, account: AgentAccount) -> web.Response:
    return json_response(await handoff(request).views.me(account))


@routes.put("/api/agent/status")
@agent_api
async def api_status(request: web.Request, account: AgentAccount) -> web.Response:
    body = await read_json(request)
    status = body.get("status") if isinstance(body, dict) else None
    await handoff(request).roster.set_status(account, status if isinstance(status, str) else "")
    return json_response({"status": status})
