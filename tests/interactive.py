"""The tiny campaign with interactions and chapters, shared by the interaction tests."""

from __future__ import annotations

from tests.conftest import BASE_TEMPLATE

INTERACTIVE = """\
chapters:
  - {id: start, title: Welcome, scene: intro}
  - {id: hello, title: "Hello {{ first_name }}", scene: greeting}
  - {id: bye, title: Goodbye, scene: outro}
interactions:
  - type: button
    id: book
    scene: greeting
    start: 0.1
    label: "Book, {{ first_name }}"
    action: {open: /health}
    at: [0.8, 0.25]
  - {type: hotspot, id: logo, scene: intro, size: [40, 30], at: [0.5, 0.5], label: The logo,
     action: {chapter: bye}}
  - type: choice
    id: pick_plan
    scene: greeting
    label: Which plan suits you?
    variable: plan
    options:
      - {label: Basic, value: basic, chapter: bye}
      - {label: Pro, value: pro, chapter: bye}
  - type: form
    id: poll
    scene: outro
    label: A quick poll
    submit: Send
    fields:
      - {name: team_size, type: single, label: Team size, options: ["1-10", "11-50"],
         required: true}
      - {name: email, type: email, label: Your email}
      - {name: topics, type: multiple, label: Topics, options: [billing, security, api]}
      - {name: note, type: text, label: Anything else?, max_length: 40}
"""


def interactive_template(extra: str = INTERACTIVE) -> str:
    return BASE_TEMPLATE + extra
