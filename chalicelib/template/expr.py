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
    pattern = "#,##0" + ("." + "0" * decimals if decimals > 0 else "")
    return str(format_decimal(num, format=pattern, locale=locale))


def format_money(value: Any, code: str = "USD", locale: str = DEFAULT_LOCALE) -> str:
    """An amount in a currency, as the locale writes it."""
    return str(format_currency(_number(value), code, locale=locale))


# Statements are refused: a template string is text with `{{ expressions }}`, never a program.
_ALLOWED_STMTS = (nodes.Template, nodes.Output)


def _env(locale: str) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True
    )

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


def template_variables(text: str, locale: str = DEFAULT_LOCALE) -> set[str]:
    """The variable names `text` uses; raises ValueError if it does not parse or has statements."""
    env = environment(locale)
    try:
        ast = env.parse(text)
    except TemplateSyntaxError as exc:
        raise ValueError(f"bad interpolation: {exc.message}") from exc
    for node in ast.find_all(nodes.Stmt):
        if not isinstance(node, _ALLOWED_STMTS):
            raise ValueError("only {{ expressions }} are allowed here, not {% statements %}")
    try:
        env.compile(ast)
    except TemplateSyntaxError as exc:  # unknown filters are reported at compile time
        raise ValueError(f"bad interpolation: {exc.message}") from exc
    return set(find_undeclared_variables(ast))


def interpolate(text: str, values: Mapping[str, Any], locale: str = DEFAULT_LOCALE) -> str:
    """Render `text` with `values`; raises ValueError naming what went wrong."""
    if not has_expr(text):
        return text
    template_variables(text, locale)  # refuses statements before anything runs
    try:
        return environment(locale).from_string(text).render(dict(values))
    except (JinjaError, ValueError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"cannot interpolate {text!r}: {exc}") from exc


@lru_cache(maxsize=512)
def compile_condition(expr: str) -> jmespath.parser.ParsedResult:
    """Compile a `when` expression; raises ValueError with JMESPath's reason."""
    try:
        return jmespath.compile(expr)
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"bad JMESPath expression {expr!r}: {exc}") from exc


def truthy(value: Any) -> bool:
    """JMESPath truthiness: false, null, '', [] and {} are false; everything else is true."""
    return not (value is None or value is False or value in ("", [], {}))


def evaluate_condition(expr: str, record: Mapping[str, Any]) -> bool:
    """Evaluate a `when` expression on the (JSON-shaped) record."""
    try:
        return truthy(compile_condition(expr).search(dict(record)))
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"cannot evaluate {expr!r}: {exc}") from exc
