"""Streamlit's own login (OIDC, ``st.login``), honoured when ``.streamlit/secrets.toml`` configures it:
an ``[auth]`` section with one provider (``client_id`` ... in ``[auth]`` itself) or several
(``[auth.google]``, ``[auth.microsoft]``, ...). Then every page asks for a login first. Without it the
app has no accounts at all (README: "Sharing with a team")."""

from __future__ import annotations

import importlib.util
from typing import Any

import streamlit as st

from ui.common import md_text, t


def providers() -> list[str] | None:
    """None when no login is configured; else the providers to offer ('' for the single unnamed one)."""
    if not st.secrets.load_if_toml_exists() or "auth" not in st.secrets:
        return None
    auth: Any = st.secrets["auth"]
    named = [name for name, value in auth.items() if hasattr(value, "keys")]
    return named or [""]


def login_gate() -> bool:
    """True when the pages may show: no login is configured, or the user has logged in (the sidebar then
    says who, with a logout). Otherwise draws the login buttons and returns False: the caller hides the
    navigation and stops."""
    offered = providers()
    if offered is None:
        return True
    if st.user.get("is_logged_in", False):
        who = st.user.get("name") or st.user.get("email") or ""
        st.sidebar.caption(t("auth.signed_in", who=md_text(str(who))))
        st.sidebar.button(t("auth.logout"), key="logout", on_click=st.logout)
        return True
    st.header(t("auth.header"))
    st.info(t("auth.required"))
    if importlib.util.find_spec("authlib") is None:  # st.login needs it: say so now, not at the click
        st.error(t("auth.no_authlib"), icon="⚠️")
        return False
    for provider in offered:
        label = t("auth.login_with", provider=provider.title()) if provider else t("auth.login")
        st.button(
            label, key=f"login_{provider}", type="primary", on_click=st.login, args=(provider,) if provider else ()
        )
    return False
