"""Simulated attacking sites: poisoned updates (:mod:`.updates`), poisoned data (:mod:`.data`)."""
