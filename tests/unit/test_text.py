"""Unit tests for the Pillow text rasterizer: fonts, fallback, bidi, clusters, wrapping, fitting."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from chalicelib.render.text import FONT_DIR, font_chain, fonts_fingerprint, render_text
from chalicelib.render.text.breaking import break_word, ellipsize
from chalicelib.render.text.clusters import clusters
from chalicelib.render.text.shaping import Measure, Widths
from chalicelib.render.text.shaping import runs as _runs

ARABIC = FONT_DIR / "NotoSansArabic-VF.ttf"
HEBREW = FONT_DIR / "NotoSansHebrew-VF.ttf"
LATIN = FONT_DIR / "NotoSans-VF.ttf"
CJK = FONT_DIR / "DroidSansFallbackFull.ttf"
EMOJI = FONT_DIR / "NotoEmoji-VF.ttf"
# Plane-16 private use characters: no bundled font covers them, so they draw as .notdef boxes.
TOFU = "\U0010fffd"


def alpha(image: Image.Image) -> np.ndarray:
    return np.asarray(image.getchannel("A"))


def ink_bbox(image: Image.Image) -> tuple[int, int, int, int]:
    box = image.getchannel("A").getbbox()
    assert box is not None, "nothing was drawn"
    return box


def ink_bands(image: Image.Image) -> list[tuple[int, int]]:
    """(first, last + 1) rows of each separate horizontal band of ink: the visible lines."""
    rows = np.concatenate([[False], alpha(image).max(axis=1) > 0, [False]])
    edges = np.flatnonzero(rows[1:] != rows[:-1])
    return [(int(start), int(end)) for start, end in zip(edges[::2], edges[1::2], strict=True)]


def ink_row_bands(image: Image.Image) -> int:
    return len(ink_bands(image))


def test_font_chain_is_bundled_and_fingerprinted() -> None:
    chain = font_chain()
    assert [p.name for p in chain] == [
        "NotoSans-VF.ttf",
        "NotoSansArabic-VF.ttf",
        "NotoSansHebrew-VF.ttf",
        "NotoSansDevanagari-VF.ttf",
        "NotoSansThai-VF.ttf",
        "NotoSansSymbols-VF.ttf",
        "DroidSansFallbackFull.ttf",
        "NotoEmoji-VF.ttf",
    ]
    assert all(p.parent == FONT_DIR and p.is_file() for p in chain)
    assert len(fonts_fingerprint()) == 64
    assert fonts_fingerprint() == fonts_fingerprint()


@pytest.mark.parametrize(("width", "height"), [(640, 120), (33, 401)])
def test_output_is_rgba_of_the_exact_size(width: int, height: int) -> None:
    image = render_text("Hello", width, height, size=40)
    assert image.mode == "RGBA"
    assert image.size == (width, height)


@pytest.mark.parametrize("text", ["", "   ", "\n\n", " \t \r\n "])
def test_empty_or_blank_text_is_fully_transparent(text: str) -> None:
    image = render_text(text, 200, 100, size=40)
    assert image.size == (200, 100)
    assert alpha(image).max() == 0


@pytest.mark.parametrize(
    "text",
    [
        "Hello world",
        'O\'Brien: 100% "quoted" \\ back',
        "%{pts} {{x}}",
        "Zoë",
        "山田太郎",
        "مريم",
        "שלום",
        "🎉👋🏽",
        "👨\u200d👩\u200d👧 ❤️",
        "Hi مريم!",
        "Hello 山田太郎 👋",
    ],
)
def test_text_is_drawn_verbatim(text: str) -> None:
    image = render_text(text, 600, 160, size=48)
    assert alpha(image).max() > 0


def test_cjk_uses_the_cjk_font_not_tofu() -> None:
    assert [(run.font, run.text) for run in _runs("山田太郎")] == [(CJK, "山田太郎")]
    cjk = render_text("山田太郎", 400, 100, size=48)
    tofu = render_text(TOFU * 4, 400, 100, size=48)
    assert alpha(cjk).max() > 0
    assert not np.array_equal(alpha(cjk), alpha(tofu))


def test_emoji_with_skin_tone_stays_in_the_emoji_font() -> None:
    assert [(run.font, run.text) for run in _runs("🎉👋🏽")] == [(EMOJI, "🎉👋🏽")]
    emoji = render_text("🎉👋🏽", 400, 100, size=48)
    tofu = render_text(TOFU * 3, 400, 100, size=48)
    assert not np.array_equal(alpha(emoji), alpha(tofu))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("❤️ ok", [(EMOJI, "❤️"), (LATIN, " ok")]),  # VS16 asks for the emoji font
        ("👨\u200d👩\u200d👧", [(EMOJI, "👨\u200d👩\u200d👧")]),  # a ZWJ family stays whole
        ("Zoe\u0308", [(LATIN, "Zoe\u0308")]),  # a combining mark stays with its base
        ("مريم، أحمد", [(ARABIC, "مريم، أحمد")]),  # covered space and comma stay in the run
        ("山田 太郎", [(CJK, "山田 太郎")]),
    ],
)
def test_font_runs_keep_clusters_and_covered_punctuation(
    text: str, expected: list[tuple[object, str]]
) -> None:
    assert [(run.font, run.text) for run in _runs(text)] == expected


def test_unknown_characters_draw_tofu_instead_of_raising() -> None:
    assert [run.font for run in _runs(TOFU)] == [LATIN]
    assert alpha(render_text(TOFU, 100, 100, size=40)).max() > 0


def test_arabic_is_one_rtl_run_and_joined() -> None:
    assert _runs("مريم") == [(ARABIC, "مريم", True)]
    # GIVEN the word and its four letters drawn one by one
    word = ink_bbox(render_text("مريم", 800, 200, size=80))
    letters = [ink_bbox(render_text(letter, 800, 200, size=80)) for letter in "مريم"]
    # THEN joined (contextual) forms make the word narrower than its isolated letters
    assert word[2] - word[0] < sum(box[2] - box[0] for box in letters)


def test_hebrew_uses_the_hebrew_font_rtl() -> None:
    assert _runs("שלום") == [(HEBREW, "שלום", True)]


def test_rtl_text_is_centered() -> None:
    image = render_text("مريم", 400, 150, size=64, align="center")
    left, _, right, _ = ink_bbox(image)
    assert abs((left + right) / 2 - 200) <= 4


def test_mixed_line_runs_in_visual_order() -> None:
    runs = _runs("Hi مريم!")
    assert [run.text for run in runs] == ["Hi ", "مريم", "!"]
    assert [run.rtl for run in runs] == [False, True, False]
    assert runs[0].font == LATIN
    assert runs[1].font == ARABIC


def test_rtl_runs_in_an_ltr_paragraph_are_reversed_as_a_group() -> None:
    # GIVEN two Arabic words with a number between them inside a Latin sentence
    runs = _runs("A مريم 12 ب Z")
    # THEN the right-to-left group (words, number, spaces between) is displayed reversed,
    # while the digits inside it still read left to right
    visible = [(run.text.strip(), run.rtl) for run in runs if run.text.strip()]
    assert visible == [("A", False), ("ب", True), ("12", False), ("مريم", True), ("Z", False)]


def test_rtl_paragraph_puts_trailing_latin_on_the_left() -> None:
    runs = _runs("مرحبا Hi!")
    assert [(run.text, run.rtl) for run in runs] == [("!", True), ("Hi", False), ("مرحبا ", True)]
    assert runs[-1].font == ARABIC


def test_long_sentence_wraps_inside_the_box() -> None:
    text = "The quick brown fox jumps over the lazy dog near the river bank"
    one_line = render_text("The quick", 2000, 400, size=32)
    wrapped = render_text(text, 220, 400, size=32)
    _, top, _, bottom = ink_bbox(wrapped)
    _, one_top, _, one_bottom = ink_bbox(one_line)
    assert bottom - top > 2 * (one_bottom - one_top)
    assert ink_row_bands(wrapped) >= 3
    border = alpha(wrapped)
    assert border[:, 0].max() == 0 and border[:, -1].max() == 0
    assert border[0, :].max() == 0 and border[-1, :].max() == 0


def test_wrapping_breaks_at_spaces_not_inside_words() -> None:
    # GIVEN a box wide enough for "Hello" but not for "Hello world"
    pair = render_text("Hello world", 200, 300, size=40, align="left")
    alone = alpha(render_text("Hello", 200, 300, size=40, align="left"))
    # THEN there are two lines and the first holds exactly "Hello": the same ink columns
    bands = ink_bands(pair)
    assert len(bands) == 2
    first_line = alpha(pair)[bands[0][0] : bands[0][1]]
    assert np.array_equal(first_line.max(axis=0) > 0, alone.max(axis=0) > 0)


def test_cjk_wraps_between_ideographs() -> None:
    image = render_text("山田太郎" * 6, 200, 400, size=32)
    assert ink_row_bands(image) >= 3
    assert alpha(image)[:, -1].max() == 0


def test_long_name_shrinks_to_fit() -> None:
    name = "Bartholomew Maximilian Fitzgerald-Worthington the Third Esq."
    assert len(name) == 60
    image = render_text(name, 400, 80, size=64, align="center")
    box = alpha(image)
    assert box.max() > 0
    # nothing touches the edges: the text was shrunk, not clipped
    assert box[:, :2].max() == 0 and box[:, -2:].max() == 0
    assert box[:2, :].max() == 0 and box[-2:, :].max() == 0
    left, _, right, _ = ink_bbox(image)
    assert right - left > 200  # and still uses the width rather than vanishing


def test_huge_text_returns_a_bounded_image() -> None:
    image = render_text("lorem ipsum dolor sit amet " * 3700 + "x" * 100, 640, 360, size=48)
    assert image.size == (640, 360)
    a = alpha(image)
    assert a.max() > 0
    assert a[:, 0].max() == 0 and a[:, -1].max() == 0 and a[-1, :].max() == 0


def test_huge_unbreakable_word_returns() -> None:
    image = render_text("W" * 100_000, 320, 100, size=40)
    assert image.size == (320, 100)
    assert alpha(image).max() > 0


@pytest.mark.parametrize(
    "text",
    ["lone \ud800 surrogate", "zalgo e" + "\u0301" * 5000, "\x00\x07 controls", "\u200b" * 9000],
)
def test_hostile_text_does_not_raise(text: str) -> None:
    image = render_text(text, 300, 120, size=200)
    assert image.size == (300, 120)


@pytest.mark.parametrize("text", ["First\nSecond", "First\r\nSecond"])
def test_explicit_newline_makes_two_lines(text: str) -> None:
    assert ink_row_bands(render_text("First Second", 800, 300, size=40)) == 1
    assert ink_row_bands(render_text(text, 800, 300, size=40)) == 2


def test_tab_draws_as_a_space() -> None:
    tab = render_text("a\tb", 300, 100, size=40)
    space = render_text("a b", 300, 100, size=40)
    assert np.array_equal(alpha(tab), alpha(space))


def test_weight_changes_the_glyphs() -> None:
    regular = alpha(render_text("Weight", 400, 100, size=48, weight=400))
    bold = alpha(render_text("Weight", 400, 100, size=48, weight=700))
    assert int(bold.sum()) > int(regular.sum())


def test_color_stroke_and_shadow() -> None:
    plain = render_text("Hi", 200, 100, size=48, color="#ff000080")
    r, g, _, a = (np.asarray(c) for c in plain.split())
    assert a.max() == 0x80 and r[a > 0].min() == 255 and g[a > 0].max() == 0
    stroked = render_text("Hi", 200, 100, size=48, stroke_width=3, stroke_color="#00ff00")
    assert np.count_nonzero(alpha(stroked)) > np.count_nonzero(
        alpha(render_text("Hi", 200, 100, size=48))
    )
    assert np.asarray(stroked.getchannel("G"))[alpha(stroked) == 255].max() == 255
    shadowed = render_text("Hi", 200, 100, size=48, shadow=True)
    assert np.count_nonzero(alpha(shadowed)) > np.count_nonzero(alpha(plain))


def test_same_inputs_give_identical_pixels() -> None:
    text = "Hello مريم 山田 👋🏽 — a line that wraps a few times in the box"
    first = render_text(text, 300, 200, size=40, stroke_width=2, shadow=True)
    second = render_text(text, 300, 200, size=40, stroke_width=2, shadow=True)
    assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("bad", ["red", "#fff", "#12345", "#gggggg", "ffffff", "#1234567", ""])
def test_bad_color_raises_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="color"):
        render_text("Hi", 100, 50, size=20, color=bad)
    with pytest.raises(ValueError, match="stroke_color"):
        render_text("Hi", 100, 50, size=20, stroke_color=bad)


def visible(text: str, rtl: bool | None = None) -> list[tuple[str, bool]]:
    """The non-blank runs of a line in visual order, as (text, is right-to-left)."""
    return [(run.text.strip(), run.rtl) for run in _runs(text, rtl) if run.text.strip()]


def test_an_isolated_rtl_name_keeps_the_number_after_it_in_place() -> None:
    # GIVEN a Hebrew name isolated (RLI ... PDI) inside a Latin sentence, then a number
    text = "Hello \u2067שרה\u2069 5 points"
    # THEN the number stays after the name (UAX #9 X5a-X6a): without isolates it would be
    # pulled into the right-to-left group and shown before the name; the controls draw nothing
    assert visible(text) == [("Hello", False), ("שרה", True), ("5 points", False)]


def test_an_override_reverses_latin_letters() -> None:
    # GIVEN Latin letters inside a right-to-left override (RLO ... PDF)
    assert visible("a \u202eabc\u202c b") == [("a", False), ("abc", True), ("b", False)]
    # THEN they are drawn in reverse, exactly like the reversed word
    overridden = render_text("\u202eabc\u202c", 300, 100, size=40)
    assert np.array_equal(alpha(overridden), alpha(render_text("cba", 300, 100, size=40)))
    assert not np.array_equal(alpha(overridden), alpha(render_text("abc", 300, 100, size=40)))


def test_brackets_in_an_rtl_line_pair_up() -> None:
    # GIVEN a line of a right-to-left paragraph that starts with a bracketed Latin word (N0):
    # both brackets take the paragraph's direction, so they mirror around the word together
    assert visible("(VIP) 100%", rtl=True) == [
        ("100%", False),
        (")", True),
        ("VIP", False),
        ("(", True),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("👨\u200d👩\u200d👧\u200d👦🇮🇪🇯🇵", ["👨\u200d👩\u200d👧\u200d👦", "🇮🇪", "🇯🇵"]),
        ("👋🏽❤️", ["👋🏽", "❤️"]),
        ("Zoe\u0308", ["Z", "o", "e\u0308"]),
        ("क्षत्रिय", ["क्ष", "त्रि", "य"]),  # conjuncts (GB9c)
        ("\u1100\u1161\u11a8가", ["\u1100\u1161\u11a8", "가"]),  # a Hangul syllable in jamo
    ],
)
def test_grapheme_clusters_follow_uax29(text: str, expected: list[str]) -> None:
    assert list(clusters(text)) == expected


FAMILY = "👨\u200d👩\u200d👧\u200d👦"
CLUSTERED = FAMILY + "🇮🇪" + "\u1100\u1161\u11a8" * 12 + ("🇯🇵" + FAMILY) * 3
WHOLE = {FAMILY, "🇮🇪", "🇯🇵", "\u1100\u1161\u11a8"}  # the only clusters of CLUSTERED


def test_a_word_broken_across_lines_keeps_its_clusters() -> None:
    m = Measure(40, Widths(700))
    # GIVEN a word of families, flags and jamo syllables far wider than the line
    pieces = list(break_word(CLUSTERED, False, 150.0, m))
    # THEN it is cut into several pieces, and only between grapheme clusters
    assert len(pieces) > 3 and "".join(pieces) == CLUSTERED
    for piece in pieces:
        assert set(clusters(piece)) <= WHOLE


def test_the_ellipsis_never_cuts_a_cluster() -> None:
    m = Measure(40, Widths(700))
    cut = ellipsize(CLUSTERED, False, 260.0, m)
    assert cut.endswith("…") and len(cut) < len(CLUSTERED)
    kept = cut.removesuffix("…")
    assert kept and CLUSTERED.startswith(kept)
    assert set(clusters(kept)) <= WHOLE
    assert m.line(cut, False).width <= 260.0
