"""Voice-over's bad input: an unknown voice, a malformed lexicon (reel validate names the field,
POST /templates answers 400), the lexicon applied, and `reel validate --data` on overflows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from chalice.test import Client
from typer.testing import CliRunner

from app import app as api
from chalicelib import bootstrap
from chalicelib.adapters.espeak import EspeakSpeech
from chalicelib.adapters.local_fs import LocalBlobStore
from chalicelib.cli import app
from chalicelib.render.voice import clip_key, lexicon_for, request_for, speak
from chalicelib.services import templates
from chalicelib.template.bind import bind
from chalicelib.template.lexicon import parse_lexicon
from chalicelib.template.library import load_template, validate_template_file
from chalicelib.template.plan import RenderPlan
from tests.conftest import Campaign
from tests.integration.test_voice import VOICED

runner = CliRunner()
KEY = "test-key-0123456789"


@pytest.fixture
def voiced(campaign: Campaign) -> Campaign:
    campaign.write_template(VOICED.replace("OVERFLOW", "error"))
    return campaign


def test_the_lexicon_reads_aliases_and_ipa() -> None:
    words, problems = parse_lexicon(
        {"Siobhan": "Shivawn", "Nguyen": {"ipa": "wɪn", "alias": "Win"}}
    )
    assert problems == []
    assert [(w.grapheme, w.alias, w.ipa) for w in words] == [
        ("Siobhan", "Shivawn", None),
        ("Nguyen", "Win", "wɪn"),
    ]


@pytest.mark.parametrize(
    ("doc", "field", "reason"),
    [
        ({"Siobhan": {}}, "lexicon.yaml: Siobhan", "an alias or an ipa"),
        ({"Siobhan": {"sound": "x"}}, "lexicon.yaml: Siobhan.sound", "Extra inputs"),
        ({"Siobhan": 3}, "lexicon.yaml: Siobhan", "valid dictionary"),
        (["Siobhan"], "lexicon.yaml", "maps words"),
    ],
)
def test_a_malformed_lexicon_names_the_entry(doc: object, field: str, reason: str) -> None:
    _, problems = parse_lexicon(doc)
    assert problems and problems[0].field == field and reason in problems[0].message


def test_reel_validate_names_a_bad_lexicon_entry(voiced: Campaign) -> None:
    (voiced.root / "lexicon.yaml").write_text("Ana: {alias: Anna, stress: 1}\n")
    found = validate_template_file(voiced.template)
    assert [p.field for p in found] == ["lexicon.yaml: Ana.stress"]
    result = runner.invoke(app, ["validate", str(voiced.template)])
    assert result.exit_code == 1 and "lexicon.yaml: Ana.stress" in result.stderr


def test_the_lexicon_changes_the_clip_of_the_lines_that_use_it(
    voiced: Campaign, tmp_path: Path
) -> None:
    store = LocalBlobStore(tmp_path / "cache")
    lt = load_template(voiced.template)
    before = speak(bind(lt, {"first_name": "Siobhan"}), EspeakSpeech(), store, tmp_path / "c")
    other_before = bind(lt, {"first_name": "Ana"})
    (voiced.root / "lexicon.yaml").write_text("Siobhan: Shivawn\n")
    plan = bind(lt, {"first_name": "Siobhan"})
    assert [w.alias for w in lexicon_for(plan, plan.voices[0])] == ["Shivawn"]
    after = speak(plan, EspeakSpeech(), store, tmp_path / "c")
    # A new clip, spoken with the alias (espeak says "Shivawn": a different sound) …
    assert after.voices[0].clip != before.voices[0].clip
    assert (
        Path(after.voices[0].src or "").read_bytes()
        != Path(before.voices[0].src or "").read_bytes()
    )
    # … while Ana's line, which the entry does not touch, keeps its clip.
    ana = bind(lt, {"first_name": "Ana"})

    def key(p: RenderPlan) -> str:
        return clip_key("espeak", request_for(p.voices[0], "espeak", lexicon_for(p, p.voices[0])))

    assert key(ana) == key(other_before)


def test_reel_validate_names_ipa_the_voice_cannot_say_without_an_alias(
    voiced: Campaign,
) -> None:
    # ʁ (French r) has no code in espeak-ng's English voice: Rose's lines would all fail.
    (voiced.root / "lexicon.yaml").write_text(
        "Rose: {ipa: ʁoz}\nRené: {ipa: ʁəne, alias: Renay}\nNiamh: {ipa: nˈiːv}\n"
    )
    result = runner.invoke(app, ["validate", str(voiced.template)])
    assert result.exit_code == 1
    assert "lexicon.yaml: Rose.ipa: the IPA symbol 'ʁ' (U+0281)" in result.stderr
    assert "no alias to fall back on" in result.stderr
    # René falls back on his alias, Niamh is said in IPA: neither is a problem.
    assert "René" not in result.stderr and "Niamh" not in result.stderr
    (voiced.root / "lexicon.yaml").write_text("René: {ipa: ʁəne, alias: Renay}\n")
    assert runner.invoke(app, ["validate", str(voiced.template)]).exit_code == 0


def test_the_lexicon_ipa_changes_the_clip_espeak_speaks(voiced: Campaign, tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "cache")
    lt = load_template(voiced.template)
    before = speak(bind(lt, {"first_name": "Niamh"}), EspeakSpeech(), store, tmp_path / "c")
    (voiced.root / "lexicon.yaml").write_text("Niamh: {ipa: nˈiːv}\n")
    after = speak(bind(lt, {"first_name": "Niamh"}), EspeakSpeech(), store, tmp_path / "c")
    assert after.voices[0].clip != before.voices[0].clip
    # "nˈiːv" is shorter than espeak-ng's own guess, "nˈaɪəm"; the captions still say Niamh.
    assert (after.voices[0].duration or 0) < (before.voices[0].duration or 0) - 0.01
    assert "Niamh" in [m.text for m in after.voices[0].marks]


def test_an_unknown_voice_is_named_by_reel_validate(voiced: Campaign) -> None:
    voiced.write_template(
        VOICED.replace("OVERFLOW", "speed").replace(
            "voices: {en_US: en-us}", "voices: {en_US: xx-klingon}"
        )
    )
    result = runner.invoke(app, ["validate", str(voiced.template)])
    assert result.exit_code == 1
    assert "voices.en_US: the espeak engine has no voice 'xx-klingon'" in result.stderr


def test_a_line_naming_no_voice_for_the_engine(voiced: Campaign) -> None:
    text = VOICED.replace("OVERFLOW", "speed").replace(
        "overflow: speed}", "overflow: speed, voice: {polly: Joanna}}"
    )
    voiced.write_template(text)
    result = runner.invoke(app, ["validate", str(voiced.template)])
    assert result.exit_code == 1
    assert "scenes[1].layers[1].voice: names no voice for the espeak engine" in result.stderr


def test_validate_data_reports_who_would_overflow(voiced: Campaign, tmp_path: Path) -> None:
    data = tmp_path / "people.csv"
    data.write_text(
        "first_name\nAna\n" + "Maximiliana Konstantinopoulou-Vanderbilt " * 3 + "\nBo\n"
    )
    result = runner.invoke(app, ["validate", str(voiced.template), "--data", str(data)])
    assert result.exit_code == 1, result.output
    assert "line 3" in result.stderr and "scenes[1].layers[1]" in result.stderr
    assert "line 2" not in result.stderr and "line 4" not in result.stderr
    assert "1 voice line(s) overflow; 1 recipient(s) would fail" in result.stderr


def test_validate_data_all_fit(voiced: Campaign, tmp_path: Path) -> None:
    data = tmp_path / "people.jsonl"
    data.write_text('{"first_name": "Ana"}\n{"first_name": "Bo"}\n')
    result = runner.invoke(app, ["validate", str(voiced.template), "--data", str(data)])
    assert result.exit_code == 0, result.output
    assert "every voice line fits" in result.stdout


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("REEL_API_KEYS", KEY)
    bootstrap.reset()
    with Client(api, stage_name="local") as c:
        yield c
    bootstrap.reset()


def _post(client: Client, campaign: Campaign) -> tuple[int, dict]:
    import json

    response = client.http.post(
        "/templates",
        headers={"content-type": "application/zip", "x-api-key": KEY},
        body=templates.pack(campaign.root),
    )
    return response.status_code, json.loads(response.body)


def test_post_templates_400_for_an_unknown_voice_or_a_bad_lexicon(
    client: Client, voiced: Campaign
) -> None:
    assert _post(client, voiced)[0] == 201
    doc = yaml.safe_load(voiced.template.read_text())
    doc["voices"] = {"en_US": "xx-klingon"}
    voiced.template.write_text(yaml.safe_dump(doc))
    status, answer = _post(client, voiced)
    assert status == 400 and answer["error"]["field"] == "voices.en_US"
    doc["voices"] = {"en_US": "en-us"}
    voiced.template.write_text(yaml.safe_dump(doc))
    (voiced.root / "lexicon.yaml").write_text("Ana: {}\n")
    status, answer = _post(client, voiced)
    assert status == 400 and answer["error"]["field"] == "lexicon.yaml: Ana"


def test_reel_render_speaks_with_the_configured_engine(voiced: Campaign, tmp_path: Path) -> None:
    import json

    record = tmp_path / "r.json"
    record.write_text(json.dumps({"first_name": "Ana"}))
    for extra in ([], ["--no-cache"]):
        video = tmp_path / f"v{len(extra)}.mp4"
        args = ["render", str(voiced.template), "--data", str(record), "--out", str(video), *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert video.is_file()


def test_reel_render_with_a_misconfigured_engine_fails_naming_the_line(
    voiced: Campaign, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("REEL_SPEECH_ENGINE", "piper")  # and no REEL_PIPER_MODEL
    bootstrap.reset()
    record = tmp_path / "r.json"
    record.write_text(json.dumps({"first_name": "Ana"}))
    video = tmp_path / "v.mp4"
    result = runner.invoke(
        app, ["render", str(voiced.template), "-d", str(record), "-o", str(video)]
    )
    assert result.exit_code == 2
    assert "REEL_PIPER_MODEL" in result.stderr and not video.exists()
