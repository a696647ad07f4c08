"""Who is looking: the session behind a request, sign-in enforcement and CSRF checks."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from app.api.state import app_state
from app.dashboard.session import COOKIE_NAME, Session, SessionCodec, load_or_create_secret


class SignInRequired(Exception):
    """No signed-in session: pages redirect to the sign-in form, data endpoints answer 401."""


class CsrfRejected(Exception):
    """A POST without this session's CSRF token: nothing was changed."""


@dataclass
class Visitor:
    session: Session
    anonymous: bool  # the app serves a workspace without sign-in (`conveyor dev`)
    new_cookie: bool = False  # the session was created by this request and must be sent

    @property
    def workspace(self) -> str:
        if self.session.workspace is None:
            raise SignInRequired
        return self.session.workspace

    @property
    def signed_in(self) -> bool:
        return self.session.workspace is not None

    def check_csrf(self, sent: str | None) -> None:
        if not sent or not secrets.compare_digest(sent, self.session.csrf):
            raise CsrfRejected


def session_codec(request: Request) -> SessionCodec:
    """One codec per app, built on first use (the secret may be read from the data dir)."""
    codec: SessionCodec | None = getattr(request.app.state, "dashboard_sessions", None)
    if codec is None:
        settings = app_state(request).runtime.settings
        secret = settings.dashboard.session_secret or load_or_create_secret(settings.data_dir)
        codec = SessionCodec(secret, settings.dashboard.session_max_age_seconds)
        request.app.state.dashboard_sessions = codec
    return codec


async def visitor_of(request: Request) -> Visitor:
    """The request's session; a visitor without one gets a fresh session (not signed in).

    A session signed in with a key that was revoked or expired since is over at once.
    """
    state = app_state(request)
    anonymous_workspace = state.anonymous_workspace
    session = session_codec(request).loads(request.cookies.get(COOKIE_NAME))
    anonymous = anonymous_workspace is not None
    key_id = session.key_id if session is not None else None
    if key_id is not None and not await state.runtime.keys.is_usable(key_id):
        session = None  # signed in with a key that was revoked or expired since
    if session is not None:
        if session.workspace is None and anonymous_workspace is not None:
            return Visitor(Session(anonymous_workspace, session.csrf), anonymous, new_cookie=True)
        return Visitor(session, anonymous)
    return Visitor(Session.fresh(anonymous_workspace), anonymous, new_cookie=True)


def set_session_cookie(request: Request, response: Response, session: Session) -> None:
    codec = session_codec(request)
    response.set_cookie(
        COOKIE_NAME,
        codec.dumps(session),
        max_age=codec.max_age_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")
