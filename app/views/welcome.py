"""Welcome: what an empty log shows. The two lines that start recording, and a demo to look at.

The demo button writes the same calls as `python -m store demo`
(store.transfer.demo.load_demo), then forgets the cached "is the log empty" answer so the
next run shows the Logs page.
"""

import streamlit as st
from components import data

from store.transfer.demo import load_demo

#: Calls the button writes: two weeks of a small team's traffic, a few seconds to make.
DEMO_CALLS = 2_000

SNIPPET = """\
from openai import OpenAI
from store import Recorder

recorder = Recorder()
client = OpenAI(http_client=recorder.httpx_client())

image = client.images.generate(model="dall-e-3", prompt="a lighthouse at dusk")
"""

st.title("imagelog")
st.markdown(
    "An audit log of your team's image-generation calls: prompt, provider, model, latency, "
    "cost, and a cached thumbnail that outlives the provider's URL. **The log is empty.**"
)

record, demo = st.columns([3, 2], gap="large")
with record:
    st.subheader("Start recording")
    st.markdown(
        "Give your OpenAI client the recorder's HTTP client. Every `images.generate`, "
        "`images.edit` and `images.create_variation` call is then logged, also through Azure "
        "OpenAI, a Portkey gateway or any OpenAI-compatible provider."
    )
    st.code(SNIPPET, language="python")
    st.caption(
        "Other SDKs: `with recorder.track(provider=..., model=..., prompt=...) as call:` "
        "and `call.add_image(url=...)`."
    )
    st.caption(f"Log database: `{data.display_url()}` (set `IMAGELOG_DATABASE_URL` to change it)")

with demo:
    st.subheader("Look around first")
    st.markdown(
        f"Load {DEMO_CALLS:,} realistic demo calls from the last two weeks: several providers "
        "and models, errors, and hosted URLs that have already expired. The same data as "
        "`python -m store demo`."
    )
    if st.button("Load demo data", type="primary", icon=":material/download:"):
        with st.spinner("Writing demo calls…"):
            load_demo(data.engine(), count=DEMO_CALLS, seed=0)
        data.refresh()
        st.rerun()
