"""Paths on the server's own disk that a browser user may name: only inside the roots the administrator
configured (``LABELTUNE_SERVER_ROOTS``, folders separated by the system's path separator, else the
workspace setting ``server_roots`` that ``python -m core server-roots --set`` writes). With no root, a
browser user can name no path on the server at all. The command line, run by someone already on the
server, takes any path and does not come here.

A path is resolved (``..`` and every symbolic link followed) before it is checked, so a link inside a root
that points outside it is refused, and the answer never says whether something outside the roots exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import ConfigError
from core.store.workspace import Workspace

ENV_VAR = "LABELTUNE_SERVER_ROOTS"
SETTING = "server_roots"


def server_roots(ws: Workspace) -> list[Path]:
    """The configured roots, resolved; empty when none is configured."""
    raw = os.environ.get(ENV_VAR) or ws.get_setting(SETTING, "") or ""
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def set_server_roots(ws: Workspace, roots: list[str]) -> list[Path]:
    """Store the roots (each must be an existing folder); returns them resolved."""
    resolved = []
    for root in roots:
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError("err.server_root_missing", path=root)
        resolved.append(path)
    ws.set_setting(SETTING, os.pathsep.join(str(p) for p in resolved))
    return resolved


def inside_roots(ws: Workspace, typed: str) -> Path:
    """The existing file or folder a browser user named, resolved, if it lies inside a configured root;
    else :class:`ConfigError` saying why (no roots; outside them; not there), naming the path as typed."""
    roots = server_roots(ws)
    if not roots:
        raise ConfigError("err.server_paths_off", path=typed, env=ENV_VAR)
    shown = ", ".join(str(r) for r in roots)
    candidate = Path(typed).expanduser()
    if not candidate.is_absolute():
        raise ConfigError("err.path_not_absolute", path=typed, roots=shown)
    resolved = candidate.resolve()  # links and ".." followed: where the bytes really are
    if not any(resolved.is_relative_to(root) for root in roots):
        raise ConfigError("err.path_outside_roots", path=typed, roots=shown)
    if not resolved.exists():
        raise ConfigError("err.path_missing", path=typed)
    return resolved
