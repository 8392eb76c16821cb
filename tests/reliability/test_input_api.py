"""Bad input, part 4: through the HTTP API (chalice's test client on the embedded default).

Property: whatever the body of `POST /renders`, `POST /batches`, `POST /templates`,
`PUT /recipients/{id}/data` or `PUT /uploads/{name}` holds, the answer is a 2xx, or a 4xx
`{"error": {"code", "message", "field"}}` whose field says what is at fault. Never a 5xx.
Renders and batches are queued, not run: the orchestrator records what it is asked to start;
a batch is then planned here (its source read into items, nothing rendered) to check that each
of its records is kept, good or bad, with its line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from chalice.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import bootstrap
from chalicelib.data.readers import Row
from chalicelib.errors import DataError, ReelError
from chalicelib.pipeline.jobs import RecipientResult
from chalicelib.pipeline.steps import plan_recipient
from chalicelib.services import batches, templates
from tests.conftest import API_KEY
from tests.reliability.hostile import YAML_SPECIALS, huge_texts, json_values, mutations, texts

JSON = {"content-type": "application/json", "x-api-key": API_KEY}
YAML = {"content-type": "application/x-yaml", "x-api-key": API_KEY}
VARIABLES = ["first_name", "plan", "avatar"]

# Megabyte values make hypothesis warn about the size of their repr: expected here.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")


@pytest.fixture
def api(local_app: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    """The app, with renders and batches queued but never started (nothing is rendered)."""
    import chalicelib.render.engine

    b = bootstrap.backends()
    monkeypatch.setattr(b.orchestrator, "start_render", lambda render_id: None)
    monkeypatch.setattr(b.orchestrator, "start_batch", lambda batch_id: None)
    monkeypatch.setattr(chalicelib.render.engine, "warm", lambda *a, **k: None)
    yield local_app


def _answer(response: Any) -> dict[str, Any]:
    """The body of a 2xx, or the checked error body of a 4xx (a 5xx fails the test)."""
    assert response.status_code < 500, response.body[:500]
    body = json.loads(response.body)
    if response.status_code >= 400:
        error = body["error"]
        assert set(error) == {"code", "message", "field"}, error
        assert all(isinstance(v, str) for v in error.values())
        assert error["message"] and error["field"], error  # says what, and where
        assert len(error["message"]) < 20_000, "a reason, not the body echoed back"
    return dict(body)


def _text(value: Any, kind: str = "json") -> str | None:
    try:
        if kind == "yaml":
            return str(yaml.dump(value, Dumper=yaml.CSafeDumper, allow_unicode=True))
        return json.dumps(value, ensure_ascii=False)  # NaN and Infinity as JS writes them
    except (TypeError, ValueError, RecursionError, yaml.YAMLError):
        return None


def _body(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate goes out as is


records = st.dictionaries(st.sampled_from(VARIABLES) | texts, json_values | huge_texts, max_size=4)
# Mostly good records with something odd about them, so that the 2xx path is walked too.
likely_records = st.builds(
    lambda base, extra: {**base, **extra},
    st.fixed_dictionaries(
        {"first_name": st.sampled_from(["Ada", "Zoë", "שלום", " x "]) | texts},
        optional={
            "plan": st.sampled_from(["basic", "pro", "Pro"]) | json_values,
            "avatar": st.sampled_from(["assets/avatar.png", "assets/../x.png"]) | texts,
        },
    ),
    st.dictionaries(texts, json_values | huge_texts, max_size=2),
)
deep_bodies = st.sampled_from([65, 1000, 100_000]).map(
    lambda n: '{"template_id": "tiny", "data": {"first_name": "A", "x": ' + "[" * n + "]" * n + "}}"
)
raw_bodies = st.one_of(
    deep_bodies,
    st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
    st.sampled_from(
        [
            '{"template_id": "tiny", "data": {"first_name": NaN}}',
            '{"template_id": "tiny", "data": {"first_name": "A", "n": 1e400}}',
            '{"template_id": "tiny", "data": {"first_name": "A", "n": 1' + "0" * 5000 + "}}",
            '{"template_id": "tiny", "template_id": "other", "data": {}}',
            '{"template_id": "tiny", "data": {"first_name": "\\ud800"}}',
            "\ufeff" + '{"template_id": "tiny", "data": {"first_name": "Zoë"}}',
            "[]",
            "null",
            '"text"',
            "",
        ]
    ),
)


@given(
    data=st.one_of(likely_records, likely_records, records, json_values),
    template_id=st.one_of(*[st.just("tiny")] * 6, st.just("nope"), texts),
)
def test_post_renders_never_answers_5xx(api: Client, data: Any, template_id: Any) -> None:
    text = _text({"template_id": template_id, "data": data})
    if text is not None:
        _answer(api.http.post("/renders", headers=JSON, body=_body(text)))


@given(text=raw_bodies)
@settings(max_examples=30)
def test_post_renders_with_broken_bodies_never_answers_5xx(api: Client, text: str) -> None:
    _answer(api.http.post("/renders", headers=JSON, body=_body(text)))


@given(data=likely_records | records, recipient=st.sampled_from(["ada", "b-2"]))
def test_put_recipient_data_never_answers_5xx(api: Client, data: Any, recipient: str) -> None:
    text = _text({"campaign_id": "tiny", "data": data})
    if text is not None:
        response = api.http.put(f"/recipients/{recipient}/data", headers=JSON, body=_body(text))
        _answer(response)


@given(batch=st.lists(likely_records | records | json_values, min_size=1, max_size=5))
def test_a_bad_record_in_a_batch_fails_alone(api: Client, batch: list[Any]) -> None:
    text = _text({"template_id": "tiny", "records": batch})
    if text is None:
        return
    body = _answer(api.http.post("/batches", headers=JSON, body=_body(text)))
    if "batch_id" not in body:
        return
    # The batch was accepted: every record is an item, and each one alone is good or bad.
    b = bootstrap.backends()
    items = batches.read_items(b, batches.plan_batch(b, body["batch_id"]))
    assert [item.line for item in items] == list(range(1, len(batch) + 1))
    lt = templates.materialize(b, templates.get_template(b, "tiny"))
    for item in items:
        error = DataError(item.error, field=item.field or "") if item.error else None
        planned = plan_recipient(lt, None, Row(item.line, item.fields, error))
        if isinstance(planned, RecipientResult):
            assert planned.reason and planned.line == item.line


# A template that needs no files (a document alone is a whole campaign), so that it registers
# when a mutation leaves it valid.
STANDALONE = yaml.safe_load("""\
id: standalone
canvas: {width: 160, height: 96, fps: 10}
variables:
  first_name: {type: text, required: true, max_length: 60}
  day: {type: date, default: "2026-01-01", format: long}
