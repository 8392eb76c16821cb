"""Expressions in templates: `{{ var | filter }}` text interpolation (sandboxed jinja2) and
`when` conditions (JMESPath on the record)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jmespath
import jmespath.exceptions
from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.meta import find_undeclared_variables
from jinja2.sandbox import ImmutableSandboxedEnvironment

DEFAULT_LOCALE = "en_US"


class DateValue(dt.date):
    """A date that prints itself in its variable's format and locale."""

    fmt: str = "medium"
    locale: str = DEFAULT_LOCALE

    @classmethod
    def of(cls, value: dt.date, fmt: str | None, locale: str | None) -> DateValue:
        out = cls(value.year, value.month, value.day)
        out.fmt = fmt or "medium"
        out.locale = locale or DEFAULT_LOCALE
        return out

    def __str__(self) -> str:
        return format_date(self, format=self.fmt, locale=self.locale)


def check_locale(name: str) -> str:
    """Return `name` if babel knows the locale, else raise ValueError."""
    try:
        Locale.parse(name)
    except (UnknownLocaleError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown locale {name!r}") from exc
    return name


def _f_date(value: Any, fmt: str = "medium", locale: str | None = None) -> str:
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if not isinstance(value, dt.date):
        raise ValueError(f"date filter needs a date, got {type(value).__name__}")
    loc = locale or getattr(value, "locale", DEFAULT_LOCALE)
    return str(format_date(value, format=fmt, locale=loc))


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"needs a number, got {type(value).__name__}")
    return value


def format_number(value: Any, decimals: int | None = None, locale: str = DEFAULT_LOCALE) -> str:
    """A number with the locale's grouping, and `decimals` places when given."""
    num = _number(value)
    if decimals is None:
        return str(format_decimal(num, locale=locale))
    if not isinstance(decimals, int) or not 0 <= decimals <= 20:
        raise ValueError(f"decimals is a whole number from 0 to 20, not {decimals!r:.40}")
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return str(format_decimal(num, format=pattern, locale=locale))


def format_money(value: Any, code: str = "USD", locale: str = DEFAULT_LOCALE) -> str:
    """An amount in a currency, as the locale writes it."""
    return str(format_currency(_number(value), code, locale=locale))


# Statements are refused: a template string is text with `{{ expressions }}`, never a program.
_ALLOWED_STMTS = (nodes.Template, nodes.Output)


MAX_RESULT = 100_000  # characters, items or bits an operator may make: text on a video


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with `*` and `**` bounded: `{{ 9**9**9 }}` or `{{ 'x' * 10**9 }}` would
    otherwise hang or exhaust the process binding a template (the API's request thread)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _bits(left, right) > MAX_RESULT:
            raise SecurityError(f"** would make a number of over {MAX_RESULT} bits")
        if operator == "*" and max(_length(left, right), _length(right, left)) > MAX_RESULT:
            raise SecurityError(f"* would make over {MAX_RESULT} characters or items")
        return super().call_binop(context, operator, left, right)


def _bits(base: Any, exponent: Any) -> int:
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (base, exponent))
    if not ints or exponent <= 0 or base in (0, 1, -1):
        return 0
    return int(abs(base).bit_length() * exponent)


def _length(seq: Any, times: Any) -> int:
    if isinstance(seq, str | list | tuple) and isinstance(times, int):
        return len(seq) * times
    return 0


def _env(locale: str) -> ImmutableSandboxedEnvironment:
    env = _Sandbox(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)

    # The number filters default to the template's locale.
    def number(value: Any, decimals: int | None = None, loc: str | None = None) -> str:
        return format_number(value, decimals, loc or locale)

    def currency(value: Any, code: str = "USD", loc: str | None = None) -> str:
        return format_money(value, code, loc or locale)

    env.filters.update(date=_f_date, number=number, currency=currency)
    return env


@lru_cache(maxsize=16)
def environment(locale: str = DEFAULT_LOCALE) -> ImmutableSandboxedEnvironment:
    """The sandboxed jinja2 environment of a locale (cached)."""
    return _env(locale)


