"""`imagelog gateway`: an OpenAI-compatible reverse proxy that records images calls from any
language. Its upstream client is the recorder's own async httpx client (one recording path);
upstreams come from configuration only (`store.gateway.config`)."""
