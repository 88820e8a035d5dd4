"""Exceptions of the job layer and the instruments, translated to HTTP answers: here only.

A 422 looks like FastAPI's own (``detail`` is a list of ``{loc, msg, type}``)
so clients parse one shape; other errors carry ``detail`` as a sentence.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from gantry.api.limits import BodyTooLarge, too_large_message
from gantry.instruments.service import (
    Busy,
    DriverFailed,
    InstrumentError,
    NoAnswer,
    NotFound,
    Refused,
    Unavailable,
)
from gantry.jobs.errors import JobAlreadyEnded, JobNotFound, SubmissionError
from gantry.jobs.store import IdempotencyConflict, UnknownDependencies
from gantry.jobs.store.outage import is_outage
from gantry.jobs.writer import WriterClosed
from gantry.schemas import PATTERN_RULES, ErrorBody

log = logging.getLogger(__name__)

#: What each refusal of the instruments answers.
INSTRUMENT_STATUS: dict[type[InstrumentError], int] = {
    NotFound: 404,
    Busy: 409,
    Refused: 422,
    DriverFailed: 502,
    Unavailable: 503,
    NoAnswer: 504,
}


def documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error answers with a sentence as ``detail``."""
    return {code: {"model": ErrorBody} for code in codes}


def unprocessable(loc: tuple[str | int, ...], message: str) -> JSONResponse:
    return JSONResponse(
        status_code=422,
        content={"detail": [{"loc": list(loc), "msg": message, "type": "value_error"}]},
    )


def _clean(error: dict[str, Any]) -> dict[str, object]:
    """FastAPI's 422 item without pydantic's "Value error, " prefix and ``ctx``;
    a pattern mismatch says in words what the value should look like."""
    message = str(error.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error.get("type") == "string_pattern_mismatch":
        rule = PATTERN_RULES.get((error.get("ctx") or {}).get("pattern", ""))
        if rule is not None:
            message = f"{error.get('input')!r} is invalid: use {rule}"
    return {"loc": error.get("loc", []), "msg": message, "type": error.get("type", "value_error")}


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        items = [_clean(e) for e in exc.errors()]
        return JSONResponse(status_code=422, content=jsonable_encoder({"detail": items}))

    @app.exception_handler(SubmissionError)
    async def _submission(_: Request, exc: SubmissionError) -> JSONResponse:
        # The job layer names the field within the submission: the request body.
        return unprocessable(("body", *exc.field), str(exc))

    @app.exception_handler(UnknownDependencies)
    async def _unknown_deps(_: Request, exc: UnknownDependencies) -> JSONResponse:
        return unprocessable(
            ("body", "depends_on"),
            f"depends_on names jobs that do not exist: {exc.missing}; check the ids",
        )

    @app.exception_handler(IdempotencyConflict)
    async def _idempotency(_: Request, exc: IdempotencyConflict) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc), "id": exc.job_id})

    @app.exception_handler(JobNotFound)
    async def _not_found(_: Request, exc: JobNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(JobAlreadyEnded)
    async def _ended(_: Request, exc: JobAlreadyEnded) -> JSONResponse:
        return JSONResponse(
            status_code=409, content={"detail": str(exc), "id": exc.job_id, "state": exc.state}
        )

    @app.exception_handler(InstrumentError)
    async def _instruments(_: Request, exc: InstrumentError) -> JSONResponse:
        return JSONResponse(status_code=INSTRUMENT_STATUS[type(exc)], content={"detail": str(exc)})

    @app.exception_handler(WriterClosed)
    async def _closing(_: Request, exc: WriterClosed) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={"detail": "the server is shutting down; retry in a moment"},
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, _: BodyTooLarge) -> JSONResponse:
        limit: int = request.app.state.settings.max_body_bytes
        return JSONResponse(status_code=413, content={"detail": too_large_message(limit)})

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if not is_outage(exc):
            return await _unexpected(request, exc)
        # Not stored (or not known to be: retry with the same Idempotency-Key).
        return JSONResponse(
            status_code=503,
            content={"detail": "the database is unavailable (restarting?); retry in a moment"},
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            status_code=500,
            content={"detail": f"internal error ({type(exc).__name__}); see the server log"},
        )
