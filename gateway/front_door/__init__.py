"""The front door's HTTP side: the endpoints a reverse proxy asks (nginx ``auth_request``, Traefik and Caddy
forward auth), the sign-in and sign-out endpoints on each app's host, and the reverse proxy Gatehouse runs itself
for an app with an ``upstream``. The sessions are :mod:`gateway.services.front_door`'s."""
