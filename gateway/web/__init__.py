"""The installer's live page (``[web]``, docs/installation.md 6).

An aiohttp application in the daemon's own event loop, supervised like a device session so that
nothing it does can stop the gateway: ``server`` (routes, the password, the listening socket),
``sse`` (the watchers: at most a few, each with a bounded queue, a slow one dropped), ``view``
(the one read-only view of the daemon's objects, and the snapshot the page shows), ``ring``
(the reads of the last minute, kept only while someone watches) and ``static/`` (the page:
plain HTML, JavaScript and CSS, nothing fetched from elsewhere: a shop may have no internet).

Nothing is computed while nobody watches: the snapshot is made on request, and once a second
while a page is connected, from counters the daemon keeps anyway; the reads' ring is filled only
while it is armed by a watcher.
"""
