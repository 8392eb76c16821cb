"""Amazon Polly behind the speech port: neural voices, SSML, a PLS lexicon, word speech marks."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.speech import (
    LexEntry,
    Mark,
    MarkKind,
    Speech,
    SpeechError,
    SpeechRequest,
    pcm_to_wav,
)

if TYPE_CHECKING:
    from mypy_boto3_polly import PollyClient

SAMPLE_RATE = 16000  # the highest rate Polly gives PCM at


def pls(lexicon: tuple[LexEntry, ...], language: str = "en-US") -> str:
    """A W3C PLS document of the entries (an alias or an IPA phoneme each)."""
    lexemes = []
    for e in lexicon:
        # Polly says IPA exactly: it wins over the alias (kept for the engines without IPA).
        said = (
            f"<phoneme>{escape(e.ipa)}</phoneme>"
            if e.ipa
            else f"<alias>{escape(e.alias or '')}</alias>"
        )
        lexemes.append(f"<lexeme><grapheme>{escape(e.grapheme)}</grapheme>{said}</lexeme>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" '
        'alphabet="ipa" xml:lang="' + escape(language) + '">' + "".join(lexemes) + "</lexicon>"
    )


def lexicon_name(document: str) -> str:
    """Polly's name of a lexicon (1-20 letters and digits): from its content, so a changed
    lexicon is a new one and two campaigns with the same entries share it."""
    return "reel" + hashlib.sha256(document.encode()).hexdigest()[:16]


def ssml(request: SpeechRequest) -> str:
    """The request as SSML: its own when it is SSML, else its text escaped, with its pace."""
    if request.ssml:
        return request.text
    body = escape(request.text)
    if request.rate != 1.0:
        body = f'<prosody rate="{round(request.rate * 100)}%">{body}</prosody>'
    return f"<speak>{body}</speak>"


class PollySpeech:
    """Polly: audio as 16 kHz PCM (made into a WAV), then word marks in a second call."""

    name = "polly"

    def __init__(self, client: PollyClient, engine: str = "neural") -> None:
        self.client = client
        self.engine = engine
        self._voices: set[str] | None = None
        self._lexicons: set[str] = set()

    def has_voice(self, voice: str) -> bool:
        if self._voices is None:
            found: set[str] = set()
            token: str | None = None
            try:
                while True:
                    kw: dict[str, Any] = {"Engine": self.engine}
                    if token:
                        kw["NextToken"] = token
                    page = self.client.describe_voices(**kw)
                    found.update(v["Id"] for v in page.get("Voices", []))
                    token = page.get("NextToken")
                    if not token:
                        break
            except (BotoCoreError, ClientError) as exc:
                raise SpeechError(f"Polly cannot list its voices: {exc}") from exc
            self._voices = found
        return voice in self._voices

    def _lexicon(self, lexicon: tuple[LexEntry, ...]) -> list[str]:
        if not lexicon:
            return []
        document = pls(lexicon)
        name = lexicon_name(document)
        if name not in self._lexicons:
            self.client.put_lexicon(Name=name, Content=document)
            self._lexicons.add(name)
        return [name]

    def synthesize(self, request: SpeechRequest) -> Speech:
        try:
            common: dict[str, Any] = {
                "Engine": self.engine,
                "VoiceId": request.voice,
                "Text": ssml(request),
                "TextType": "ssml",
                "LexiconNames": self._lexicon(request.lexicon),
            }
            audio = self.client.synthesize_speech(
                OutputFormat="pcm", SampleRate=str(SAMPLE_RATE), **common
            )
            pcm = audio["AudioStream"].read()
            # Sentence marks add nothing the word marks do not tell (and moto refuses them).
            marks = self.client.synthesize_speech(
                OutputFormat="json", SpeechMarkTypes=["word"], **common
            )
            lines = marks["AudioStream"].read().decode(errors="replace").splitlines()
        except (BotoCoreError, ClientError) as exc:
            raise SpeechError(f"Polly could not speak the line: {exc}") from exc
        found = []
        for line in lines:
            try:
                mark = json.loads(line)
            except ValueError:
                continue  # moto answers with bytes that are not speech marks
            if isinstance(mark, dict) and mark.get("type") == "word":
                found.append(Mark(MarkKind.word, float(mark["time"]) / 1000, str(mark["value"])))
        return Speech(pcm_to_wav(pcm, SAMPLE_RATE), tuple(found))
