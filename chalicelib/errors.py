"""One exception hierarchy for Reel; every error can name the field it is about."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a field path) and why."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ReelError(Exception):
    """Base of every error Reel raises on purpose."""

    code = "reel_error"
    exit_code = 1
    status = 400  # the HTTP API's status for it
    retry_after: int | None = None  # seconds, for a client to wait before asking again

    def __init__(self, message: str, field: str = "", problems: list[Problem] | None = None):
        self.message = message
        self.field = field
        self.problems = problems if problems is not None else [Problem(field, message)]
        super().__init__(str(self.problems[0]) if len(self.problems) == 1 else message)

    def to_dict(self) -> dict[str, object]:
        """The HTTP API's error body."""
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


class TemplateError(ReelError):
    """The template (or a scene of its library) is invalid."""

    code = "invalid_template"


class DataError(ReelError):
    """A data record does not fit the template's variables."""

    code = "invalid_data"


class AssetError(ReelError):
    """An asset (image, video, audio, font) is missing or unusable."""

    code = "invalid_asset"


class RenderError(ReelError):
    """ffmpeg (or rasterizing) failed; carries the tail of ffmpeg's stderr."""

    code = "render_failed"
    exit_code = 2

    def __init__(self, message: str, stderr_tail: str = "", field: str = ""):
        self.stderr_tail = stderr_tail
        full = f"{message}\n{stderr_tail}" if stderr_tail else message
        super().__init__(full, field)


class VoiceError(ReelError):
    """A speech engine failed or timed out on a voice line: that recipient alone fails."""

    code = "voice_failed"
    exit_code = 2


class VoiceOverflowError(DataError):
    """A voice line (with this record's values) does not fit its window: `overflow: error`,
    or more than `speed` may make up."""

    code = "voice_overflow"


class NotFoundError(ReelError):
    """A template, render or batch (or a blob it names) does not exist."""

    code = "not_found"
    status = 404


class AuthError(ReelError):
    """A write route was called without a valid API key."""

    code = "unauthorized"
    status = 401


class RequestError(ReelError):
    """An HTTP request is malformed: its body, a header or a parameter."""

    code = "invalid_request"


class ForbiddenError(ReelError):
    """A signed token or signature does not match: nothing is done."""

    code = "forbidden"
    status = 403


class NotReadyError(ReelError):
    """What was asked for is still being made (a stream chunk, a poster): retry shortly."""

    code = "not_ready"
    status = 503
    retry_after = 1


class StorageError(ReelError):
    """Storing an object failed (a full disk, an S3 error) even after its retries. Nothing
    partial is left under the key; what failed is named in the message."""

    code = "storage_failed"
    exit_code = 2
    status = 503
    retry_after = 30


class GoneError(ReelError):
    """What was asked for existed and was erased on purpose (a recipient's page)."""

    code = "gone"
    status = 410
