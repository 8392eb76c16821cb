"""JSON Schema of templates and scene-library files, exported from the pydantic models."""

from __future__ import annotations

from typing import Any

from chalicelib.template.model import Scene, Template


def template_json_schema() -> dict[str, Any]:
    """The JSON Schema of a template file (for editor autocompletion and validation)."""
    schema = Template.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Reel template"
    return schema


def scene_json_schema() -> dict[str, Any]:
    """The JSON Schema of one scene-library file."""
    schema = Scene.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Reel scene"
    return schema
