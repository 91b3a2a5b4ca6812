"""The organizers' dashboard: a Starlette app behind one secret.

Every route but the sign-in form and the static files needs a signed-in session; every POST also
needs the session's CSRF token. Pages are rendered on the server and work without JavaScript;
admin.js only refreshes the status section every few seconds.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import parse_qs

import anyio
import httpx
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.archive import open_archive
from core.errors import AfaError
from core.events import load_events
from core.settings import Settings
from core.urls import http_url

from . import health, moderate, room
from .auth import Session, Sessions, SignInLimit, secret_matches
from .processes import ACTIONS, Supervisor
from .supervise import supervisor_url

log = logging.getLogger("admin")
HERE = Path(__file__).resolve().parent
COOKIE = "afa_admin"
FLASH = "afa_admin_flash"
SELF = "dashboard"  # this process's program name under supervisord (admin/supervise.py)
MAX_FORM_BYTES = 64 * 1024
PUBLIC_PATHS = ("/signin", "/static")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
templates = Jinja2Templates(directory=str(HERE / "templates"))
SPARKS = "▁▂▃▄▅▆▇█"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def mib(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**20:.0f} MB"


def spark(values: list[int]) -> str:
    top = max(values, default=0)
    if not top:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[round(v * (len(SPARKS) - 1) / top)] for v in values)


templates.env.filters.update(duration=duration, mib=mib, spark=spark, http_url=http_url)
Endpoint = Callable[[Request], Awaitable[Response]]


class State(TypedDict):
    settings: Settings
    events: list[str]
    secret: str
    sessions: Sessions
    limit: SignInLimit
    supervisor: Supervisor
    http: httpx.AsyncClient


# -- the gate -----------------------------------------------------------------------------------


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the only kind our forms send)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in fields.items()}


def set_session(response: Response, request: Request, sessions: Sessions, session: Session):
    response.set_cookie(
        COOKIE, sessions.dump(session), max_age=max(session.expires - int(sessions.clock()), 0),
        httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/",
    )  # fmt: skip


def signed_in(endpoint: Endpoint) -> Endpoint:
    """Refuse without a signed-in session (pages redirect to the sign-in form, the API says
    401); refuse a POST whose CSRF token does not match the session's (403)."""

    async def guarded(request: Request) -> Response:
        session = request.state.sessions.load(request.cookies.get(COOKIE))
        if session is None or not session.signed_in:
            if request.method == "POST":
                return PlainTextResponse("sign in first", status_code=403)
            if request.url.path.startswith("/api/"):
                return JSONResponse({"error": "sign in first"}, status_code=401)
            return RedirectResponse("/signin", status_code=303)
        request.scope["afa_session"] = session
        if request.method == "POST":
            form = await read_form(request)
            if not session.csrf_matches(form.get("csrf")):
                return PlainTextResponse("missing or wrong CSRF token", status_code=403)
            request.scope["afa_form"] = form
        return await endpoint(request)

    return guarded


def form_of(request: Request) -> dict[str, str]:
    return request.scope.get("afa_form", {})


def session_of(request: Request) -> Session:
    return request.scope["afa_session"]


# -- sign-in ------------------------------------------------------------------------------------


async def signin_page(request: Request) -> Response:
    sessions: Sessions = request.state.sessions
    session = sessions.load(request.cookies.get(COOKIE))
    if session is not None and session.signed_in:
        return RedirectResponse("/", status_code=303)
    return signin_form(request, session or sessions.new(signed_in=False), "", 200)


def signin_form(request: Request, session: Session, error: str, status: int) -> Response:
    context = {"csrf": session.csrf, "error": error}
    response = templates.TemplateResponse(request, "signin.html", context, status_code=status)
    set_session(response, request, request.state.sessions, session)
    return response


async def signin(request: Request) -> Response:
    sessions: Sessions = request.state.sessions
    limit: SignInLimit = request.state.limit
    address = client_address(request)
    form = await read_form(request)
    session = sessions.load(request.cookies.get(COOKIE))
    if session is None or not session.csrf_matches(form.get("csrf")):
        return PlainTextResponse("missing or wrong CSRF token: reload the page", status_code=403)
    wait = limit.delay(address)
    if wait > 0:
        log.warning("sign-in from %s held back %.1f s after repeated failures", address, wait)
        await anyio.sleep(wait)
    if not secret_matches(request.state.secret, form.get("secret", "")):
        limit.failed(address)
        log.warning("failed sign-in from %s", address)
        return signin_form(request, session, "That is not the secret.", 401)
    limit.succeeded(address)
    who = " ".join(form.get("name", "").split())[:40] or "dashboard"
    log.info("organizer %r signed in from %s", who, address)
    response = RedirectResponse("/", status_code=303)
    fresh = sessions.new(signed_in=True, who=who)  # and a fresh CSRF token
    set_session(response, request, sessions, fresh)
    return response


