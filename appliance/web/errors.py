"""The one mapping from the upload use case's domain errors to HTTP (status, message, Retry-After).

Handlers raise the HTTPException this returns, so each router renders it in its own shape: Sotto's
`{status_code, detail}` or, under /v1, OpenAI's `{error: {...}}`. authz and licence errors have app-wide
handlers of their own (appliance/web/auth.py) and pass through unchanged.
"""

from __future__ import annotations

from litestar.exceptions import HTTPException

from appliance.transcription import admission, audio
from appliance.transcription.options import OptionsError
from appliance.web.i18n import Detail

DOMAIN_ERRORS: tuple[type[Exception], ...] = (OptionsError, audio.AudioError, admission.Refused)


def as_http(exc: Exception, retry_after: int) -> HTTPException:
    if isinstance(exc, admission.Refused):  # 429 for a personal limit, 503 for a full queue: both pass
        detail = Detail(exc.template, **exc.values)  # English for a program, translated for a person
        return HTTPException(status_code=exc.status, detail=detail, headers={"Retry-After": str(retry_after)})
    if isinstance(exc, audio.TooLong):
        return HTTPException(status_code=413, detail=str(exc))
    if isinstance(exc, audio.AudioError):
        return HTTPException(status_code=415, detail=str(exc))
    if isinstance(exc, OptionsError):
        return HTTPException(status_code=400, detail=str(exc))
    raise TypeError(f"not a domain error: {exc!r}")
