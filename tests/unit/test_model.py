"""The template model: shapes accepted, shorthands, and errors with their field paths."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.errors import TemplateError
from chalicelib.template.library import format_loc, load_template_data
from chalicelib.template.model import AnimationKind, Template, TextLayer, normalize_color


def minimal(**extra: Any) -> dict[str, Any]:
    return {"id": "t", "scenes": [{"id": "s", "duration": 2}], **extra}


def test_minimal_template_gets_defaults() -> None:
    t = Template.model_validate(minimal())
    assert (t.canvas.width, t.canvas.height, t.canvas.fps) == (1280, 720, 30)
    assert t.transition.type == "cut"


def test_unknown_key_is_rejected_with_its_path(tmp_path: Any) -> None:
    data = minimal()
    data["scenes"][0]["layers"] = [{"type": "text", "text": "x", "colour": "#fff"}]
    with pytest.raises(TemplateError) as info:
        load_template_data(data, tmp_path)
    assert [p.field for p in info.value.problems] == ["scenes[0].layers[0].colour"]
    assert "Extra inputs are not permitted" in info.value.problems[0].message


def test_shorthands_for_size_and_animations() -> None:
    layer = TextLayer.model_validate({"type": "text", "text": "x", "size": 200, "enter": "fade"})
    assert layer.size == (200, 200)
    assert layer.enter is not None and layer.enter.type is AnimationKind.fade
    assert layer.enter.duration == 0.5


@pytest.mark.parametrize(
    ("raw", "expected"), [("#FFF", "#ffffff"), ("#12abEF", "#12abef"), ("#00000080", "#00000080")]
)
def test_colours_are_normalized(raw: str, expected: str) -> None:
    assert normalize_color(raw) == expected


@pytest.mark.parametrize("bad", ["red", "#12", "12abef", "#gggggg"])
def test_bad_colours_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a colour"):
        normalize_color(bad)


@pytest.mark.parametrize(
    ("variable", "reason"),
    [
        ({"type": "enum"}, "non-empty 'values'"),
        ({"type": "text", "required": True, "default": "x"}, "cannot have a default"),
        ({"type": "number", "max_length": 3}, "text variables only"),
        ({"type": "text", "values": ["a"]}, "enum variables only"),
        ({"type": "tezt"}, "Input should be"),
    ],
)
def test_variable_rules(variable: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Template.model_validate(minimal(variables={"v": variable}))


def test_background_needs_exactly_one_source() -> None:
    data = minimal()
    data["scenes"][0]["background"] = {"color": "#000", "image": "a.png"}
    with pytest.raises(ValidationError, match="exactly one of"):
        Template.model_validate(data)


def test_video_layers_cannot_be_circles() -> None:
    data = minimal()
    data["scenes"][0]["layers"] = [{"type": "video", "src": "a.mp4", "fit": "circle"}]
    with pytest.raises(ValidationError, match="fit 'circle' is for images"):
        Template.model_validate(data)


def test_format_loc_drops_union_tags_but_keeps_fields() -> None:
    assert (
        format_loc(("scenes", 2, "scene", "layers", 0, "text", "text"))
        == "scenes[2].layers[0].text"
    )
    assert (
        format_loc(("variables", "first_name", "max_length")) == "variables.first_name.max_length"
    )
