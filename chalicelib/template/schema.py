"""JSON Schema of templates, exported from the pydantic models."""

from __future__ import annotations

from typing import Any

from chalicelib.template.model import Template


def template_json_schema() -> dict[str, Any]:
    """The JSON Schema of a template file (for editor autocompletion and validation)."""
    schema = Template.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Reel template"
    return schema
