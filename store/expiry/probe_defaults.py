"""How hard `check` probes unless told otherwise.

Apart from `store.expiry.probe`, which imports httpx, so that `imagelog --help` can show the
defaults without loading it.
"""

#: Probes in flight at once.
DEFAULT_CONCURRENCY = 64
#: Connections to one host at a time: polite to the host, and one slow host cannot take every slot.
DEFAULT_PER_HOST = 16
DEFAULT_TIMEOUT_SECONDS = 10.0
