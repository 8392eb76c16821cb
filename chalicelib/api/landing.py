"""Delivery and measurement routes: landing pages, their static files and captions, the
tracking endpoint, and the campaign analytics (JSON and dashboard)."""

from __future__ import annotations

from collections.abc import Mapping

from chalice.app import Blueprint, Response
from pydantic import Field

from chalicelib import bootstrap
from chalicelib.api import handles_errors, parse_document, parse_model, require_key
from chalicelib.api.operations import BINARY, CAMPAIGN, HTML_PAGE, TOKEN, Media, Operation, Param
from chalicelib.errors import NotFoundError
from chalicelib.services import emails, recipients, templates
from chalicelib.services.analytics import campaign_analytics
from chalicelib.template.interactive import PageChapter, PageInteraction
from chalicelib.template.model import Strict
from chalicelib.tracking.analytics import CampaignReport
from chalicelib.tracking.consent import signal, view_mode
from chalicelib.tracking.events import EventBatch
from chalicelib.tracking.ingest import IngestResult, ingest

landing = Blueprint(__name__)

HTML = "text/html; charset=utf-8"
NO_STORE = {"Cache-Control": "no-store"}


class RecipientDataView(Strict):
    """PUT /recipients/{recipient_id}/data: the record now current, and the recipient's page."""

    recipient_id: str
    campaign_id: str
    data_hash: str = Field(description="a content hash of the record now current")
    page: str = Field(description="the recipient's landing page (the same link as before)")


def _html(body: str, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers={"Content-Type": HTML, **NO_STORE})


@landing.route("/v/{token}")
@Operation("A recipient's landing page", "landing", HTML_PAGE, params=(TOKEN,))
@handles_errors
def landing_page(token: str) -> Response:
    from chalicelib.landing.web import landing_page as render_page

    b = bootstrap.backends()
    page = recipients.get_page(b, token)
    template = templates.materialize(b, templates.get_template(b, page.campaign_id)).template
    locale = template.locale
    known = b.recipients.get_recipient(page.campaign_id, page.recipient_id)
    headers: Mapping[str, str] = landing.current_request.headers or {}
    mode = view_mode(
        template,
        known.consent if known is not None else None,
        gpc=signal(headers, "Sec-GPC"),
        dnt=signal(headers, "DNT"),
    )
    html = render_page(
        page,
        # The MP4 exists once rendered (a recipient known only by their data has the stream)
        video_url=b.blobs.url(page.video_key) if b.blobs.exists(page.video_key) else None,
        # Made from the stream when asked for: right for the current data, rendered or not.
        poster_url=recipients.page_url(b, page.token) + "/poster.jpg",
        secret=b.secret,
        lang=(page.locale or locale).split("_")[0],
        tracking=mode.value,
        interactive=recipients.interactive(b, page),
        theme=template.page.theme,
    )
    return Response(
        body=html,
        status_code=200,
        headers={
            "Content-Type": HTML,
            "Cache-Control": "private, no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": (
                "default-src 'self'; img-src 'self' https: http: data:; "
                "media-src 'self' blob: https: http:; style-src 'self'; script-src 'self'; "
                "connect-src 'self'; frame-ancestors 'none'"
            ),
        },
    )


@landing.route("/v/{token}/captions.vtt")
@Operation(
    "The captions of a recipient's video",
    "landing",
    Media(("text/vtt",), "WebVTT captions"),
    params=(TOKEN,),
)
@handles_errors
def captions(token: str) -> Response:
    from chalicelib.landing.web import captions_vtt

    page = recipients.get_page(bootstrap.backends(), token)
    return Response(
        body=captions_vtt(page),
        status_code=200,
        headers={"Content-Type": "text/vtt; charset=utf-8", **NO_STORE},
    )


class InteractiveView(Strict):
    """GET /v/{token}/interactive.json: the page's interactions and chapters, for the record
    now current (the player asks again after a choice changed it)."""

    interactions: list[PageInteraction]
    chapters: list[PageChapter]


@landing.route("/v/{token}/interactive.json")
@Operation(
    "A page's interactions and chapters for the recipient's current record",
    "landing",
    InteractiveView,
    params=(TOKEN,),
)
@handles_errors
def interactive(token: str) -> Response:
    b = bootstrap.backends()
    interactions, chapters = recipients.interactive(b, recipients.get_page(b, token))
    view = InteractiveView(interactions=interactions, chapters=chapters)
    return Response(
        body=view.model_dump_json(),
        status_code=200,
        headers={"Content-Type": "application/json", **NO_STORE},
    )


@landing.route("/v/{token}/theme.css")
@Operation(
    "The page's theme (the campaign's page.theme) as a style sheet",
    "landing",
    Media(("text/css",), "the style sheet"),
    params=(TOKEN,),
)
@handles_errors
def theme_css(token: str) -> Response:
    from chalicelib.landing.web import theme_css as render_css

    theme = recipients.theme(bootstrap.backends(), token)
    return Response(
        body=render_css(theme),
        status_code=200,
        headers={
            "Content-Type": "text/css; charset=utf-8",
            "Cache-Control": "private, max-age=300",
        },
    )


@landing.route("/v/{token}/theme-logo")
@Operation(
    "The campaign's logo (page.theme.logo)",
    "landing",
    Media(("image/png", "image/jpeg", "image/webp"), "the logo", BINARY),
    params=(TOKEN,),
)
@handles_errors
def theme_logo(token: str) -> Response:
    return _theme_file(token, "logo")


