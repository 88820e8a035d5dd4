"""The CLI's pure parts (and the client's it leans on): SSE parsing, error wording,
script sources, rendering."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from gantry.cli import render
from gantry.cli.errors import USAGE, CliError, from_client
from gantry.cli.submit import default_name, load_batch, parse_pairs, read_script
from gantry.client import sse
from gantry.client.errors import (
    ApiError,
    AuthError,
    Conflict,
    InvalidRequest,
    NotFound,
    ServerError,
    Unavailable,
    from_response,
)
from gantry.client.models import JobPublic


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- SSE ---------------------------------------------------------------------


def test_sse_parses_events_joins_data_lines_and_skips_pings() -> None:
    lines = [": ping", "id: 7", "event: log", "data: line 1", "data: ", "", "data:x", ""]
    events = list(sse.parse(lines))
    assert events == [sse.SseEvent("log", "line 1\n", "7"), sse.SseEvent("message", "x", "7")]


def test_sse_keeps_spaces_after_the_first_and_delivers_a_cut_last_event() -> None:
    events = list(sse.parse(["event: log", "data:   indented"]))
    assert events == [sse.SseEvent("log", "  indented", None)]


# --- HTTP errors ---------------------------------------------------------------


def _response(status: int, *, json: object = None, text: str | None = None) -> httpx.Response:
    return httpx.Response(status, json=json, text=text, request=httpx.Request("GET", "http://x/"))


def check(response: httpx.Response) -> None:
    """The CLI's error for an error answer, as a command would raise it."""
    raise from_client(from_response(response))


def test_validation_errors_name_the_field_without_the_body_prefix() -> None:
    errors = [
        {"loc": ["body", "options"], "msg": "walltime 'x' is malformed: use HH:MM:SS"},
        {"loc": ["body", "jobs", 2, "name"], "msg": "Value error, job name '1' is invalid"},
        {"loc": ["query", "limit"], "msg": "too big"},
        {"loc": [], "msg": "bad"},
    ]
    error = from_response(_response(422, json={"detail": errors}))
    assert isinstance(error, InvalidRequest)
    assert [str(e) for e in error.errors] == [
        "options: walltime 'x' is malformed: use HH:MM:SS",
        "jobs[2].name: job name '1' is invalid",
        "limit: too big",
        "bad",
    ]
    assert [e.field for e in error.errors] == ["options", "jobs[2].name", "limit", ""]
    assert error.message == "\n".join(str(e) for e in error.errors)


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (404, {"detail": "job 12 does not exist"}, NotFound),
        (409, {"detail": "job 12 already ended: it is completed", "state": "completed"}, Conflict),
        (403, {"detail": "this token lacks the submit scope"}, AuthError),
        (503, {"detail": "the server is shutting down; retry in a moment"}, Unavailable),
        (500, {"detail": "internal error (KeyError); see the server log"}, ServerError),
        (413, {"detail": "the body is over 10 MiB"}, ApiError),
    ],
)
def test_error_answers_become_typed_errors_with_the_servers_words(
    status: int, body: dict[str, str], kind: type[ApiError]
) -> None:
    error = from_response(_response(status, json=body))
    assert type(error) is kind
    assert (error.message, error.status, error.body) == (body["detail"], status, body)


def test_a_conflict_names_the_job_and_a_503_the_wait() -> None:
    body = {"detail": "job 12 already ended: it is completed", "id": 12, "state": "completed"}
    conflict = from_response(_response(409, json=body))
    assert isinstance(conflict, Conflict) and (conflict.job_id, conflict.state) == (12, "completed")
    response = httpx.Response(
        503,
        json={"detail": "shutting down"},
        headers={"Retry-After": "2"},
        request=httpx.Request("GET", "http://x/"),
    )
    unavailable = from_response(response)
    assert isinstance(unavailable, Unavailable) and unavailable.retry_after == 2.0


@pytest.mark.parametrize(
    ("status", "body", "message", "code"),
    [
        (404, {"detail": "job 12 does not exist"}, "job 12 does not exist", 1),
        (
            422,
            {"detail": [{"loc": ["body", "backend"], "msg": "unknown backend 'x'"}]},
            "backend: unknown backend 'x'",
            USAGE,
        ),
        (
            500,
            {"detail": "internal error (KeyError); see the server log"},
            "internal error (KeyError); see the server log",
            1,
        ),
    ],
)
def test_the_cli_says_the_servers_words_with_its_exit_code(
    status: int, body: object, message: str, code: int
) -> None:
    with pytest.raises(CliError) as caught:
        check(_response(status, json=body))
    assert (caught.value.message, caught.value.code) == (message, code)