@signed_in
async def signout(request: Request) -> Response:
    await anyio.to_thread.run_sync(request.state.sessions.revoke, session_of(request))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# -- status -------------------------------------------------------------------------------------


def archive_status(settings: Settings) -> dict[str, Any]:
    try:
        db = open_archive(settings.archive_path, create=False)
    except AfaError as exc:
        return {"sources": [], "ppm": {}, "archive_problem": str(exc)}
    try:
        return {"sources": health.sources(db), "ppm": health.posts_per_minute(db),
                "archive_problem": None}  # fmt: skip
    finally:
        db.close()


def process_status(supervisor: Supervisor) -> dict[str, Any]:
    try:
        return {"processes": supervisor.processes(), "supervisor_problem": None}
    except AfaError as exc:
        return {"processes": [], "supervisor_problem": str(exc)}


async def gather(request: Request) -> dict[str, Any]:
    settings: Settings = request.state.settings
    status = await anyio.to_thread.run_sync(archive_status, settings)
    status |= await anyio.to_thread.run_sync(process_status, request.state.supervisor)
    status["viewers"] = await health.viewers(request.state.http, health.stats_urls(settings))
    status["ppm_minutes"] = health.PPM_MINUTES
    return status


def take_flash(request: Request, response: Response) -> None:
    if FLASH in request.cookies:
        response.delete_cookie(FLASH, path="/", httponly=True, samesite="strict")


def page(request: Request, template: str, context: dict[str, Any]) -> Response:
    """A signed-in page: the session's CSRF token and name, and the last action's result."""
    session = session_of(request)
    flash = request.state.sessions.unsign(request.cookies.get(FLASH))
    context = context | {"csrf": session.csrf, "who": session.who, "flash": flash}
    response = templates.TemplateResponse(request, template, context)
    take_flash(request, response)
    return response


