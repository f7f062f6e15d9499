"""LabelTune. Run: streamlit run streamlit_app.py

Streamlit runs this file as the app's script (``__main__``) on every rerun: it draws the shell
(``ui.shell``). ``streamlit run`` also imports it once to find ``app``, the ASGI application it then
serves: Streamlit itself plus LabelTune's own upload route (``ui.upload_route``: uploads of any size
streamed to disk, resumable)."""

if __name__ == "__main__":
    from ui.shell import run

    run()
else:
    from streamlit.starlette import App

    from ui.upload_route import routes

    app = App(__file__, routes=routes())
