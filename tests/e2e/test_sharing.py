"""Safe to share: by default the server answers on this machine only (as Jupyter does); XSRF protection
stays on and error details stay hidden (`.streamlit/config.toml`)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import tomllib

from tests.e2e.conftest import DIRECT, ROOT, Server


def outward_address() -> str | None:
    """This machine's address on its network (the interface a packet out would leave by), if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, the route is only looked up
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_the_config_keeps_the_server_local_with_xsrf_on_and_error_details_hidden():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["address"] == "localhost"
    assert config["server"]["enableXsrfProtection"] is True
    assert config["client"]["showErrorDetails"] == "none"


def test_by_default_the_server_answers_on_loopback_only(tmp_path: Path):
    address = outward_address()
    server = Server(tmp_path / "ws", tmp_path / "server.log", address=None).start()
    try:
        with DIRECT.open(f"{server.url}/_stcore/health", timeout=5) as answer:
            assert answer.status == 200
        if address is None:
            pytest.skip("this machine has no address but loopback to try from")
        with pytest.raises(OSError):  # refused: nothing listens there
            DIRECT.open(f"http://{address}:{server.port}/_stcore/health", timeout=5)
    finally:
        server.stop()
