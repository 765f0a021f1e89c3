"""`hisbridge demo`: acts registered by the engine and the plugins, played against the daemon."""
