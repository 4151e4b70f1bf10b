"""`cms-plugin dev`: a live preview of a plugin's panels, rendered by the CMS's own templates,
run in the server's sandbox against an in-memory host, rebuilt when a source changes."""

from __future__ import annotations

from plugin_sdk.devserver.app import create_app
from plugin_sdk.devserver.host import DEFAULT_WORLD, DevHost, World, WorldError
from plugin_sdk.devserver.session import Build, Call, DevSession

__all__ = ["Build", "Call", "DEFAULT_WORLD", "DevHost", "DevSession", "World", "WorldError",
           "create_app"]
