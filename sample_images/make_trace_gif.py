"""Make the documentation's trace animation: the cs231n demo, one frame per step.

    .venv/bin/python sample_images/make_trace_gif.py

Builds the trace exactly as ``convcli trace --demo cs231n`` does and writes it
with ``convcli.trace_gif``: docs/images/cs231n_trace.gif (every step),
docs/images/cs231n_trace_frame1.png (the first step, for places that show
no animation) and docs/images/trace-cs231n-frame.png (step 12, the README's:
the first map done, the second filling).
"""

from __future__ import annotations

from pathlib import Path

from convcli.demos import load_demo
from convcli.images import save
from convcli.trace_gif import save_trace_gif, trace_frame
from convcli.tracing import trace

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
GIF = IMAGES / "cs231n_trace.gif"
FRAME = IMAGES / "cs231n_trace_frame1.png"
README_FRAME = IMAGES / "trace-cs231n-frame.png"
README_STEP = 11  # step 12 of 18, counted from 0


def main() -> None:
    """Write the animation and its two still frames into docs/images."""
    demo = load_demo("cs231n")
    t = trace(demo.x, demo.w, demo.bias or None, **demo.options)
    title, _ = demo.explain(t)
    save_trace_gif(GIF, t, title=title)
    save(FRAME, trace_frame(t, 0, title=title), compress_level=9)
    save(README_FRAME, trace_frame(t, README_STEP, title=title), compress_level=9)
    for path in (GIF, FRAME, README_FRAME):
        print(f"wrote {path} ({path.stat().st_size:,} bytes, {len(t.steps)} steps)")


if __name__ == "__main__":
    main()