@landing.route("/v/{token}/theme-font")
@Operation(
    "The campaign's font (page.theme.font)",
    "landing",
    Media(("font/woff2", "font/woff", "font/ttf", "font/otf"), "the font", BINARY),
    params=(TOKEN,),
)
@handles_errors
def theme_font(token: str) -> Response:
    return _theme_file(token, "font")


def _theme_file(token: str, which: str) -> Response:
    """A file of the campaign's `page.theme` (logo or font), as the page's sheet links it."""
    data, kind = recipients.theme_file(bootstrap.backends(), token, which)
    return Response(
        body=data,
        status_code=200,
        headers={"Content-Type": kind, "Cache-Control": "private, max-age=300"},
    )


@landing.route("/v/{token}/poster.jpg")
@Operation(
    "A recipient's poster (made from their stream when first asked for)",
    "landing",
    Media(("image/jpeg",), "the poster", BINARY),
    params=(TOKEN,),
    errors=(400, 404, 503),
)
@handles_errors
def poster(token: str) -> Response:
    """The recipient's poster (the page's image, and its link preview's)."""
    data = bootstrap.streams().poster(token)  # NotReadyError: 503 with Retry-After
    return Response(
        body=data,
        status_code=200,
        headers={"Content-Type": "image/jpeg", "Cache-Control": "private, max-age=300"},
    )


@landing.route("/v/{token}/email.gif")
@Operation(
    "The animated GIF of a recipient's email snippet (a link that does not expire)",
    "landing",
    Media(("image/gif",), "the GIF", BINARY),
    params=(TOKEN,),
)
@handles_errors
def email_gif(token: str) -> Response:
    """The animated GIF of the page's email snippet, under a link that does not expire."""
    data = emails.email_gif(bootstrap.backends(), token)
    return Response(
        body=data,
        status_code=200,
        headers={"Content-Type": "image/gif", "Cache-Control": "public, max-age=86400"},
    )


@landing.route("/static/{name}")
@Operation(
    "The landing page's script and style sheet",
    "landing",
    Media(("text/javascript", "text/css"), "the file"),
    params=(Param("name", "the file's name"),),
)
@handles_errors
def static(name: str) -> Response:
    from chalicelib.landing.web import static_file

    found = static_file(name)
    if found is None:
        raise NotFoundError(f"no static file {name!r}", field="name")
    data, kind = found
    return Response(
        body=data.decode("utf-8"),
        status_code=200,
        headers={"Content-Type": kind, "Cache-Control": "public, max-age=3600"},
    )


@landing.route("/events", methods=["POST"], content_types=["application/json", "text/plain"])
@Operation(
    "The player's tracking events",
    "landing",
    IngestResult,
    status=202,
    request=EventBatch,
    errors=(400, 403),
    description="`text/plain` is what `navigator.sendBeacon` sends: the same JSON body.",
)
@handles_errors
def events() -> Response:
    """The player's beacons: `{"token", "events": [≤ 50]}` → 202 with what was stored."""
    request = landing.current_request
    batch = parse_model(EventBatch, parse_document(request))
    headers: Mapping[str, str] = request.headers or {}
    result = ingest(
        bootstrap.backends(),
        batch,
        gpc=signal(headers, "Sec-GPC"),
        dnt=signal(headers, "DNT"),
    )
    return Response(
        body=result.model_dump(),
        status_code=202,
        headers={"Content-Type": "application/json", **NO_STORE},
    )


@landing.route("/campaigns/{campaign_id}/analytics")
@Operation(
    "A campaign's funnel, retention and per-recipient stats",
    "landing",
    CampaignReport,
    params=(CAMPAIGN,),
)
@handles_errors
def analytics(campaign_id: str) -> Response:
    """The funnel (sent → opened → played → 25/50/75/100 % → clicked), the retention curve in
    10 % steps and each recipient's stats."""
    report = campaign_analytics(bootstrap.backends(), campaign_id)
    return Response(
        body=report.model_dump_json(),
        status_code=200,
        headers={"Content-Type": "application/json", **NO_STORE},
    )


@landing.route("/dashboard/{campaign_id}")
@Operation("A campaign's dashboard", "landing", HTML_PAGE, params=(CAMPAIGN,))
@handles_errors
def dashboard(campaign_id: str) -> Response:
    """The campaign at a glance: headline numbers, funnel and retention charts (SVG rendered
    here), and the recipients."""
    from chalicelib.landing.dashboard import dashboard_html

    report = campaign_analytics(bootstrap.backends(), campaign_id)
    return _html(dashboard_html(report))


@landing.route(
    "/recipients/{recipient_id}/data", methods=["PUT"], content_types=["application/json"]
)
@Operation(
    "Replace a recipient's record (their stream shows it at once)",
    "landing",
    RecipientDataView,
    request=recipients.RecipientDataRequest,
    params=(Param("recipient_id", "the recipient's id in the campaign"),),
    key=True,
    errors=(400, 401, 404),
)
@handles_errors
def recipient_data(recipient_id: str) -> Response:
    """Replace a recipient's record: their stream shows it from the next playlist request."""
    request = landing.current_request
    require_key(request)
    body = parse_model(recipients.RecipientDataRequest, parse_document(request))
    record = recipients.set_recipient_data(
        bootstrap.backends(), body.campaign_id, recipient_id, body.data
    )
    view = RecipientDataView(
        recipient_id=record.recipient_id,
        campaign_id=record.campaign_id,
        data_hash=record.data_hash,
        page=recipients.page_url(bootstrap.backends(), record.token),
    )
    return Response(
        body=view.model_dump(),
        status_code=200,
        headers={"Content-Type": "application/json", **NO_STORE},
    )
