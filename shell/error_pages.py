"""Error pages: HTML for people, JSON under /api/ and /stripe/; never a trace."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import InterfaceError, OperationalError

from api.json_errors import error_response

MESSAGES = {
    400: ("Bad request", "The request could not be understood."),
    403: ("Not allowed", "You do not have access to this page."),
    404: ("Not found", "There is nothing at this address."),
    405: ("Not allowed", "That method is not allowed here."),
    413: ("Too large", "Files can be at most {mb} MB here. Split the file and upload each part."),
    429: ("Too many attempts", "Please wait a few minutes and try again."),
    500: ("Something went wrong", "The error was logged. Please try again."),
    503: (
        "Briefly unavailable",
        "We could not finish this just now. Please try again in a moment.",
    ),
}
# A lost database connection (a restart, a failover, a killed backend): the unit of work was
# rolled back, or its commit's outcome is unknown, and trying again is safe (payments are posted
# once by their identity). The person is told to try again; the log gets the details.
DATABASE_AWAY = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = "5"
MEGABYTE = 1024 * 1024
log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    def handle(error):
        code = getattr(error, "code", 500) or 500
        title, text = MESSAGES.get(code, (str(code), ""))
        if code == 413:  # the request's own limit, less the multipart envelope's megabyte
            text = text.format(mb=(request.max_content_length or 0) // MEGABYTE - 1)
        if request.path.startswith("/api/") or request.path.startswith("/stripe/"):
            return error_response(code, title.lower().replace(" ", "_"), text)
        return render_template("errors/error.html", code=code, title=title, text=text), code

    for code in MESSAGES:
        app.register_error_handler(code, handle)

    def database_away(error):
        log.error("database unavailable: %s", error)
        response = app.make_response(handle(_Unavailable()))
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response

    for error in DATABASE_AWAY:
        app.register_error_handler(error, database_away)

    @app.errorhandler(CSRFError)
    def csrf_failed(error):
        text = (
            "The form has expired or was not sent from this site. "
            "Please go back, reload the page and try again."
        )
        return render_template("errors/error.html", code=400, title="Form expired", text=text), 400


class _Unavailable(Exception):
    code = 503
