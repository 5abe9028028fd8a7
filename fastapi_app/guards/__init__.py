"""What stands between the network and the app: connection caps, slow-client deadlines,
Origin and cross-site checks, security headers, malformed Socket.IO packets, and a peer
gone mid-send."""
