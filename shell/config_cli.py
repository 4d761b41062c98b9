"""`flask --app wsgi config check`: the effective settings (secrets masked) and every problem."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from shell import settings

config_cli = AppGroup("config", help="The settings.")


@config_cli.command("check")
def check() -> None:
    """Print the effective settings (secrets masked) and every problem; exit 1 on any."""
    config = current_app.config
    width = max(len(setting.name) for setting in settings.SETTINGS)
    click.echo(f"Recourse settings ({config['RECOURSE_ENV'] or 'development'} mode):")
    for setting in settings.SETTINGS:
        click.echo(f"  {setting.name:<{width}}  {settings.masked(setting, config[setting.name])}")
    problems = config["CONFIG_PROBLEMS"]
    if not problems:
        click.echo("No problems.")
        return
    click.echo(f"{len(problems)} problem(s):")
    for problem in problems:
        click.echo(f"  - {problem}")
    sys.exit(1)
