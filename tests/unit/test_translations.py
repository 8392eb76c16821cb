"""Languages: translations per locale through t(), the record's locale choosing (template locale
as fallback, counted), unknown ids refused, right-to-left alignment and the page's dir."""

from __future__ import annotations

import pytest

from chalicelib.landing.pages import make_page
from chalicelib.landing.web import landing_page
from chalicelib.template.bind import bind, choose_locale
from chalicelib.template.library import check_template, load_template
from chalicelib.template.model import TextLayer
from tests.conftest import Campaign

TEMPLATE = """\
id: hello
locale: en_US
canvas: {width: 160, height: 96, fps: 10}
variables:
  first_name: {type: text, required: true}
  fee: {type: number, default: 1234.5}
translations:
  en_US: {hi: "Hi {{ first_name }}!", fee: "{{ fee | currency('EUR') }} a month", bye: Bye}
  fr_FR: {hi: "Bonjour {{ first_name }} !", fee: "{{ fee | currency('EUR') }} par mois"}
  ar: {hi: "مرحبا {{ first_name }}"}
voices: {en_US: en-us, fr_FR: fr}
styles:
  left: {align: left}
scenes:
  - id: greeting
    duration: 2
    layers:
      - {type: text, text: "{{ t('hi') }}", size: [140, 40]}
      - {type: text, text: "{{ t('fee') }}", style: left, size: [140, 40]}
      - {type: text, text: "{{ t('bye') }}", size: [140, 40]}
      - {type: voice, text: "{{ t('hi') }}"}
page:
  title: "{{ t('hi') }}"
  cta: {label: "{{ t('bye') }}", url: /x}
"""


@pytest.fixture
def hello(campaign: Campaign) -> Campaign:
    campaign.write_template(TEMPLATE)
    return campaign


def texts(plan: object) -> list[str]:
    return [pl.layer.text for pl in plan.scenes[0].layers if isinstance(pl.layer, TextLayer)]  # type: ignore[attr-defined]


def test_the_record_locale_chooses_the_strings_the_voice_and_the_number_format(
    hello: Campaign,
) -> None:
    lt = load_template(hello.template)
    assert check_template(lt) == []
    fr = bind(lt, {"first_name": "Zoé", "locale": "fr_FR"})
    assert texts(fr) == ["Bonjour Zoé !", "1\u202f234,50\xa0€ par mois", "Bye"]
    assert (fr.locale, fr.fallbacks) == ("fr_FR", ["bye"])  # 'bye' fell back, and is counted
    # The locale stays with the record (a recipient's stream and page are bound from it later).
    assert fr.record["locale"] == "fr_FR"
    assert bind(lt, fr.record).locale == "fr_FR"
    assert fr.voices[0].text == "Bonjour Zoé !" and fr.voices[0].voice == "fr"
    en = bind(lt, {"first_name": "Zoe"})
    assert texts(en) == ["Hi Zoe!", "€1,234.50 a month", "Bye"]
    assert (en.locale, en.fallbacks, en.voices[0].voice) == ("en_US", [], "en-us")


@pytest.mark.parametrize(
    ("asked", "chosen"),
    [("fr-FR", "fr_FR"), ("fr", "fr_FR"), ("fr_CA", "fr_FR"), ("de_DE", "en_US"), ("", "en_US"),
     (None, "en_US"), ("en_GB", "en_US"), ("ar_EG", "ar")],
)  # fmt: skip
def test_choose_locale(hello: Campaign, asked: str | None, chosen: str) -> None:
    assert choose_locale(load_template(hello.template).template, asked) == chosen


def test_an_unknown_translation_id_is_a_template_problem(hello: Campaign) -> None:
    hello.write_template(TEMPLATE.replace("t('bye') }}\", size", "t('ciao') }}\", size"))
    problems = check_template(load_template(hello.template))
    assert [p.field for p in problems] == ["scenes[0].layers[2].text"]
    assert "unknown translation id 'ciao'" in problems[0].message
    hello.write_template(TEMPLATE.replace("label: \"{{ t('bye') }}\"", 'label: "{{ t(x) }}"'))
    problems = check_template(load_template(hello.template))
    assert {p.field for p in problems} == {"page.cta.label"}
    assert any("t() takes one quoted id" in p.message for p in problems)


def test_translations_are_checked(hello: Campaign) -> None:
    bad = TEMPLATE.replace("ar: {hi:", "xx_YY: {hi:").replace(
        'par mois"}', 'par mois", oops: "{{ nobody }}"}'
    )
    hello.write_template(bad)
    fields = {p.field for p in check_template(load_template(hello.template))}
    assert fields == {"translations.xx_YY", "translations.fr_FR.oops"}


def test_right_to_left_locales_align_text_right_unless_styled(hello: Campaign) -> None:
    lt = load_template(hello.template)
    plan = bind(lt, {"first_name": "Laila", "locale": "ar"})
    aligns = [pl.style.align for pl in plan.scenes[0].layers if pl.style]
    assert aligns == ["right", "left", "right"]  # the `left` style keeps its alignment
    assert plan.fallbacks == ["bye", "fee"]
    en = bind(lt, {"first_name": "Laila"})
    assert [pl.style.align for pl in en.scenes[0].layers if pl.style] == [
        "center",
        "left",
        "center",
    ]


def test_the_page_speaks_the_locale_and_is_rtl_for_arabic(hello: Campaign) -> None:
    lt = load_template(hello.template)
    plan = bind(lt, {"first_name": "Laila", "locale": "ar"})
    page = make_page(
        lt, plan, campaign_id="hello", recipient_id="r1", video_key="v", poster_key="p"
    )
    assert page.title == "مرحبا Laila" and page.cta_label == "Bye" and page.locale == "ar"
    html = landing_page(page, video_url=None, poster_url="p.jpg", secret="s", lang="ar")
    assert '<html lang="ar" dir="rtl">' in html
    fr = make_page(lt, bind(lt, {"first_name": "Zoé", "locale": "fr"}), campaign_id="hello",
                   recipient_id="r2", video_key="v", poster_key="p")  # fmt: skip
    assert fr.title == "Bonjour Zoé !"
    html = landing_page(fr, video_url=None, poster_url="p.jpg", secret="s", lang="fr")
    assert '<html lang="fr" dir="ltr">' in html