def test_an_error_without_json_says_the_status() -> None:
    with pytest.raises(CliError, match=r"HTTP 502 Bad Gateway: <html>oops</html>"):
        check(_response(502, text="<html>oops</html>"))


def test_auth_errors_hint_at_the_token() -> None:
    with pytest.raises(CliError, match=r"^not authenticated \(the CLI sends the token in "):
        check(_response(401, json={"detail": "not authenticated"}))
    with pytest.raises(CliError, match=r"^pass a token \(CLI: set GANTRY_TOKEN\)$"):
        check(_response(401, json={"detail": "pass a token (CLI: set GANTRY_TOKEN)"}))


# --- script sources and option parsing ----------------------------------------


def test_script_from_words_is_shell_quoted() -> None:
    assert read_script(None, ["echo", "a b", "$HOME"], Tty()) == "echo 'a b' '$HOME'"


def test_script_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "run.sh"
    path.write_text("#!/bin/sh\necho hi\n")
    assert read_script(str(path), None, Tty()) == "#!/bin/sh\necho hi\n"


def test_script_from_stdin_with_dash_or_when_piped() -> None:
    assert read_script("-", None, Tty("echo dash\n")) == "echo dash\n"
    assert read_script(None, None, io.StringIO("echo piped\n")) == "echo piped\n"


@pytest.mark.parametrize(
    ("source", "words", "stdin", "message"),
    [
        (None, None, Tty(), "give the job's script"),
        ("run.sh", ["echo"], Tty(), "not both"),
        (None, [], Tty(), "nothing after `--`"),
        (None, None, io.StringIO("  \n"), "the script from stdin is empty"),
        ("/nonexistent/run.sh", None, Tty(), "cannot read script file /nonexistent/run.sh"),
    ],
)
def test_script_problems_are_usage_errors(
    source: str | None, words: list[str] | None, stdin: io.StringIO, message: str
) -> None:
    with pytest.raises(CliError, match=message) as caught:
        read_script(source, words, stdin)
    assert caught.value.code == USAGE


def test_pairs_parse_ints_only_where_they_look_like_ints() -> None:
    parsed = parse_pairs(
        ["cores=4", "memory=4g", "walltime=01:00:00", "nice=-5", "x=a=b"], "option", ints=True
    )
    assert parsed == {"cores": 4, "memory": "4g", "walltime": "01:00:00", "nice": -5, "x": "a=b"}
    assert parse_pairs(["N=4"], "env variable", ints=False) == {"N": "4"}
    with pytest.raises(CliError, match="option 'cores' is malformed: use KEY=VALUE"):
        parse_pairs(["cores"], "option", ints=True)


def test_default_names_follow_the_name_rule() -> None:
    assert default_name("jobs/build-all.sh", None) == "build_all"
    assert default_name(None, ["/usr/bin/python3", "x.py"]) == "python3"
    assert default_name(None, ["7z"]) == "_7z"
    assert default_name("-", None) is None
    assert default_name(None, None) is None


def test_batch_files_hold_an_object_or_a_list(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"jobs": [{"spec": "true"}]}')
    assert load_batch(str(path), Tty()) == [{"spec": "true"}]
    assert load_batch("-", io.StringIO('[{"spec": "true"}]')) == [{"spec": "true"}]
    for text, message in [
        ("{", "not valid JSON"),
        ('{"jobs": 3}', "must hold"),
        ("[]", "holds no jobs"),
    ]:
        with pytest.raises(CliError, match=message):
            load_batch("-", io.StringIO(text))


# --- rendering -------------------------------------------------------------------


def _times(started: str | None, ended: str | None) -> JobPublic:
    return JobPublic.model_construct(
        started_at=started and datetime.fromisoformat(started),
        ended_at=ended and datetime.fromisoformat(ended),
    )


def test_durations_and_times() -> None:
    # SQLite's naive times are UTC.
    assert render.duration(_times("2024-01-01T10:00:00", "2024-01-01T11:02:03+00:00")) == "1h02m"
    now = datetime(2024, 1, 1, 10, 0, 5, 500000, tzinfo=UTC)
    assert render.duration(_times("2024-01-01T10:00:00Z", None), now) == "5.5s"
    assert render.duration(_times(None, None)) == "-"
    assert render.human_seconds(3 * 86400 + 7200) == "3d02h"
    assert render.local_time(None) == "-"


def test_reasons_are_shortened_to_one_line() -> None:
    assert render.shorten("a\nb") == "a b"
    assert render.shorten("x" * 100, 10) == "x" * 9 + "…"
    assert render.shorten(None) == ""
