"""The administrator's console and the platform's verification page:
server-rendered HTML (Jinja2, autoescaped) served by ``bridgeca serve``
itself, offline, in Chinese and English. ``router()`` is mounted by
api/app.py's ``create_app``; every action goes through the same domain calls
as the HTTP API (bridge/governance.py's ``perform`` and friends)."""