def has_expr(text: str) -> bool:
    """True when `text` interpolates something (and so may depend on the record)."""
    return "{{" in text


# ── languages (issue 20): `{{ t('id') }}` and right-to-left scripts ───────────────────────

TRANSLATE = "t"  # the function a text calls for a translated string: {{ t('greeting') }}
RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur", "yi", "ps", "sd", "ug", "dv", "ckb"})


def language(locale: str) -> str:
    """'fr_FR' | 'fr-FR' | 'fr' → 'fr'."""
    return locale.replace("-", "_").split("_")[0].lower()


def is_rtl(locale: str) -> bool:
    """True for locales written right to left (Arabic, Hebrew, Persian, Urdu…)."""
    return language(locale) in RTL_LANGUAGES


@lru_cache(maxsize=4096)
def translation_ids(text: str, locale: str = DEFAULT_LOCALE) -> frozenset[str]:
    """The ids `text` asks `t()` for; ValueError when a call is not `t('an id')`."""
    if TRANSLATE not in text or not has_expr(text):
        return frozenset()
    env = environment(locale)
    try:
        ast = env.parse(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"bad interpolation: {exc.message}") from exc
    ids = set()
    for call in ast.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == TRANSLATE:
            args = call.args
            if len(args) != 1 or call.kwargs or not isinstance(args[0], nodes.Const):
                raise ValueError("t() takes one quoted id: {{ t('greeting') }}")
            if not isinstance(args[0].value, str):
                raise ValueError("t() takes one quoted id: {{ t('greeting') }}")
            ids.add(args[0].value)
    return frozenset(ids)


@lru_cache(maxsize=4096)  # the same texts are checked at every keystroke and every binding
def template_variables(text: str, locale: str = DEFAULT_LOCALE) -> frozenset[str]:
    """The variable names `text` uses; raises ValueError if it does not parse or has statements."""
    env = environment(locale)
    try:
        ast = env.parse(text)
        for node in ast.find_all(nodes.Stmt):
            if not isinstance(node, _ALLOWED_STMTS):
                raise ValueError("only {{ expressions }} are allowed here, not {% statements %}")
        env.compile(ast)  # unknown filters are reported at compile time
        return frozenset(find_undeclared_variables(ast)) - {TRANSLATE}
    except TemplateSyntaxError as exc:
        raise ValueError(f"bad interpolation: {exc.message}") from exc
    except RecursionError:  # jinja's parser and compiler recurse once per nesting level
        raise ValueError("bad interpolation: the expression is nested too deeply") from None


def interpolate(text: str, values: Mapping[str, Any], locale: str = DEFAULT_LOCALE) -> str:
    """Render `text` with `values`; raises ValueError naming what went wrong."""
    if not has_expr(text):
        return text
    template_variables(text, locale)  # refuses statements before anything runs
    try:
        return environment(locale).from_string(text).render(dict(values))
    except (JinjaError, ValueError, TypeError, ArithmeticError, RecursionError) as exc:
        raise ValueError(f"cannot interpolate {text[:80]!r}: {exc}") from exc


@lru_cache(maxsize=512)
def compile_condition(expr: str) -> jmespath.parser.ParsedResult:
    """Compile a `when` expression; raises ValueError with JMESPath's reason."""
    try:
        return jmespath.compile(expr)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"bad JMESPath expression {expr[:80]!r}: {str(exc)[:300]}") from exc
    except RecursionError:  # the parser recurses once per nesting level
        raise ValueError(f"bad JMESPath expression {expr[:80]!r}: nested too deeply") from None


def truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, '', [] and {} are false; everything else is true."""
    return not (value is None or value is False or value in ("", [], {}))


def evaluate_condition(expr: str, record: Mapping[str, Any]) -> bool:
    """Evaluate a `when` expression on the (JSON-shaped) record."""
    try:
        return truthy(compile_condition(expr).search(dict(record)))
    except (jmespath.exceptions.JMESPathError, RecursionError) as exc:
        raise ValueError(f"cannot evaluate {expr[:80]!r}: {exc}") from exc
