"""Recording calls: the recorder, its httpx transports and `track()`, the OpenAI exchange
parser, redaction of secrets, provider inference, pricing, the spool and the bulk writer."""
