"""A campaign's pronunciation lexicon (`lexicon.yaml` beside the template), read and checked.

    Siobhan: Shivawn                      # an alias: another spelling the engine reads right
    Nguyen: {ipa: "wɪn", alias: Win}      # IPA first; the alias where a voice cannot say it

Every engine says an entry's IPA (Polly as a PLS lexicon, Piper and espeak-ng as phonemes of
their own) where the voice can, else its alias.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from chalicelib.errors import Problem, TemplateError
from chalicelib.template.documents import DocumentError, load_yaml
from chalicelib.template.model import Strict

LEXICON_FILE = "lexicon.yaml"
MAX_ENTRIES = 5000


class LexiconEntry(Strict):
    alias: str | None = Field(None, min_length=1, max_length=200)
    ipa: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _something(self) -> LexiconEntry:
        if self.alias is None and self.ipa is None:
            raise ValueError("an entry needs an alias or an ipa (or both)")
        return self


class LexiconWord(Strict):
    """One entry as a plan carries it."""

    grapheme: str
    alias: str | None = None
    ipa: str | None = None


def parse_lexicon(data: Any) -> tuple[list[LexiconWord], list[Problem]]:
    """The entries of a lexicon document, and its problems (each naming `lexicon.yaml: word`)."""
    where = LEXICON_FILE
    if data is None:
        return [], []
    if not isinstance(data, dict):
        return [], [Problem(where, "a lexicon maps words to an alias or {alias, ipa}")]
    if len(data) > MAX_ENTRIES:
        return [], [Problem(where, f"more than {MAX_ENTRIES} entries")]
    words, problems = [], []
    for word, value in data.items():
        path = f"{where}: {word}"
        if not isinstance(word, str) or not word.strip() or len(word) > 200:
            problems.append(Problem(path, "a word is non-empty text (200 characters at most)"))
            continue
        try:
            entry = LexiconEntry.model_validate(
                {"alias": value} if isinstance(value, str) else value
            )
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(Problem(f"{path}.{loc}" if loc else path, err["msg"]))
            continue
        words.append(LexiconWord(grapheme=word.strip(), alias=entry.alias, ipa=entry.ipa))
    return words, problems


@lru_cache(maxsize=64)
def _read(
    path: str, size: int, mtime_ns: int
) -> tuple[tuple[LexiconWord, ...], tuple[Problem, ...]]:
    try:
        data = load_yaml(Path(path).read_bytes().decode("utf-8"))
    except (DocumentError, UnicodeDecodeError) as exc:
        reason = exc.message if isinstance(exc, DocumentError) else "not UTF-8 text"
        return (), (Problem(LEXICON_FILE, reason),)
    words, problems = parse_lexicon(data)
    return tuple(words), tuple(problems)


def lexicon_problems(root: Path) -> list[Problem]:
    """What is wrong with the campaign's lexicon.yaml (none when there is none)."""
    path = root / LEXICON_FILE
    if not path.is_file():
        return []
    st = path.stat()
    return list(_read(str(path), st.st_size, st.st_mtime_ns)[1])


def load_lexicon(root: Path) -> list[LexiconWord]:
    """The campaign's lexicon (empty without a lexicon.yaml); TemplateError when malformed."""
    path = root / LEXICON_FILE
    if not path.is_file():
        return []
    st = path.stat()
    words, problems = _read(str(path), st.st_size, st.st_mtime_ns)
    if problems:
        raise TemplateError(
            f"{len(problems)} problem(s) in {LEXICON_FILE}", problems=list(problems)
        )
    return list(words)
