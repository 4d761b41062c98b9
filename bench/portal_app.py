"""The app as bench/portal.py serves it under gunicorn, plus one bare endpoint as the baseline:
the same app, middleware and security headers, and no database, session or template."""

from agency import create_app

app = create_app()


@app.get("/_bench/bare")
def bare():
    return "ok"
