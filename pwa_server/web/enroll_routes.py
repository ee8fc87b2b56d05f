"""The smartphone user's journey: one-time password, secret question, download password,
download, self-service reissue, and the install guides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from pwa_server.enrollment.credentials import grouped
from pwa_server.enrollment.download import Platform
from pwa_server.enrollment.errors import (
    EnrollmentNotFoundError,
    InvalidInputError,
    WrongSecretError,
)
from pwa_server.enrollment.service import DownloadCredentials
from pwa_server.i18n import N_
from pwa_server.runtime import Services
from pwa_server.vocabulary import OTP_STEPS, EnrollmentStatus
from pwa_server.web.context import app_context
from pwa_server.web.csrf import check_csrf
from pwa_server.web.pages import root_ca_context
from pwa_server.web.questions import question_choices
from pwa_server.web.rendering import Renderer, gettext, ngettext
from pwa_server.web.safari import open_in_safari
from pwa_server.web.user_agent import UserAgent, parse_user_agent

SESSION_KEY = "enrollment"
# The certificate user ID this browser was shown (with its download password, or on a used
# link's page): the download and reissue forms start with it, so nobody retypes it. Only the
# server writes it (the session is signed); it is no secret, the guide mail carries it too.
SESSION_USER_ID = "certificate_user_id"


def _services(request: Request) -> Services:
    services = app_context(request).services
    return services


def _renderer(request: Request) -> Renderer:
    renderer = app_context(request).renderer
    return renderer


def _wrong_secret(request: Request, error: WrongSecretError) -> str:
    return ngettext(
        request,
        "That is not right. %(count)s try left.",
        "That is not right. %(count)s tries left.",
        error.remaining,
        count=error.remaining,
    )


def _invalid(request: Request, error: InvalidInputError) -> str:
    messages = {
        "question": N_("Choose one of the questions."),
        "answer": N_("Enter an answer of at most 200 characters."),
        "answer_confirm": N_("The two answers differ."),
    }
    fallback = N_("Check your input.")
    return gettext(request, messages.get(error.field, fallback))


async def enrollment(request: Request) -> Response:
    """GET /enroll/{id}: the one-time password form, or where this enrollment stands."""
    services = _services(request)
    enrollment_id = request.path_params["enrollment_id"]
    row = await run_in_threadpool(services.enrollments.current, enrollment_id, now=services.now())
    if (
        row.status == EnrollmentStatus.OTP_VERIFIED
        and request.session.get(SESSION_KEY) == enrollment_id
    ):
        return RedirectResponse(f"/enroll/{enrollment_id}/secret", status_code=303)
    # In otp_verified without this browser's session (expired, or another browser), the
    # one-time password is asked again: until the secret is registered it still proves who
    # the person is, and its guesses count toward the same lockout.
    if row.status not in OTP_STEPS:
        # The page names the certificate user ID, so the reissue form it leads to starts with it.
        request.session[SESSION_USER_ID] = row.certificate_user_id
        return _renderer(request).page(
            request,
            "message.html",
            status_code=409,
            title=gettext(request, "This enrollment link was already used"),
            paragraphs=[
                gettext(
                    request,
                    "If you did not note your download password, get a new one with the answer"
                    " to your secret question.",
                )
            ],
            link={"href": "/reissue", "text": gettext(request, "Get a new download password")},
            # From the database, never from the request: the person quotes it when asking.
            reference=row.certificate_user_id,
            secondary={
                "href": "/download",
                "text": gettext(request, "I noted my download password: go to the download"),
            },
        )
    # The whole journey best runs in Safari: sent there before the one-time password is used.
    return open_in_safari(request) or _renderer(request).page(
        request, "enroll_otp.html", enrollment_id=enrollment_id
    )


async def submit_one_time_password(request: Request) -> Response:
    """POST /enroll/{id}: check the one-time password; wrong ones count toward the lockout."""
    services = _services(request)
    enrollment_id = request.path_params["enrollment_id"]
    form = await request.form()
    check_csrf(request, form)
    typed = str(form.get("one_time_password", ""))[:64]
    try:
        await run_in_threadpool(
            services.enrollments.verify_one_time_password, enrollment_id, typed, now=services.now()
        )
    except WrongSecretError as error:
        return _renderer(request).page(
            request,
            "enroll_otp.html",
            status_code=400,
            enrollment_id=enrollment_id,
            error=_wrong_secret(request, error),
        )
    # The next step belongs to this browser only: the session proves the password was typed here.
    request.session[SESSION_KEY] = enrollment_id
    return RedirectResponse(f"/enroll/{enrollment_id}/secret", status_code=303)


def _bound(request: Request, enrollment_id: str) -> bool:
    return request.session.get(SESSION_KEY) == enrollment_id


async def secret_question(request: Request) -> Response:
    """GET /enroll/{id}/secret: the secret question form (after the one-time password)."""
    services = _services(request)
    enrollment_id = request.path_params["enrollment_id"]
    row = await run_in_threadpool(services.enrollments.current, enrollment_id, now=services.now())
    if row.status != EnrollmentStatus.OTP_VERIFIED or not _bound(request, enrollment_id):
        return RedirectResponse(f"/enroll/{enrollment_id}", status_code=303)
    return _renderer(request).page(
        request,
        "enroll_secret.html",
        enrollment_id=enrollment_id,
        questions=question_choices(request),
        question=None,
    )


async def submit_secret_question(request: Request) -> Response:
    """POST /enroll/{id}/secret: register the answer; show the download password once."""
    services = _services(request)
    enrollment_id = request.path_params["enrollment_id"]
    form = await request.form()
    check_csrf(request, form)
    if not _bound(request, enrollment_id):
        return RedirectResponse(f"/enroll/{enrollment_id}", status_code=303)
    question = str(form.get("question", ""))
    try:
        issued = await run_in_threadpool(
            services.enrollments.register_secret,
            enrollment_id,
            question=question,
            answer=str(form.get("answer", "")),
            answer_confirm=str(form.get("answer_confirm", "")),
            now=services.now(),
        )
    except InvalidInputError as error:
        return _renderer(request).page(
            request,
            "enroll_secret.html",
            status_code=400,
            enrollment_id=enrollment_id,
            questions=question_choices(request),
            question=question,
            error=_invalid(request, error),
        )
    request.session.pop(SESSION_KEY, None)
    return _download_password_page(request, issued)


def _download_password_page(request: Request, issued: DownloadCredentials) -> Response:
    request.session[SESSION_USER_ID] = issued.certificate_user_id
    return _renderer(request).page(
        request,
        "download_password.html",
        certificate_user_id=issued.certificate_user_id,
        password_groups=grouped(issued.download_password),
    )


def _user_agent(request: Request) -> UserAgent:
    return parse_user_agent(request.headers.get("user-agent", ""))


def _platforms(request: Request) -> list[tuple[str, str]]:
    return [
        (Platform.IOS.value, gettext(request, "iPhone or iPad")),
        (Platform.ANDROID.value, gettext(request, "Android")),
        (Platform.OTHER.value, gettext(request, "Other device (.p12 certificate file)")),
    ]


def _download_form(
    request: Request, *, status_code: int = 200, error: str | None = None, **values: str
) -> Response:
    return _renderer(request).page(
        request,
        "download.html",
        status_code=status_code,
        platforms=_platforms(request),
        platform=values.get("platform", _user_agent(request).platform.value),
        maybe_ipad=_user_agent(request).maybe_ipad,
        certificate_user_id=values.get(
            "certificate_user_id", str(request.session.get(SESSION_USER_ID, ""))
        ),
        error=error,
    )


async def download_form(request: Request) -> Response:
    """GET /download: the platform is preselected from the user agent, and can be changed;
    iOS browsers other than Safari are sent to Safari first."""
    return open_in_safari(request) or _download_form(request)


async def submit_download(request: Request) -> Response:
    """POST /download: the .mobileconfig or .p12, recorded before the first byte is sent."""
    services = _services(request)
    form = await request.form()
    check_csrf(request, form)
    certificate_user_id = str(form.get("certificate_user_id", ""))[:64]
    platform_value = str(form.get("platform", ""))
    if platform_value not in {platform.value for platform in Platform}:
        platform_value = _user_agent(request).platform.value
    try:
        delivery = await run_in_threadpool(
            services.downloads.download,
            certificate_user_id=certificate_user_id,
            download_password=str(form.get("download_password", ""))[:64],
            platform=Platform(platform_value),
            now=services.now(),
            client=request.client.host if request.client else None,
        )
    except EnrollmentNotFoundError:
        message = gettext(request, "The certificate user ID or the download password is wrong.")
    else:
        return Response(
            delivery.content,
            media_type=delivery.media_type,
            headers={
                "content-disposition": f'attachment; filename="{delivery.filename}"',
                "cache-control": "no-store",
            },
        )
    return _download_form(
        request,
        status_code=400,
        error=message,
        platform=platform_value,
        certificate_user_id=certificate_user_id,
    )


async def reissue_form(request: Request) -> Response:
    """GET /reissue: forgot the download password, or a new phone (seed 003)."""
    return _renderer(request).page(
        request, "reissue.html", certificate_user_id=str(request.session.get(SESSION_USER_ID, ""))
    )


async def submit_reissue(request: Request) -> Response:
    """POST /reissue: the secret answer gives a new download password and window."""
    services = _services(request)
    form = await request.form()
    check_csrf(request, form)
    certificate_user_id = str(form.get("certificate_user_id", ""))[:64]
    try:
        issued = await run_in_threadpool(
            services.enrollments.reissue_with_secret_answer,
            certificate_user_id,
            str(form.get("answer", ""))[:200],
            now=services.now(),
        )
    except WrongSecretError as error:
        message = _wrong_secret(request, error)
    except EnrollmentNotFoundError:
        message = gettext(request, "The certificate user ID or the answer is wrong.")
    else:
        return _download_password_page(request, issued)
    return _renderer(request).page(
        request,
        "reissue.html",
        status_code=400,
        certificate_user_id=certificate_user_id,
        error=message,
    )


def _guide(template: str) -> Callable[[Request], Awaitable[Response]]:
    async def guide(request: Request) -> Response:
        services = _services(request)
        return _renderer(request).page(
            request, template, check_url=services.check_url, **root_ca_context(services)
        )

    return guide


routes = [
    Route("/enroll/{enrollment_id:str}", enrollment, methods=["GET", "HEAD"]),
    Route("/enroll/{enrollment_id:str}", submit_one_time_password, methods=["POST"]),
    Route("/enroll/{enrollment_id:str}/secret", secret_question, methods=["GET", "HEAD"]),
    Route("/enroll/{enrollment_id:str}/secret", submit_secret_question, methods=["POST"]),
    Route("/download", download_form, methods=["GET", "HEAD"]),
    Route("/download", submit_download, methods=["POST"]),
    Route("/reissue", reissue_form, methods=["GET", "HEAD"]),
    Route("/reissue", submit_reissue, methods=["POST"]),
    Route("/guide/ios", _guide("guide_ios.html"), methods=["GET", "HEAD"]),
    Route("/guide/android", _guide("guide_android.html"), methods=["GET", "HEAD"]),
]
