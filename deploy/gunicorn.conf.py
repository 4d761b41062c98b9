"""gunicorn's settings for Recourse: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

The web processes listen on 127.0.0.1 only; nginx in front terminates TLS and passes the
client's address and scheme in X-Forwarded-* headers, which the app believes from exactly
TRUSTED_PROXIES proxies (set TRUSTED_PROXIES=1 with nginx alone). See docs/deploy.md."""

import multiprocessing
import os

bind = os.environ.get("RECOURSE_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = 60  # a client-area referral file is imported by the job, not in the request
graceful_timeout = 30
max_requests = 2000  # recycle workers now and then
max_requests_jitter = 200
# The app reads the client's address through TRUSTED_PROXIES (Werkzeug's ProxyFix), not
# through gunicorn: gunicorn believes no forwarded header of its own.
forwarded_allow_ips = ""
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
