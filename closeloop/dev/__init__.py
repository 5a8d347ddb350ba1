"""Dev-only tools: the embedded stack of ``closeloop up`` (supervisor, components, dev
tokens), the demo data set and the load simulator of ``closeloop simulate``.

Nothing here runs in production roles (api, worker, relay, project); the simulator's
texts and places are data (``data/simulator.json``), not code.
"""
