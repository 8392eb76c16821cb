"""Interactions on the landing page through chalice.test.Client: the page gives its player the
interactions and chapters, interaction events are checked against the template (400 naming the
field, nothing stored; 403 for a forged token), and a choice changes the recipient's record as
`PUT /recipients/{id}/data` does."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import bootstrap
from chalicelib.landing.tokens import split
from tests.conftest import API_KEY, Campaign
from tests.interactive import interactive_template

ADA = "ada@example.com"


@pytest.fixture
def client(campaign: Campaign, request: pytest.FixtureRequest) -> Client:
    campaign.write_template(interactive_template())
    app: Client = request.getfixturevalue("local_app")
    return app


def body(response: Any) -> Any:
    return json.loads(response.body)


def put_data(client: Client, rid: str, data: dict[str, Any]) -> dict[str, Any]:
    response = client.http.put(
        f"/recipients/{rid}/data",
        headers={"content-type": "application/json", "x-api-key": API_KEY},
        body=json.dumps({"campaign_id": "tiny", "data": data}),
    )
    assert response.status_code == 200, response.body
    return dict(body(response))


@pytest.fixture
def page(client: Client) -> dict[str, Any]:
    """Ada's page (made from her record: nothing rendered), its HTML and its player's config."""
    made = put_data(client, ADA, {"first_name": "Ada"})
    path = made["page"].removeprefix("http://127.0.0.1:8000")
    response = client.http.get(path)
    html = response.body.decode()
    config = json.loads(re.search(r'id="reel-config"[^>]*>(.*?)</script>', html, re.S)[1])
    return {"path": path, "html": html, "config": config, "headers": response.headers}


def post(client: Client, token: str, items: list[dict[str, Any]]) -> Any:
    return client.http.post(
        "/events",
        headers={"content-type": "application/json"},
        body=json.dumps({"token": token, "events": items}),
    )


def event(n: int, kind: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"ix-{n:06d}", "kind": kind, "ts": 1.7e12 + n, **extra}


def stored() -> list[Any]:
    return bootstrap.backends().events.for_campaign("tiny")


def test_the_page_gives_its_player_the_interactions(client: Client, page: dict[str, Any]) -> None:
    config = page["config"]
    assert [i["id"] for i in config["interactions"]] == ["book", "logo", "pick_plan", "poll"]
    book = config["interactions"][0]
    assert (book["label"], book["start"], book["end"]) == ("Book, Ada", 1.1, 2.0)
    assert [(c["title"], c["time"]) for c in config["chapters"]] == [
        ("Welcome", 0.0),
        ("Hello Ada", 1.0),
        ("Goodbye", 2.0),
    ]
    html = page["html"]
    assert 'src="../static/interact.js"' in html
    assert 'aria-live="polite"' in html and 'id="reel-chapters"' in html
    # The CSP stays strict: scripts and styles from the app only, nothing inline
    csp = page["headers"]["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "unsafe-inline" not in csp and "<script>" not in html and "style=" not in html
    script = client.http.get("/static/interact.js")
    assert script.status_code == 200
    assert b"interaction_shown" in script.body
    # and the same, as JSON, for the record now current
    view = body(client.http.get(page["path"] + "/interactive.json"))
    assert view["interactions"] == config["interactions"]


def test_a_page_without_interactions_is_unchanged(local_app: Client) -> None:
    made = put_data(local_app, ADA, {"first_name": "Ada"})
    html = local_app.http.get(made["page"].removeprefix("http://127.0.0.1:8000")).body.decode()
    assert "interact.js" not in html and "reel-overlay" not in html


def test_interaction_events_are_stored_once(client: Client, page: dict[str, Any]) -> None:
    token = page["config"]["token"]
    batch = [
        event(1, "interaction_shown", interaction="book"),
        event(2, "interaction_click", interaction="book"),
        event(
            3,
            "form_submit",
            interaction="poll",
            answers={"team_size": "11-50", "topics": ["api", "security"], "email": "a@b.io"},
        ),
    ]
    assert body(post(client, token, batch)) == {"received": 3, "stored": 3, "duplicates": 0}
    assert body(post(client, token, batch[1:2])) == {"received": 1, "stored": 0, "duplicates": 1}
    kept = {e.kind.value: e for e in stored()}
    assert kept["interaction_click"].interaction == "book"
    assert kept["form_submit"].answers == {
        "team_size": "11-50",
        "topics": ["api", "security"],
        "email": "a@b.io",
    }


@pytest.mark.parametrize(
    ("item", "field"),
    [
        (event(1, "interaction_click", interaction="nope"), "events[1].interaction"),
        (event(1, "interaction_click", interaction="poll"), "events[1].interaction"),
        (event(1, "choice", interaction="pick_plan", option="gold"), "events[1].option"),
        (event(1, "choice", interaction="book", option="pro"), "events[1].interaction"),
        (
            event(
                1, "form_submit", interaction="poll", answers={"team_size": "1-10", "color": "red"}
            ),
            "events[1].answers.color",
        ),
        (
            event(1, "form_submit", interaction="poll", answers={"team_size": "500+"}),
            "events[1].answers.team_size",
        ),
        (
            event(1, "form_submit", interaction="poll", answers={"topics": ["api"]}),
            "events[1].answers.team_size",
        ),  # required
        (
            event(
                1,
                "form_submit",
                interaction="poll",
                answers={"team_size": "1-10", "topics": ["api", "crypto"]},
            ),
            "events[1].answers.topics",
        ),
        (
            event(
                1,
                "form_submit",
                interaction="poll",
                answers={"team_size": "1-10", "email": "not-an-address"},
            ),
            "events[1].answers.email",
        ),
        (
            event(
                1,
                "form_submit",
                interaction="poll",
                answers={"team_size": "1-10", "note": "x" * 41},
            ),
            "events[1].answers.note",
        ),
        (event(1, "choice", interaction="pick_plan"), "events[1]"),  # no option
        (event(1, "play", interaction="book"), "events[1]"),  # not an interaction's kind
    ],
)
def test_bad_interaction_events_are_400_and_nothing_is_stored(
    client: Client, page: dict[str, Any], item: dict[str, Any], field: str
) -> None:
    response = post(client, page["config"]["token"], [event(0, "impression"), item])
    assert response.status_code == 400, response.body
    assert body(response)["error"]["field"] == field
    assert stored() == []
    known = bootstrap.backends().recipients.get_recipient("tiny", ADA)
    assert known is not None and known.data["plan"] == "basic"


def test_a_forged_token_is_403_before_anything_is_checked(
    client: Client, page: dict[str, Any]
) -> None:
    token, signature = split(page["config"]["token"])
    for items in (
        [event(1, "choice", interaction="pick_plan", option="pro")],
        [event(1, "form_submit", interaction="poll", answers={"color": "red"})],
    ):
        response = post(client, f"{token}.{'A' * len(signature)}", items)
        assert response.status_code == 403
    assert stored() == []
    known = bootstrap.backends().recipients.get_recipient("tiny", ADA)
    assert known is not None and known.data["plan"] == "basic"


def test_a_choice_changes_the_record_as_put_data_does(client: Client, page: dict[str, Any]) -> None:
    b = bootstrap.backends()
    before = b.recipients.get_recipient("tiny", ADA)
    assert before is not None and before.data["plan"] == "basic"
    # WHEN Ada picks the pro plan on her page
    response = post(
        client, page["config"]["token"], [event(1, "choice", interaction="pick_plan", option="pro")]
    )
    assert response.status_code == 202, response.body
    # THEN her record says so (a new hash, the same page) and her page's timeline follows it:
    # the pro scene now plays before the outro, so the poll and the last chapter move
    after = b.recipients.get_recipient("tiny", ADA)
    assert after is not None and after.data["plan"] == "pro"
    assert after.data_hash != before.data_hash and after.token == before.token
    view = body(client.http.get(page["path"] + "/interactive.json"))
    assert {i["id"]: i["start"] for i in view["interactions"]}["poll"] == 2.8
    assert view["chapters"][-1]["time"] == 2.8
    [kept] = stored()
    assert (kept.kind.value, kept.option) == ("choice", "pro")


THEME = """\
  theme:
    accent: "#FF6600"
    accent_ink: "#000"
    background: "#0b1f3a"
    text: "#ffffff"
    logo: assets/red.png
    logo_alt: Northwind
    font: assets/brand.ttf
