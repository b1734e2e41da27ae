"""Images, one module per job: `fetch` downloads (capped, timed), `thumbnails` decodes and
encodes, `url_answers` reads what a host's answer proves about a URL, `saving` is the one path
from an image to its stored row, `thumbnail_worker` runs that path on a pool (in the background
for the recorder) with the thumbnails themselves made in `thumbnail_process`'s low-priority
child, and `retry` is `imagelog thumbnails`. On that path, `credentials` reads an image's C2PA
manifest and `lookalike` hashes its picture. Every server-side fetch (here and in
`store.expiry`) goes through `guarded_transport`: `network_guard` decides which addresses it may
reach, `deadline` bounds it end to end, `proxies` routes it. Nothing here imports the layers
above."""
