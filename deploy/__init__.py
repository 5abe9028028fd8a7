"""HAProxy in front of a mixed fleet of Flask and FastAPI Genie servers.

- ``deploy.haproxy``: renders ``haproxy.cfg`` (one backend holding every server, a
  ``genie_server`` stickiness cookie, health checks, WebSocket-safe timeouts, the admin
  socket) and the weights that give FastAPI P % of new browsers.
- ``deploy.rollout``: a small client of HAProxy's runtime API that moves the split, the
  kill switch and drains at run time, without a reload.

``python -m deploy haproxy|rollout --help`` is the command line.
"""
