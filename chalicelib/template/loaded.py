"""A loaded template (the template, its campaign root and its library's scenes) and the one
way to reach a file of its campaign. The checks of every part of a template use both."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from chalicelib.errors import Problem
from chalicelib.template.expr import template_variables, translation_ids
from chalicelib.template.model import Scene, SceneRef, Template
from chalicelib.template.values import url_scheme


@dataclass(frozen=True)
class LoadedTemplate:
    """A template with its campaign root (where assets live) and the scenes it uses."""

    template: Template
    root: Path
    library: dict[str, Scene] = field(default_factory=dict)
    library_files: dict[str, Path] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # library problems, when not strict

    def scene_for(self, entry: Scene | SceneRef) -> Scene:
        """The scene an entry stands for, with a reference's overrides applied."""
        if isinstance(entry, Scene):
            return entry
        scene = self.library[entry.use]
        update: dict[str, Any] = {}
        for key in ("when", "duration", "transition"):
            value = getattr(entry, key)
            if value is not None:
                update[key] = value
        return scene.model_copy(update=update) if update else scene

    def fingerprint(self) -> str:
        """Hash of the template and the library scenes it uses (not assets)."""
        h = hashlib.sha256(self.template.model_dump_json().encode())
        for key in sorted(self.library):
            h.update(key.encode() + self.library[key].model_dump_json().encode())
        return h.hexdigest()


def resolve_asset(root: Path, ref: str) -> Path:
    """A campaign-relative asset path made absolute, confined to the campaign root.

    Raises ValueError: URLs, absolute paths, `..` escapes and symlinks out are refused. (A URL
    from data never comes here: the binder keeps it for the guarded fetcher.)
    """
    if not ref:
        raise ValueError("empty path")
    if "://" in ref or url_scheme(ref) is not None:
        raise ValueError(
            f"remote assets are not supported here: {ref[:60]!r} "
            "(put the file under the campaign folder)"
        )
    if "\x00" in ref:
        raise ValueError("the path contains a NUL character")
    pure = PurePosixPath(ref.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"path must stay inside the campaign folder: {ref!r}")
    base = root.resolve()
    try:
        full = (base / pure).resolve()
        if not full.is_relative_to(base):
            raise ValueError(f"path leaves the campaign folder: {ref[:200]!r}")
        if not full.is_file():
            raise ValueError(f"file not found: {ref[:200]}")
    except OSError as exc:  # a name too long for the file system, a symlink loop…
        raise ValueError(f"cannot open {ref[:200]!r}: {exc.strerror}") from None
    return full


def unknown_translations(tpl: Template, text: str) -> list[str]:
    """Why the `t()` calls of `text` cannot be served: an id the template's own locale does
    not translate (every other locale falls back to it), or a call that is not t('id')."""
    try:
        ids = translation_ids(text, tpl.locale)
    except ValueError as exc:
        return [str(exc)]
    default = tpl.translations.get(tpl.locale, {})
    return [
        f"unknown translation id {key!r} (translations.{tpl.locale} has: {sorted(default)[:20]})"
        for key in sorted(ids - set(default))
    ]


def text_problems(tpl: Template, text: str) -> list[str]:
    """What is wrong with a `{{ }}` text of the template: an expression that does not parse,
    a variable the template does not declare, a translation it cannot serve."""
    try:
        names = template_variables(text, tpl.locale)
    except ValueError as exc:
        return [str(exc)]
    undeclared = [f"uses undeclared variable {n!r}" for n in sorted(names - set(tpl.variables))]
    return undeclared + unknown_translations(tpl, text)
