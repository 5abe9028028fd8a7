"""The long-lived connections: ``/ws`` sessions and their outboxes, the Socket.IO server
and its manager, the fan-out flusher, and the direct-frame path."""
