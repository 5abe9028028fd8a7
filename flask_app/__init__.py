"""Placeholder: the legacy Flask-SocketIO server is built in its own issue.

It will run the same ``queues`` and ``tts`` packages as ``fastapi_app`` (see README).
"""
