"""napari dock widgets: thin views over the headless core (no computation here).

Heavy imports (torch, the core) happen when a widget runs, not when napari starts.
"""
