"""Local rules: events in, actions on outputs out, with or without a broker (docs/rules.md).

``engine`` decides (pure, time injected), ``templates`` renders text safely, ``content`` caches
what the central server pushes, ``dispatcher`` carries actions out and reports each as an
``action.executed`` event, and ``runtime`` puts them together for the daemon. Nothing is imported
here: ``gateway.config.rules`` uses ``templates`` while the config package is still loading.
"""