def done(request: Request, to: str, message: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    response.set_cookie(FLASH, request.state.sessions.sign(message[:500]), max_age=60,
                        httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")  # fmt: skip
    return response


@signed_in
async def dashboard(request: Request) -> Response:
    settings: Settings = request.state.settings
    events: list[str] = request.state.events
    context = await gather(request)
    context["events"] = events
    context["queues"] = await anyio.to_thread.run_sync(moderate.queues, settings, events)
    return page(request, "dashboard.html", context)


@signed_in
async def status_fragment(request: Request) -> Response:
    context = await gather(request) | {"csrf": session_of(request).csrf}
    return templates.TemplateResponse(request, "_status.html", context)


@signed_in
async def status_json(request: Request) -> Response:
    status = await gather(request)
    viewers = status.pop("viewers")
    status["processes"] = [vars(p) for p in status["processes"]]
    status["sources"] = [vars(s) for s in status["sources"]]
    status["viewers"] = {"per_event": viewers.per_event, "sidecars": viewers.sidecars,
                         "problems": viewers.problems}  # fmt: skip
    return JSONResponse(status)


@signed_in
async def control(request: Request) -> Response:
    name, action = request.path_params["name"], request.path_params["action"]
    if action not in ACTIONS:
        return PlainTextResponse(f"unknown action {action!r}", status_code=404)
    if name == SELF:
        # Stopping itself would end this request before supervisord could start it again.
        message = f"the dashboard cannot {action} itself: use supervisorctl {action} {SELF}"
        return PlainTextResponse(message, status_code=409)
    supervisor: Supervisor = request.state.supervisor
    try:
        await anyio.to_thread.run_sync(supervisor.control, name, action)
    except AfaError as exc:
        return PlainTextResponse(str(exc), status_code=409)
    log.info("organizer %r: %s %s", session_of(request).who, action, name)
    return done(request, "/#processes", f"{action} {name}: done")


def known_event(request: Request) -> str | None:
    event = request.path_params["event"]
    return event if event in request.state.events else None


@signed_in
async def moderation_page(request: Request) -> Response:
    event = known_event(request)
    if event is None:
        return PlainTextResponse("no such event", status_code=404)
    settings: Settings = request.state.settings
    context = await anyio.to_thread.run_sync(moderate.event_view, settings, event)
    return page(request, "moderate.html", context | {"events": request.state.events})


@signed_in
async def moderation_action(request: Request) -> Response:
    event = known_event(request)
    if event is None:
        return PlainTextResponse("no such event", status_code=404)
    action, form = request.path_params["action"], form_of(request)
    if action not in moderate.DECISIONS:
        return PlainTextResponse(f"unknown action {action!r}", status_code=404)
    back = "/#queue" if form.get("back") == "home" else f"/moderate/{event}"
    who = session_of(request).who
    settings: Settings = request.state.settings
    try:
        summary = await anyio.to_thread.run_sync(
            moderate.decide, settings, event, action, form, who
        )
    except moderate.BadForm as exc:
        return PlainTextResponse(str(exc), status_code=400)
    except AfaError as exc:
        return done(request, back, f"Not done: {exc}")
    log.info("organizer %r: %s", who, summary)
    return done(request, back, summary)


# -- notes and pins (admin/room.py) -------------------------------------------------------------


async def room_page(request: Request, preview: Any = None, form: dict | None = None,
                    error: str = "") -> Response:  # fmt: skip
    settings: Settings = request.state.settings
    event = request.path_params["event"]
    context = await anyio.to_thread.run_sync(room.view, settings, event)
    context |= {"events": request.state.events, "preview": preview, "form": form or {},
                "error": error}  # fmt: skip
    return page(request, "room.html", context)


@signed_in
async def room_view(request: Request) -> Response:
    if known_event(request) is None:
        return PlainTextResponse("no such event", status_code=404)
    return await room_page(request)


@signed_in
async def room_note(request: Request) -> Response:
    """Preview a note (the page again, with the rendered note) or post it."""
    event = known_event(request)
    if event is None:
        return PlainTextResponse("no such event", status_code=404)
    form, who = form_of(request), session_of(request).who
    try:
        if form.get("action") != "post":
            shown = await anyio.to_thread.run_sync(room.preview, event, form)
            return await room_page(request, shown, form)
        summary = await anyio.to_thread.run_sync(room.post, event, form, who)
    except AfaError as exc:
        return await room_page(request, None, form, f"Not posted: {exc}")
    log.info("organizer %r: %s", who, summary)
    return done(request, f"/room/{event}", summary)


@signed_in
async def room_pin(request: Request) -> Response:
    event, action = known_event(request), request.path_params["action"]
    if event is None or action not in ("pin", "unpin"):
        return PlainTextResponse("no such event or action", status_code=404)
    form, who = form_of(request), session_of(request).who
    back = f"/moderate/{event}" if form.get("back") == "moderate" else f"/room/{event}"
    try:
        summary = await anyio.to_thread.run_sync(
            room.pin, request.state.settings, event, action, form, who
        )
    except AfaError as exc:
        return done(request, back, f"Not done: {exc}")
    log.info("organizer %r: %s", who, summary)
    return done(request, back, summary)


# -- the app ------------------------------------------------------------------------------------


ROUTES = [
    Route("/signin", signin_page, methods=["GET"]),
    Route("/signin", signin, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
    Route("/", dashboard, methods=["GET"]),
    Route("/status", status_fragment, methods=["GET"]),
    Route("/api/status", status_json, methods=["GET"]),
    Route("/processes/{name}/{action}", control, methods=["POST"]),
    Route("/moderate/{event}", moderation_page, methods=["GET"]),
    Route("/moderate/{event}/{action}", moderation_action, methods=["POST"]),
    Route("/room/{event}", room_view, methods=["GET"]),
    Route("/room/{event}/note", room_note, methods=["POST"]),
    Route("/room/{event}/{action}", room_pin, methods=["POST"]),
]


def create_app(settings: Settings, secret: str) -> Starlette:
    """The dashboard; `secret` has been checked by the caller (auth.secret_problem)."""

    events = [event.slug for event in load_events(settings.content_dir)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[State]:
        async with httpx.AsyncClient() as http:
            yield {
                "settings": settings,
                "events": events,
                "secret": secret,
                "sessions": Sessions(
                    secret,
                    settings.admin_session_hours,
                    revoked=settings.var_dir / "run" / "signed-out.json",
                ),
                "limit": SignInLimit(
                    settings.admin_signin_limit,
                    settings.admin_signin_max_delay,
                    settings.admin_signin_forget_seconds,
                ),
                "supervisor": Supervisor(supervisor_url(settings)),
                "http": http,
            }

    routes = [*ROUTES, Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)])


class SecurityHeaders:
    """No framing, no inline script, no caching of organizer pages, no referrer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
