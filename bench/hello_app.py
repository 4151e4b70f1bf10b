"""A bare Flask app answering on `/`: the ceiling the CMS is measured against by http_bench.py.

Served by the same Gunicorn config, workers and worker class as the CMS, so the ratio between the
two isolates what the CMS itself costs per request.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "Hello, world!"