"""


def test_page_theme_colours_logo_and_font(
    campaign: Campaign, request: pytest.FixtureRequest
) -> None:
    from pathlib import Path

    import chalicelib.render

    font = Path(chalicelib.render.__file__).parent / "fonts" / "NotoSans-VF.ttf"
    (campaign.root / "assets" / "brand.ttf").write_bytes(font.read_bytes())
    text = interactive_template().replace("page:\n", "page:\n" + THEME, 1)
    campaign.write_template(text)
    client: Client = request.getfixturevalue("local_app")
    made = put_data(client, ADA, {"first_name": "Ada"})
    path = made["page"].removeprefix("http://127.0.0.1:8000")
    html = client.http.get(path).body.decode()
    # The page links its theme (a style sheet: the CSP allows no inline style) and its logo
    token = path.rsplit("/", 1)[1]
    assert f'href="{token}/theme.css"' in html
    assert f'<img class="reel-logo" src="{token}/theme-logo" alt="Northwind">' in html
    css = client.http.get(path + "/theme.css")
    assert css.headers["Content-Type"].startswith("text/css")
    sheet = css.body.decode()
    assert "--accent: #ff6600; --accent-ink: #000000;" in sheet
    assert "background: #0b1f3a; color: #ffffff" in sheet
    assert 'src: url("theme-font") format("truetype")' in sheet
    logo = client.http.get(path + "/theme-logo", headers={"accept": "image/png"})
    assert logo.headers["Content-Type"] == "image/png" and logo.body[:4] == b"\x89PNG"
    served = client.http.get(path + "/theme-font", headers={"accept": "font/ttf"})
    assert served.headers["Content-Type"] == "font/ttf" and served.body == font.read_bytes()


def test_theme_files_are_checked(campaign: Campaign) -> None:
    from chalicelib.template.library import validate_template_file

    bad = THEME.replace("assets/red.png", "assets/missing.png").replace("brand.ttf", "brand.exe")
    campaign.write_template(interactive_template().replace("page:\n", "page:\n" + bad, 1))
    found = {p.field: p.message for p in validate_template_file(campaign.template)}
    assert found["page.theme.logo"] == "file not found: assets/missing.png"
    assert found["page.theme.font"].startswith("must be one of .otf, .ttf, .woff, .woff2")
