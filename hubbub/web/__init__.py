"""Files the node serves to browsers, no build step: ``static/`` is the web chat (served
by ``hubbub.http.web_routes``; docs/webchat.md), ``ops/`` the operator page."""