styles:
  title: {size: 20, color: '#ffffff'}
scenes:
  - id: hello
    duration: 1
    background: {color: '#102040'}
    layers:
      - {type: text, text: "Hi {{ first_name }}, {{ day }}", style: title, size: [140, 40]}
      - {type: shape, color: '#ffffff80', size: [80, 20], at: [0.5, 0.8]}
page: {title: "For {{ first_name }}"}
""")
template_values = st.one_of(
    st.sampled_from(["hello", "x", 1, 0.5, True, None, "#abc"]),
    json_values,
    huge_texts,
    st.sampled_from([float("nan"), 10**400]),
)


@given(
    doc=st.just(STANDALONE) | mutations(STANDALONE, template_values),
    kind=st.sampled_from(["json", "yaml"]),
)
def test_post_templates_never_answers_5xx(api: Client, doc: Any, kind: str) -> None:
    text = _text({"template": doc}, kind)
    if text is not None:
        headers = YAML if kind == "yaml" else JSON
        _answer(api.http.post("/templates", headers=headers, body=_body(text)))


@given(special=st.sampled_from(YAML_SPECIALS))
@settings(max_examples=len(YAML_SPECIALS))
def test_post_templates_with_yaml_specials_never_answers_5xx(api: Client, special: str) -> None:
    indented = "\n".join("  " + line for line in special.splitlines())
    for text in (f"template:\n{indented}\n", special):
        _answer(api.http.post("/templates", headers=YAML, body=_body(text)))


@given(
    data=st.binary(max_size=300)
    | st.sampled_from(
        [
            b"\xff\xfer\x00e\x00c\x00i\x00p\x00i\x00e\x00n\x00t\x00_\x00i\x00d\x00\n\x00",
            b'recipient_id,first_name\n1,"open\n2,Ann\n',
            b"first_name,first_name\nA,B\n",
            b'{"first_name": NaN}\n{"first_name": "A"}\n[1]\n',
            b"\x00\x00\x00",
        ]
    ),
    name=st.sampled_from(["r.csv", "r.jsonl"]),
)
@settings(max_examples=30)
def test_uploads_of_any_bytes_never_answer_5xx(api: Client, data: bytes, name: str) -> None:
    headers = {"content-type": "text/csv", "x-api-key": API_KEY}
    body = _answer(api.http.put(f"/uploads/{name}", headers=headers, body=data))
    if "key" not in body:
        return
    batch = {"template_id": "tiny", "source": body["key"]}
    created = _answer(api.http.post("/batches", headers=JSON, body=json.dumps(batch)))
    b = bootstrap.backends()
    try:  # what the batch runner does first: a file it cannot read at all fails the batch
        items = batches.read_items(b, batches.plan_batch(b, created["batch_id"]))
    except ReelError:
        return
    assert all((i.fields is None) == (i.error is not None) for i in items)


# ── the bugs these properties found, as plain examples ─────────────────────────────────────


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"template_id": "tiny", "data": {"x": ' + "[" * 5000 + "]" * 5000 + "}}", "body"),
        ('{"template_id": "tiny", "data": {"n": 1' + "0" * 5000 + "}}", "body"),
        ('{"template_id": "tiny", "data": {"first_name": NaN}}', "data.first_name"),
        (
            '{"template_id": "tiny", "data": {"first_name": "A", "first_name": "B"}}',
            "data.first_name",
        ),
        ('{"template_id": "tiny", "data": {"first_name": "\\ud800"}}', "data.first_name"),
    ],
)
def test_bodies_that_crashed_or_lied(api: Client, text: str, field: str) -> None:
    # was: 500 (RecursionError, ValueError from int()), or NaN / the last duplicate accepted
    response = api.http.post("/renders", headers=JSON, body=text.encode())
    assert response.status_code == 400
    assert _answer(response)["error"]["field"] == field


def test_a_yaml_template_with_a_date_is_registered(api: Client) -> None:
    # was: 500, json.dumps could not write the date PyYAML made of `default: 2026-01-01`
    body = """\
template:
  id: dated
  variables:
    day: {type: date, default: 2026-01-01}
  scenes:
    - id: only
      duration: 1
      layers: [{type: text, text: "{{ day }}"}]
"""
    response = api.http.post("/templates", headers=YAML, body=body.encode())
    assert response.status_code == 201, response.body


def test_a_body_that_is_not_utf8_is_refused(api: Client) -> None:
    # was: decoded with replacement characters, silently changing the record
    body = b'{"template_id": "tiny", "data": {"first_name": "Zo\xeb"}}'
    response = api.http.post("/renders", headers=JSON, body=body)
    assert response.status_code == 400
    assert "not valid UTF-8" in _answer(response)["error"]["message"]
