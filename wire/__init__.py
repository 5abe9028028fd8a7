"""Wire message shapes shared by every adapter (FastAPI, Flask). No framework imports.

- ``wire.frames``: native ``/ws`` JSON frames, both directions, and sequence splicing.
- ``wire.legacy``: Socket.IO event payloads and HTTP helpers of the original Genie page.
- ``wire.urls``: audio URL builders and the Genie page's path.
"""
